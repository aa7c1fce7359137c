"""A replay source: real recordings played back through the edge agent, as if measured now.

Why: synthetic data (``edge_agent.simulator``) cannot show how the pipeline and the rules behave
on a real patient — probe-off minutes, sparse cuff readings, artifacts. Replay feeds a real
recording (a WFDB numerics record such as MIMIC-II ``s00001-…n``, or a long-format CSV) into an
:class:`~edge_agent.agent.EdgeAgent` at real or accelerated speed.

Pure core, thin shell (STYLE.md):

- :func:`numerics_to_recorded` and :func:`csv_to_recorded` turn a parsed recording into sorted
  :class:`RecordedValue` items (offset from the record's start, metric, value or no-value
  reason). No I/O.
- :class:`ReplaySchedule` re-bases the offsets onto a chosen start time (so replayed data looks
  current and the rules see "now") and releases the readings whose time has come, given the
  elapsed wall time. The original offset stays on each reading as the quality flag
  ``replay_offset_s=<seconds>`` next to ``replayed``, so nobody mistakes a replay for a live
  measurement and the source position can be found again.
- :func:`load_recording` and :class:`ReplaySource` are the shell: they read files (``wfdb`` is
  imported lazily, only for WFDB records) and read the monotonic clock.

ECG waveform records (e.g. MIT-BIH Arrhythmia, 360 Hz, leads MLII and V1-V5) are replayed as
:class:`vitals.WaveformSnippet` items for the outbox's ``waveform`` lane: every
``every_s`` seconds of the recording, a snippet of ``snippet_s`` seconds of each ECG lead
(:func:`ecg_snippets`, pure; :class:`WaveformSchedule` releases a snippet once its last sample
has "happened"). The samples keep the record's ADC counts (``scale`` = 1 / ADC gain mV), so
nothing is lost or invented by re-quantising.

Missing values are never replayed as 0 (ARCHITECTURE.md, data contract): in MIMIC numerics a
0 means the sensor was off (probe off, no cuff) and becomes ``no_value="sensor_off"``; NaN
(WFDB's "no sample", e.g. NBP between cuff inflations) becomes ``no_value="not_measured"``.
"""

from __future__ import annotations

import base64
import csv
import io
import itertools
import math
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

from vitals import NoValue, Reading, VitalsError, WaveformSnippet, is_identifier
from vitals import metric as catalogue_metric

#: WFDB numerics signal names (MIMIC-II/III waveform databases, PhysioNet) -> catalogue metric.
#: ABP* (invasive arterial pressure) has no catalogue metric of its own yet and is not mapped
#: onto bp_*: that would collide with NBP at the same (device, metric, time) key.
WFDB_SIGNALS: Final[Mapping[str, str]] = {
    "HR": "heart_rate",
    "PULSE": "pulse_rate",
    "RESP": "respiratory_rate",
    "SpO2": "spo2",
    "NBPSys": "bp_systolic",
    "NBPDias": "bp_diastolic",
    "NBPMean": "bp_mean",
}

#: Quality flag on every replayed reading (its time is re-based, not the measurement time).
REPLAYED: Final = "replayed"
#: Quality flag prefix keeping the offset from the recording's start, in seconds.
OFFSET_FLAG: Final = "replay_offset_s="

CSV_COLUMNS: Final = ("subject", "time", "metric", "value")

#: WFDB ECG signal names -> catalogue waveform channel. MIT-BIH's "MLII" (modified limb lead
#: II) is recorded like lead II; the precordial leads keep their names.
ECG_SIGNALS: Final[Mapping[str, str]] = {
    "MLII": "ecg_ii",
    "II": "ecg_ii",
    "I": "ecg_i",
    "III": "ecg_iii",
    "aVR": "ecg_avr",
    "aVL": "ecg_avl",
    "aVF": "ecg_avf",
    **{f"V{n}": f"ecg_v{n}" for n in range(1, 7)},
}


class ReplayError(VitalsError):
    """A recording that cannot be replayed (bad CSV row, unknown metric, unreadable record)."""

    kind = "malformed"


@dataclass(frozen=True, slots=True)
class RecordedValue:
    """One value of a recording, positioned by its offset from the recording's start."""

    offset_s: float
    subject: str
    device: str
    metric: str
    value: float | None
    no_value: NoValue | None = None


