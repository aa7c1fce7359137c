"""Stored-record download over the Record Access Control Point 0x2A52 (pure state machine).

After each (re)connect the BLE shell (:mod:`edge_agent.ble`) asks a glucose meter (GLS 1.0,
Glucose Measurement 0x2A18 + Context 0x2A34) or a CGM (CGMS 1.0.1, CGM Measurement 0x2AA7) for
the records it has not delivered yet: "report stored records with sequence number (GLS) /
time offset (CGMS) >= last downloaded + 1" (``firmware_bridge.gatt.racp.report_from_sequence``;
the first time, "report all"). The device sends the records as notifications on the
measurement characteristic and ends the procedure with a Response Code indication on 0x2A52.

:class:`RacpDownload` is one such procedure, fed with decoded values; it decides nothing about
radios or time. The counter rule (docs/edge.md, "RACP"):

- the last key advances only when the device answers **success**, and only to the highest key
  that was asked for (>= the requested first key); "no records found", an error response, a
  malformed response or a timeout leave it where it was (the next connection asks again; a
  record delivered twice is harmless downstream, its key (device, metric, time) is unique);
- a record below the requested first key (a device ignoring the filter, a re-send) is dropped
  and counted, never delivered again and never moves the counter;
- a record whose key arrives twice in one download is kept once (the last copy wins, as
  ``pair_contexts`` does for contexts);
- glucose contexts are paired with their measurement by sequence number
  (:func:`firmware_bridge.gatt.glucose_context.pair_contexts`); orphans are counted.

:class:`RacpStateStore` persists the last key per device in a small JSON file beside the
outbox (written atomically: temp file, fsync, rename). It also remembers the device address and
(CGM) the session start, so a replaced device or a new CGM session starts from "report all"
instead of waiting forever for keys the new numbering will not reach.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

from firmware_bridge.errors import DecodeError
from firmware_bridge.gatt import racp
from firmware_bridge.gatt._core import DecodeContext, GattResult
from firmware_bridge.gatt.glucose_context import pair_contexts
from firmware_bridge.measurement import Measurement

#: Record Access Control Point (GSS).
RACP: Final = 0x2A52
GLUCOSE_MEASUREMENT: Final = 0x2A18
GLUCOSE_CONTEXT: Final = 0x2A34
CGM_MEASUREMENT: Final = 0x2AA7
#: Measurement characteristic -> where its record key lives (GLS: sequence number in the
#: fields; CGMS: each record's time offset, in the measurement's ``extra``).
RECORD_KEYS: Final[Mapping[int, str]] = {
    GLUCOSE_MEASUREMENT: "sequence_number",
    CGM_MEASUREMENT: "time_offset_min",
}
#: The filter operand is a uint16: keys run 0..65535.
MAX_KEY: Final = 0xFFFF
#: Quality flag on every reading that came from a device's record store (backfill lane).
STORED_RECORD: Final = "stored_record"

Status = Literal["success", "no_records", "error"]


@dataclass(frozen=True, slots=True)
class RacpResponse:
    """The end of a RACP procedure: ``success``, ``no_records`` or ``error`` with a reason."""

    status: Status
    reason: str
    response_code: int | None = None


def parse_response(data: bytes) -> RacpResponse | None:
    """A RACP indication -> the procedure's outcome, or None for a value that does not end a
    report procedure (a Number of Stored Records Response, a Response Code to another request).

    A malformed indication ends the procedure as an ``error`` (the device is not following the
    protocol; asking again next connection is the safe move)."""
    try:
        fields = racp.decode(bytes(data), DecodeContext()).fields
    except DecodeError as error:
        return RacpResponse("error", f"malformed RACP response: {error}")
    if fields["op_code"] != racp.OP_RESPONSE_CODE:
        return None
    if fields["request_op_code"] != racp.OP_REPORT_RECORDS:
        return None
    code = fields["response_code"]
    assert isinstance(code, int)
    name = str(fields["response"])
    if code == 1:
        return RacpResponse("success", name, code)
    if code == 6:
        return RacpResponse("no_records", name, code)
    return RacpResponse("error", name, code)


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One downloaded record: its key and measurements, and (glucose) its paired context."""

    characteristic: int
    key: int
    measurements: tuple[Measurement, ...]
    fields: Mapping[str, object]
    context: Mapping[str, object] | None = None


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """What a finished (or abandoned) download delivers and where the counter goes."""

    response: RacpResponse
    records: tuple[StoredRecord, ...]
    last_key: int | None
    """The key to persist: advanced only on success, else the previous one."""
    dropped_old: int = 0
    """Records below the requested first key (device re-sent them): dropped."""
    repeated: int = 0
    """Keys that arrived more than once in this download (kept once)."""
    orphan_contexts: int = 0


def context_quality(context: Mapping[str, object] | None) -> tuple[str, ...]:
    """Glucose context fields worth carrying on the reading, as quality flags (meal, tester,
    health): ``meal:preprandial``, ``tester:self``, ``health:no_health_issues``."""
    if context is None:
        return ()
    return tuple(
        f"{name}:{context[name]}" for name in ("meal", "tester", "health") if name in context
    )


