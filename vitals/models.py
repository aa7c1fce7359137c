"""The contract's models. Nothing else in vitalstream defines a Reading.

All models are frozen pydantic models with ``extra="forbid"`` and timezone-aware datetimes;
each carries ``schema_version`` so a consumer can reject what it does not understand.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from vitals.catalogue import metric as catalogue_metric
from vitals.errors import UnknownMetricError

SCHEMA_VERSION: Literal[1] = 1

#: Identifiers that appear in MQTT topics and database keys: never ``/``, ``+`` or ``#``
#: (MQTT wildcards and level separator), never whitespace.
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
_IDENTIFIER_RE = re.compile(IDENTIFIER_PATTERN)
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]

#: Why a reading has no value. IEEE 11073-20601 special values keep their spec names;
#: ``not_measured`` and ``sensor_off`` come from monitors' sentinels (e.g. -999, 0 = probe off).
NoValue = Literal["NaN", "NRes", "+INF", "-INF", "reserved", "not_measured", "sensor_off"]
Source = Literal["ble", "hl7", "serial", "replay", "sim"]
Severity = Literal["info", "low", "medium", "high", "critical"]
#: Outbox priority lanes, most urgent first (ARCHITECTURE.md, reliability model).
Lane = Literal["alarm", "vitals", "waveform", "backfill"]


def is_identifier(text: str) -> bool:
    """True when ``text`` is usable as a subject, device or gateway id."""
    return bool(_IDENTIFIER_RE.match(text))


def utc(moment: datetime) -> datetime:
    """Normalise an aware datetime to UTC (the wire's time zone)."""
    return moment.astimezone(UTC)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Reading(_Frozen):
    """One measured value of one metric from one device at one time.

    Idempotency key: (device, metric, time). ``value`` is ``None`` exactly when ``no_value``
    says why (a NaN/NRes sentinel is "no value", never 0).
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    subject: Identifier
    device: Identifier
    metric: str
    value: float | None = None
    no_value: NoValue | None = None
    unit: str
    time: AwareDatetime
    seq: int = Field(default=0, ge=0)
    source: Source
    quality: tuple[str, ...] = ()
    original_value: float | None = None
    original_unit: str | None = None
    incident: Identifier | None = None

    @field_validator("time")
    @classmethod
    def _to_utc(cls, moment: datetime) -> datetime:
        return utc(moment)

    @model_validator(mode="after")
    def _check_against_catalogue(self) -> Self:
        try:
            spec = catalogue_metric(self.metric)
        except UnknownMetricError as exc:
            # Inside pydantic only ValueError becomes a ValidationError (and so a typed
            # PayloadError in the codec); anything else would escape as a crash.
            raise ValueError(exc.detail) from None
        if self.unit != spec.unit:
            raise ValueError(
                f"unit {self.unit!r} is not the canonical unit {spec.unit!r} of {self.metric}; "
                "convert in the decoder"
            )
        if (self.value is None) == (self.no_value is None):
            raise ValueError("exactly one of value and no_value must be set")
        if self.value is not None and not math.isfinite(self.value):
            raise ValueError("value must be finite; use no_value for NaN/INF sentinels")
        return self

    @property
    def key(self) -> tuple[str, str, datetime]:
        """The idempotency key (device, metric, time)."""
        return (self.device, self.metric, self.time)


class Batch(_Frozen):
    """What an edge gateway publishes on ``.../readings``: a batch of readings with an id.

    ``sent_at`` is the gateway's wall clock at publish time; the ingest service measures
    publish-to-commit latency from it.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    batch_id: Identifier
    gateway: Identifier
    sent_at: AwareDatetime
    readings: tuple[Reading, ...] = Field(min_length=1)


class BatchAck(_Frozen):
    """The ingest service's confirmation, on ``.../ack``, that batches are durably handled.

    Sent only after the database commit: each listed batch is stored or dead-lettered, so the
    edge may delete it from its outbox (end-to-end acknowledgement; see docs/reliability.md).
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    batch_ids: tuple[Identifier, ...] = Field(min_length=1)
    committed_at: AwareDatetime


class DeviceStatus(_Frozen):
    """One device as its gateway sees it."""

    device: Identifier
    last_reading_at: AwareDatetime | None = None
    battery_pct: float | None = Field(default=None, ge=0, le=100)


class GatewayStatus(_Frozen):
    """Retained on ``.../status``; the broker publishes the last-will copy with ``offline``."""

    schema_version: Literal[1] = SCHEMA_VERSION
    gateway: Identifier
    state: Literal["online", "offline"]
    time: AwareDatetime
    queue_depth: int | None = Field(default=None, ge=0)
    devices: tuple[DeviceStatus, ...] = ()
    software: str | None = None
    #: The version of the down-link :class:`GatewayConfig` in force (its acknowledgement).
    config_version: int | None = Field(default=None, ge=1)
    #: Why the last down-link config was refused (None once one is applied).
    config_error: str | None = None
    #: Rows the outbox dropped by its overflow policy, per lane and device (cumulative).
    dropped: tuple[DroppedCount, ...] = ()
    #: Ambulance mode: the last GPS fix and the crude ETA to the destination hospital.
    position: Position | None = None
    eta: Eta | None = None


class Alert(_Frozen):
    """A rule's finding about one subject, as the engine emits it."""

    schema_version: Literal[1] = SCHEMA_VERSION
    subject: Identifier
    rule: str
    severity: Severity
    time: AwareDatetime
    message: str
    metric: str | None = None
    value: float | None = None
    state: Literal["active", "acknowledged", "resolved"] = "active"


def now_utc() -> datetime:
    """The current time, aware, in UTC. Shells call this; pure code takes ``now`` as input."""
    return datetime.now(UTC)


# -- edge events and the config down-link (issue 6) -------------------------------------------

#: Rule names as in the rule packs (``alert_rules``): lower case, digits and ``_``.
RULE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


class LocalAlarm(_Frozen):
    """An alarm an edge gateway raised itself (local rules engine), sent on ``.../events``.

    ``event_id`` is made once at the gateway and kept through re-sends, so the platform
    stores each alarm once. ``time`` is the measurement time of the reading that raised it;
    ``raised_at`` the gateway's clock; ``uplink`` whether the gateway was connected then.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["local_alarm"] = "local_alarm"
    event_id: Identifier
    gateway: Identifier
    subject: Identifier
    rule: str
    severity: Severity
    time: AwareDatetime
    raised_at: AwareDatetime
    message: str
    metric: str | None = None
    value: float | None = None
    device: Identifier | None = None
    uplink: Literal["up", "down"] = "up"


class EventBatch(_Frozen):
    """What a gateway publishes on ``.../events``; acknowledged like a :class:`Batch`."""

    schema_version: Literal[1] = SCHEMA_VERSION
    batch_id: Identifier
    gateway: Identifier
    sent_at: AwareDatetime
    events: tuple[LocalAlarm, ...] = Field(min_length=1)


class AlarmThreshold(_Frozen):
    """A local alarm threshold: ``metric op value`` (in the metric's canonical unit)."""

    name: Annotated[str, StringConstraints(pattern=RULE_NAME_PATTERN)]
    metric: str
    op: Literal["<", "<=", ">", ">="]
    value: float
    severity: Severity = "critical"
    consecutive: int = Field(default=1, ge=1, le=100)
    clear_margin: float = Field(default=0.0, ge=0)
    message: str | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, name: str) -> str:
        try:
            catalogue_metric(name)
        except UnknownMetricError as exc:
            raise ValueError(exc.detail) from None
        return name


class DeviceAssignment(_Frozen):
    """Binds a device to the patient whose readings it takes (re-bindable from the platform)."""

    device: Identifier
    subject: Identifier


class GatewayConfig(_Frozen):
    """The platform's configuration of one gateway, retained on ``.../config`` (down-link).

    Applied by the gateway as a whole or not at all, only when ``version`` is newer than the
    one in force; acknowledged by ``config_version`` on the gateway's retained status.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    gateway: Identifier
    version: int = Field(ge=1)
    issued_at: AwareDatetime
    devices: tuple[DeviceAssignment, ...] = ()
    thresholds: tuple[AlarmThreshold, ...] = ()
    #: Seconds between status reports (higher cadence in ambulance mode); None = default.
    cadence_s: float | None = Field(default=None, gt=0, le=3600)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        devices = [d.device for d in self.devices]
        if len(devices) != len(set(devices)):
            raise ValueError("a device is bound twice")
        names = [t.name for t in self.thresholds]
        if len(names) != len(set(names)):
            raise ValueError("two thresholds have the same name")
        return self


# -- outbox overflow, ambulance position/ETA, ECG waveform lane (issue 6) ----------------------


class DroppedCount(_Frozen):
    """Rows an edge outbox dropped by its overflow policy, per lane and device (cumulative).

    The policy (docs/reliability.md) drops backfill first, then waveform, then vitals, and
    never alarms; the counts persist in the outbox file, so they survive restarts.
    """

    lane: Lane
    device: Identifier
    count: int = Field(ge=1)


class Position(_Frozen):
    """A GPS fix (NMEA 0183 ``$GPRMC``/``$GPGGA``): WGS 84 degrees, UTC time of the fix."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    time: AwareDatetime
    speed_kmh: float | None = Field(default=None, ge=0)
    course_deg: float | None = Field(default=None, ge=0, lt=360)
    source: Literal["gps", "replay", "sim"] = "gps"


class Eta(_Frozen):
    """A crude estimate of arrival at the destination hospital.

    Great-circle distance divided by a speed estimate (docs/edge.md): roads are longer than
    the great circle and traffic is not modelled, so this is a hint for the receiving team,
    not a promise.
    """

    destination: str
    distance_km: float = Field(ge=0)
    speed_kmh: float = Field(gt=0)
    arrival: AwareDatetime
    method: Literal["great_circle"] = "great_circle"


class WaveformSnippet(_Frozen):
    """A few seconds of one waveform channel (e.g. ECG lead II), sent on ``.../waveform``.

    Wire format (docs/edge.md): ``samples`` is base64 of little-endian int16 counts;
    ``value_mV = count * scale``. 10 s of MIT-BIH MLII at 360 Hz with ``scale`` = 0.005 mV
    (the record's ADC gain of 200/mV) is 7 200 bytes of int16, 9 600 characters of base64,
    about 9.9 kB of JSON in all (a JSON list of floats would be 2-3 times that). Idempotency
    key: (device, channel, start).
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    subject: Identifier
    device: Identifier
    channel: Annotated[str, StringConstraints(pattern=r"^ecg_[a-z0-9]{1,3}$")]
    start: AwareDatetime
    sample_rate_hz: float = Field(gt=0, le=10_000)
    unit: Literal["mV"] = "mV"
    scale: float = Field(gt=0)
    encoding: Literal["int16le-base64"] = "int16le-base64"
    samples: str = Field(min_length=4, max_length=400_000)
    source: Source
    incident: Identifier | None = None
    quality: tuple[str, ...] = ()

    @field_validator("start")
    @classmethod
    def _start_utc(cls, moment: datetime) -> datetime:
        return utc(moment)

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, name: str) -> str:
        try:
            spec = catalogue_metric(name)
        except UnknownMetricError as exc:
            raise ValueError(exc.detail) from None
        if not spec.waveform:
            raise ValueError(f"{name} is not a waveform channel")
        return name

    @field_validator("samples")
    @classmethod
    def _int16_base64(cls, text: str) -> str:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("samples is not base64") from None
        if len(raw) % 2:
            raise ValueError("samples is not a whole number of int16 values")
        return text

    @property
    def n_samples(self) -> int:
        """How many samples the snippet carries."""
        return len(base64.b64decode(self.samples)) // 2

    @property
    def duration_s(self) -> float:
        """Length of the snippet in seconds."""
        return self.n_samples / self.sample_rate_hz

    def counts(self) -> list[int]:
        """The raw int16 sample counts."""
        raw = base64.b64decode(self.samples)
        return list(struct.unpack(f"<{len(raw) // 2}h", raw))

    def values_mv(self) -> list[float]:
        """The samples in millivolts."""
        return [count * self.scale for count in self.counts()]

    @property
    def key(self) -> tuple[str, str, datetime]:
        """The idempotency key (device, channel, start)."""
        return (self.device, self.channel, self.start)


def encode_samples(values_mv: Sequence[float], scale: float) -> str:
    """Quantise millivolt samples to int16 counts of ``scale`` mV and base64 them.

    Raises ValueError when a value does not fit int16 at this scale (choose a larger scale).
    """
    if scale <= 0:
        raise ValueError("scale must be positive")
    counts: list[int] = []
    for value in values_mv:
        if not math.isfinite(value):
            raise ValueError("waveform samples must be finite")
        count = round(value / scale)
        if not -32768 <= count <= 32767:
            raise ValueError(f"{value} mV does not fit int16 at {scale} mV per count")
        counts.append(count)
    return base64.b64encode(struct.pack(f"<{len(counts)}h", *counts)).decode("ascii")


class WaveformBatch(_Frozen):
    """What a gateway publishes on ``.../waveform``; acknowledged like a :class:`Batch`."""

    schema_version: Literal[1] = SCHEMA_VERSION
    batch_id: Identifier
    gateway: Identifier
    sent_at: AwareDatetime
    snippets: tuple[WaveformSnippet, ...] = Field(min_length=1)


# GatewayStatus names models defined after it (position, eta, dropped counts).
GatewayStatus.model_rebuild()