# -- pure core: recordings -> sorted values ------------------------------------------------------


def _check_identifier(text: str, what: str) -> str:
    if not is_identifier(text):
        raise ReplayError(f"{what} {text!r} is not a valid identifier (letters, digits, _.:-)")
    return text


def numerics_to_recorded(
    signal_names: Sequence[str],
    samples: Iterable[Sequence[float]],
    fs_hz: float,
    *,
    subject: str,
    device: str,
    emit_not_measured: bool = True,
) -> list[RecordedValue]:
    """WFDB numerics (one row of physical values per sample) -> sorted recorded values.

    Signals not in :data:`WFDB_SIGNALS` are skipped (listed by :func:`unmapped_signals`).
    ``emit_not_measured=False`` drops NaN samples instead of sending ``not_measured`` readings
    (useful for records where NaN is merely "between cuff inflations").
    """
    if fs_hz <= 0:
        raise ReplayError(f"sampling frequency {fs_hz} Hz is not positive")
    _check_identifier(subject, "subject")
    _check_identifier(device, "device")
    mapped = [
        (index, WFDB_SIGNALS[name])
        for index, name in enumerate(signal_names)
        if name in WFDB_SIGNALS
    ]
    out: list[RecordedValue] = []
    for row_number, row in enumerate(samples):
        # Millisecond offsets: header frequencies are rounded (MIMIC: 0.0166666666667 Hz), and
        # 59.99999999988 s would put a minute's sample a few nanoseconds off the minute.
        offset = round(row_number / fs_hz, 3)
        for index, metric_name in mapped:
            value = float(row[index])
            if math.isnan(value):
                if emit_not_measured:
                    out.append(
                        RecordedValue(offset, subject, device, metric_name, None, "not_measured")
                    )
            elif value == 0.0:
                out.append(RecordedValue(offset, subject, device, metric_name, None, "sensor_off"))
            else:
                out.append(RecordedValue(offset, subject, device, metric_name, value))
    return out


def unmapped_signals(signal_names: Sequence[str]) -> list[str]:
    """Signals of a record that replay does not send (logged by the shell)."""
    return [name for name in signal_names if name not in WFDB_SIGNALS]


def _parse_time(text: str, line: int) -> float | datetime:
    stripped = text.strip()
    try:
        return float(stripped)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise ReplayError(
            f"line {line}: time {stripped!r} is neither ISO 8601 nor seconds from start"
        ) from None
    if moment.tzinfo is None:
        raise ReplayError(f"line {line}: ISO time {stripped!r} needs a UTC offset")
    return moment


def csv_to_recorded(text: str, *, device_prefix: str = "replay") -> list[RecordedValue]:
    """Long-format CSV ``subject,time,metric,value`` -> sorted recorded values (CONTRACTS.md).

    ``time`` is ISO 8601 with an offset, or seconds from the start of the recording; one file
    uses one of the two. ISO times are made relative to the earliest time in the file, so
    subjects recorded together stay aligned. An optional ``device`` column names the device;
    otherwise it is ``<device_prefix>-<subject>``. An empty or ``NaN`` value becomes
    ``no_value="not_measured"``; 0 is a value here (CSV has no sensor-off convention).
    """
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or ()]
    missing = [name for name in CSV_COLUMNS if name not in header]
    if missing:
        raise ReplayError(f"CSV header lacks {', '.join(missing)}; need {','.join(CSV_COLUMNS)}")
    rows: list[tuple[float | datetime, str, str, str, float | None, int]] = []
    for line, raw in enumerate(reader, start=2):
        row = {(key or "").strip(): (value or "").strip() for key, value in raw.items()}
        subject = row["subject"]
        _check_identifier(subject, f"line {line}: subject")
        device = row.get("device") or f"{device_prefix}-{subject}"
        _check_identifier(device, f"line {line}: device")
        metric_name = row["metric"]
        try:
            catalogue_metric(metric_name)
        except VitalsError as exc:
            raise ReplayError(f"line {line}: {exc.detail}") from None
        value_text = row["value"]
        value: float | None
        if value_text == "" or value_text.lower() == "nan":
            value = None
        else:
            try:
                value = float(value_text)
            except ValueError:
                raise ReplayError(f"line {line}: value {value_text!r} is not a number") from None
            if not math.isfinite(value):
                raise ReplayError(f"line {line}: value {value_text!r} is not finite")
        rows.append((_parse_time(row["time"], line), subject, device, metric_name, value, line))
    if not rows:
        return []
    kinds = {type(row[0]) for row in rows}
    if len(kinds) > 1:
        raise ReplayError("CSV mixes ISO times and seconds from start; use one of them")
    first = min(row[0] for row in rows)
    out: list[RecordedValue] = []
    for moment, subject, device, metric_name, value, _line in rows:
        if isinstance(moment, datetime):
            assert isinstance(first, datetime)
            offset = (moment - first).total_seconds()
        else:
            offset = float(moment)
        out.append(
            RecordedValue(
                offset,
                subject,
                device,
                metric_name,
                value,
                None if value is not None else "not_measured",
            )
        )
    out.sort(key=lambda item: item.offset_s)
    return out