@dataclass
class RacpDownload:
    """One "report stored records" procedure on one connection (pure; feed it decoded values)."""

    characteristic: int
    last_key: int | None
    _records: dict[int, StoredRecord] = field(default_factory=dict)
    _contexts: list[GattResult] = field(default_factory=list)
    _dropped_old: int = 0
    _repeated: int = 0
    response: RacpResponse | None = None

    def __post_init__(self) -> None:
        if self.characteristic not in RECORD_KEYS:
            raise ValueError(f"0x{self.characteristic:04X} has no RACP record key")

    @property
    def first_key(self) -> int:
        """The lowest key asked for."""
        return 0 if self.last_key is None else self.last_key + 1

    @property
    def done(self) -> bool:
        return self.response is not None

    def request(self) -> bytes:
        """The RACP request to write: all records, or records with key >= last + 1.

        At the top of the uint16 range (65535 already downloaded) the device's numbering must
        have wrapped or restarted: ask for everything (duplicates are harmless downstream).
        """
        if self.last_key is None or self.last_key >= MAX_KEY:
            return racp.report_all()
        return racp.report_from_sequence(self.first_key)

    def on_measurement(self, result: GattResult) -> None:
        """A decoded 0x2A18 or 0x2AA7 value received while the procedure runs."""
        if self.done:
            return
        if self.characteristic == GLUCOSE_MEASUREMENT:
            key = result.fields.get("sequence_number")
            if isinstance(key, int):
                self._keep(
                    StoredRecord(GLUCOSE_MEASUREMENT, key, result.measurements, result.fields)
                )
            return
        by_key: dict[int, list[Measurement]] = {}
        for measurement in result.measurements:
            key = measurement.extra.get("time_offset_min")
            if isinstance(key, int):
                by_key.setdefault(key, []).append(measurement)
        for key, measurements in by_key.items():
            self._keep(StoredRecord(CGM_MEASUREMENT, key, tuple(measurements), {}))

    def on_context(self, result: GattResult) -> None:
        """A decoded 0x2A34 value received while the procedure runs."""
        if not self.done:
            self._contexts.append(result)

    def on_response(self, data: bytes) -> bool:
        """A 0x2A52 indication; True when it ended the procedure."""
        if self.done:
            return False
        self.response = parse_response(data)
        return self.response is not None

    def _keep(self, record: StoredRecord) -> None:
        if record.key < self.first_key and self.last_key is not None and self.last_key < MAX_KEY:
            self._dropped_old += 1
            return
        if record.key in self._records:
            self._repeated += 1
        self._records[record.key] = record

    def finish(self, timeout_reason: str = "no RACP response (timeout)") -> DownloadResult:
        """The records (in key order, contexts paired) and the counter to persist.

        Called without a response (timeout, disconnect), it reports an ``error`` with
        ``timeout_reason``: the records received are delivered, the counter stays."""
        response = self.response or RacpResponse("error", timeout_reason)
        records = [self._records[key] for key in sorted(self._records)]
        orphans = 0
        if self.characteristic == GLUCOSE_MEASUREMENT:
            results = [GattResult("0x2A18", r.measurements, dict(r.fields)) for r in records]
            pairs, orphan_list = pair_contexts(results, self._contexts)
            orphans = len(orphan_list)
            records = [
                StoredRecord(
                    r.characteristic,
                    r.key,
                    r.measurements,
                    r.fields,
                    None if p.context is None else p.context.fields,
                )
                for r, p in zip(records, pairs, strict=True)
            ]
        last_key = self.last_key
        if response.status == "success" and records:
            top = max(r.key for r in records)
            last_key = top if last_key is None or last_key >= MAX_KEY else max(last_key, top)
        return DownloadResult(
            response, tuple(records), last_key, self._dropped_old, self._repeated, orphans
        )


# -- persistence ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RacpState:
    """Per-device download progress (one JSON object per device id)."""

    address: str
    characteristic: int
    last_key: int
    session_start: str | None = None


class RacpStateStore:
    """``{"version": 1, "devices": {device id: {address, characteristic, last_key,
    session_start}}}`` in one JSON file; ``path`` None keeps it in memory only."""

    VERSION: Final = 1

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._states: dict[str, RacpState] = {}
        if path is not None and path.exists():
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("version") != self.VERSION:
                raise ValueError(f"{path}: unknown RACP state version {document.get('version')}")
            for device, entry in document["devices"].items():
                self._states[device] = RacpState(
                    address=str(entry["address"]),
                    characteristic=int(entry["characteristic"]),
                    last_key=int(entry["last_key"]),
                    session_start=entry.get("session_start"),
                )

    def has(self, device: str) -> bool:
        """Whether any progress is known for ``device``."""
        with self._lock:
            return device in self._states

    def last_key(
        self,
        device: str,
        *,
        address: str,
        characteristic: int,
        session_start: datetime | None = None,
    ) -> int | None:
        """The last downloaded key, or None (report all) when nothing is known or the device,
        its record characteristic or its CGM session changed."""
        with self._lock:
            state = self._states.get(device)
        if state is None or state.address.upper() != address.upper():
            return None
        if state.characteristic != characteristic:
            return None
        stamp = None if session_start is None else session_start.isoformat()
        if state.session_start != stamp:
            return None
        return state.last_key

    def commit(self, device: str, state: RacpState) -> None:
        """Remember (and write through) one device's progress."""
        with self._lock:
            if self._states.get(device) == state:
                return
            self._states[device] = state
            if self.path is None:
                return
            document = {
                "version": self.VERSION,
                "devices": {
                    name: {
                        "address": s.address,
                        "characteristic": s.characteristic,
                        "last_key": s.last_key,
                        "session_start": s.session_start,
                    }
                    for name, s in sorted(self._states.items())
                },
            }
            temp = self.path.with_name(self.path.name + ".tmp")
            with temp.open("w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=1, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            temp.replace(self.path)