def to_reading(item: RecordedValue, start: datetime) -> Reading:
    """Re-base a recorded value onto ``start``; the original offset stays in ``quality``."""
    return Reading(
        subject=item.subject,
        device=item.device,
        metric=item.metric,
        value=item.value,
        no_value=item.no_value,
        unit=catalogue_metric(item.metric).unit,
        time=start + timedelta(seconds=item.offset_s),
        source="replay",
        quality=(REPLAYED, f"{OFFSET_FLAG}{item.offset_s:g}"),
    )


class ReplaySchedule:
    """Releases recorded values as a (possibly accelerated) clock passes their offset.

    Pure: the caller says how much wall time has elapsed. Recording time elapsed =
    ``wall * speed``; a value at offset ``o`` is due once ``o <= wall * speed`` and is stamped
    ``start + o``. With ``loop=True`` the recording restarts after its last value (each pass is
    stamped one recording length later, so keys never repeat).
    """

    def __init__(
        self,
        recorded: Sequence[RecordedValue],
        start: datetime,
        speed: float = 1.0,
        *,
        loop: bool = False,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive (1 = real time, 60 = a minute per second)")
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._recorded = sorted(recorded, key=lambda item: item.offset_s)
        self._start = start
        self._speed = speed
        self._loop = loop and bool(self._recorded)
        self._next = 0
        self._pass = 0
        # A pass lasts until the last offset plus one typical step, so passes do not overlap.
        last = self._recorded[-1].offset_s if self._recorded else 0.0
        self._length = last + max(1.0, _typical_step(self._recorded))

    @property
    def remaining(self) -> int:
        """Values not yet released in the current pass (0 when a non-looping replay is done)."""
        return len(self._recorded) - self._next

    @property
    def finished(self) -> bool:
        """True once a non-looping replay has released everything."""
        return not self._loop and self._next >= len(self._recorded)

    def due(self, elapsed_wall_s: float) -> list[Reading]:
        """Readings whose re-based time has come after ``elapsed_wall_s`` seconds of wall time."""
        horizon = elapsed_wall_s * self._speed
        out: list[Reading] = []
        while True:
            base = self._pass * self._length
            while (
                self._next < len(self._recorded)
                and base + self._recorded[self._next].offset_s <= horizon
            ):
                item = self._recorded[self._next]
                out.append(to_reading(item, self._start + timedelta(seconds=base)))
                self._next += 1
            if self._next < len(self._recorded) or not self._loop:
                return out
            self._pass += 1
            self._next = 0


@dataclass(frozen=True, slots=True)
class RecordedSnippet:
    """One waveform snippet of a recording: offset of its first sample, int16 counts."""

    offset_s: float
    channel: str
    sample_rate_hz: float
    scale: float
    samples: str  # base64 int16le, as on the wire (vitals.WaveformSnippet)
    n_samples: int

    @property
    def end_s(self) -> float:
        """Offset just after the last sample (the snippet is complete then)."""
        return self.offset_s + self.n_samples / self.sample_rate_hz


def ecg_snippets(
    signal_names: Sequence[str],
    counts: Sequence[Sequence[int]],
    fs_hz: float,
    scales: Sequence[float],
    *,
    snippet_s: float = 10.0,
    every_s: float = 60.0,
) -> list[RecordedSnippet]:
    """Cut ECG leads (rows of ADC counts minus baseline) into snippets, sorted by offset.

    One snippet of ``snippet_s`` seconds per lead every ``every_s`` seconds (``every_s`` =
    ``snippet_s`` gives a continuous strip, ambulance mode). Leads not in
    :data:`ECG_SIGNALS` are skipped. A trailing part shorter than ``snippet_s`` is dropped.
    """
    if fs_hz <= 0 or snippet_s <= 0 or every_s < snippet_s:
        raise ReplayError("need fs > 0, snippet_s > 0 and every_s >= snippet_s")
    per_snippet = round(snippet_s * fs_hz)
    stride = round(every_s * fs_hz)
    leads = [(i, ECG_SIGNALS[name]) for i, name in enumerate(signal_names) if name in ECG_SIGNALS]
    out: list[RecordedSnippet] = []
    for first in range(0, len(counts) - per_snippet + 1, stride):
        rows = counts[first : first + per_snippet]
        for index, channel in leads:
            values = [int(row[index]) for row in rows]
            if any(not -32768 <= v <= 32767 for v in values):
                raise ReplayError(f"{channel}: ADC counts beyond int16 at sample {first}")
            packed = base64.b64encode(struct.pack(f"<{len(values)}h", *values)).decode("ascii")
            out.append(
                RecordedSnippet(
                    round(first / fs_hz, 3), channel, fs_hz, scales[index], packed, len(values)
                )
            )
    return out


class WaveformSchedule:
    """Releases recorded snippets, re-based onto ``start``, once their last sample has passed.

    Pure like :class:`ReplaySchedule`; items are :class:`vitals.WaveformSnippet` with the
    ``replayed`` and ``replay_offset_s=`` quality flags.
    """

    def __init__(
        self,
        recorded: Sequence[RecordedSnippet],
        start: datetime,
        speed: float = 1.0,
        *,
        subject: str,
        device: str,
        incident: str | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._recorded = sorted(recorded, key=lambda item: (item.end_s, item.channel))
        self._start = start
        self._speed = speed
        self._subject = _check_identifier(subject, "subject")
        self._device = _check_identifier(device, "device")
        self._incident = incident
        self._next = 0

    @property
    def remaining(self) -> int:
        """Snippets not released yet."""
        return len(self._recorded) - self._next

    def due(self, elapsed_wall_s: float) -> list[WaveformSnippet]:
        """Snippets complete after ``elapsed_wall_s`` seconds of wall time."""
        horizon = elapsed_wall_s * self._speed
        out: list[WaveformSnippet] = []
        while self._next < len(self._recorded) and self._recorded[self._next].end_s <= horizon:
            item = self._recorded[self._next]
            out.append(
                WaveformSnippet(
                    subject=self._subject,
                    device=self._device,
                    channel=item.channel,
                    start=self._start + timedelta(seconds=item.offset_s),
                    sample_rate_hz=item.sample_rate_hz,
                    scale=item.scale,
                    samples=item.samples,
                    source="replay",
                    incident=self._incident,
                    quality=(REPLAYED, f"{OFFSET_FLAG}{item.offset_s:g}"),
                )
            )
            self._next += 1
        return out


def load_wfdb_waveform(
    record_path: Path,
    *,
    snippet_s: float = 10.0,
    every_s: float = 60.0,
    max_seconds: float | None = None,
) -> list[RecordedSnippet]:
    """Read an ECG WFDB record's digital samples (``wfdb``) and cut them into snippets.

    Counts are the ADC values minus the baseline (``value_mV = count / adc_gain``), so the
    snippets carry exactly the recorded resolution (MIT-BIH: 11 bits, 200 counts/mV).
    """
    try:
        import wfdb  # noqa: PLC0415 - optional dependency, only for WFDB replay
    except ImportError:
        raise ReplayError(
            "replaying WFDB records needs the wfdb package: pip install 'vitalstream[replay]'",
            kind="unsupported",
        ) from None
    base = record_path.with_suffix("") if record_path.suffix == ".hea" else record_path
    try:
        header: Any = wfdb.rdheader(str(base))
        sampto = (
            None
            if max_seconds is None
            else min(int(header.sig_len), round(max_seconds * float(header.fs)))
        )
        record: Any = wfdb.rdrecord(str(base), physical=False, sampto=sampto)
    except (OSError, ValueError) as exc:
        raise ReplayError(f"cannot read WFDB record {base}: {exc}") from None
    names = list(record.sig_name)
    if not any(name in ECG_SIGNALS for name in names):
        raise ReplayError(
            f"record {base} has no ECG lead vitalstream knows ({', '.join(names)}); "
            f"known: {', '.join(ECG_SIGNALS)}"
        )
    baselines = [int(b) for b in record.baseline]
    counts = [[int(v) - baselines[i] for i, v in enumerate(row)] for row in record.d_signal]
    scales = [1.0 / float(gain) for gain in record.adc_gain]
    return ecg_snippets(
        names, counts, float(record.fs), scales, snippet_s=snippet_s, every_s=every_s
    )


def _typical_step(recorded: Sequence[RecordedValue]) -> float:
    offsets = sorted({item.offset_s for item in recorded})
    steps = [b - a for a, b in itertools.pairwise(offsets)]
    return min(steps) if steps else 1.0


# -- shell: files and the clock ------------------------------------------------------------------


def load_wfdb(
    record_path: Path,
    *,
    subject: str | None = None,
    device: str | None = None,
    emit_not_measured: bool = True,
) -> list[RecordedValue]:
    """Read a WFDB record (``.hea`` path or the path without extension) via ``wfdb``.

    ``wfdb`` is imported here, lazily: a gateway without replay does not need it (install the
    ``replay`` extra). The subject defaults to ``replay-<record name>``.
    """
    try:
        import wfdb  # noqa: PLC0415 - optional dependency, only for WFDB replay
    except ImportError:
        raise ReplayError(
            "replaying WFDB records needs the wfdb package: pip install 'vitalstream[replay]'",
            kind="unsupported",
        ) from None
    base = record_path.with_suffix("") if record_path.suffix == ".hea" else record_path
    try:
        record: Any = wfdb.rdrecord(str(base))
    except (OSError, ValueError) as exc:
        raise ReplayError(f"cannot read WFDB record {base}: {exc}") from None
    name = str(record.record_name)
    return numerics_to_recorded(
        list(record.sig_name),
        record.p_signal,
        float(record.fs),
        subject=subject or f"replay-{name}",
        device=device or f"replay-{name}",
        emit_not_measured=emit_not_measured,
    )


def load_recording(
    path: Path,
    *,
    subject: str | None = None,
    device: str | None = None,
    emit_not_measured: bool = True,
) -> list[RecordedValue]:
    """A CSV file (by ``.csv`` suffix) or a WFDB record, as sorted recorded values."""
    if path.suffix.lower() == ".csv":
        if subject is not None:
            raise ReplayError("a CSV names its subjects itself; do not set subject for it")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ReplayError(f"cannot read {path}: {exc}") from None
        recorded = csv_to_recorded(text)
        if device is not None:
            recorded = [
                RecordedValue(r.offset_s, r.subject, device, r.metric, r.value, r.no_value)
                for r in recorded
            ]
        return recorded
    return load_wfdb(path, subject=subject, device=device, emit_not_measured=emit_not_measured)


class Schedule(Protocol):
    """Anything that releases readings (or ECG snippets) by elapsed wall time
    (ReplaySchedule, WaveformSchedule, TimeWarpSource)."""

    def due(self, elapsed_wall_s: float) -> Sequence[Reading | WaveformSnippet]:
        """Readings due after ``elapsed_wall_s`` seconds."""
        ...


class ReplaySource:
    """An EdgeAgent source (a callable) playing a schedule against the monotonic clock.

    The first call starts the clock, so the agent's start-up time does not count.
    """

    def __init__(
        self,
        schedule: Schedule,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.schedule = schedule
        self._clock = clock
        self._started: float | None = None

    def __call__(self) -> Sequence[Reading | WaveformSnippet]:
        now = self._clock()
        if self._started is None:
            self._started = now
        return self.schedule.due(now - self._started)

    def close(self) -> None:
        """Nothing to release (the recording is in memory); present for a uniform shell."""
