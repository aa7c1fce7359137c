"""HL7 v2 ORU^R01 from bedside and ambulance monitors -> catalogue measurements (pure, no I/O).

The syntax (separators, repetitions, components, escape sequences) is python-hl7's job; this
module decides what each OBX row means, through the tables in :mod:`firmware_bridge.hl7_codes`.
Every OBX ends up in exactly one of ``measurements``, ``alarms`` or ``ignored`` (with a reason):
nothing is dropped silently and no value is guessed.

References: HL7 v2.6 chapter 2 (MSH, escape sequences 2.7), chapter 3 (PID), chapter 7 (ORU^R01,
OBR, OBX); IHE PCD Technical Framework Vol. 2, transaction PCD-01 "Communicate PCD Data".
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import hl7  # type: ignore[import-untyped]

from firmware_bridge import hl7_codes
from firmware_bridge.errors import MalformedError, UnsupportedError
from firmware_bridge.measurement import Measurement
from firmware_bridge.mllp import Frame, deframe_all
from vitals import CATALOGUE, NoValue

__all__ = [
    "Alarm",
    "Ignored",
    "OruResult",
    "PatientIdentifier",
    "decode_all",
    "decode_oru",
    "mask_identifier",
    "split_messages",
]

_SEGMENT_SEPARATOR = "\r"
_BATCH_ENVELOPE = frozenset({"FHS", "FTS", "BHS", "BTS"})


@dataclass(frozen=True, slots=True)
class PatientIdentifier:
    """One PID identifier, masked: a clear identifier never leaves the decoder."""

    masked: str
    field: str
    """Where it came from: ``PID-2``, ``PID-3``, ``PID-4``, ``PID-19`` or ``PID-20``."""
    type_code: str = ""
    """CX-5 identifier type (MR, PI, NI, SS ...)."""
    authority: str = ""
    """CX-4 assigning authority (namespace id)."""

    def as_dict(self) -> dict[str, str]:
        """JSON form for the CLI."""
        out = {"id": self.masked, "field": self.field}
        if self.type_code:
            out["type"] = self.type_code
        if self.authority:
            out["authority"] = self.authority
        return out


@dataclass(frozen=True, slots=True)
class Alarm:
    """A technical or physiological alarm reported in an OBX row (never a vital)."""

    code: str
    text: str
    time: datetime | None
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ignored:
    """An OBX row (or segment) deliberately not turned into a measurement, and why."""

    code: str
    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class OruResult:
    """Everything vitalstream takes from one ORU^R01 message."""

    control_id: str
    """MSH-10: echoed in the MSA of the ACK (HL7 v2.6 2.14.9.10)."""
    processing_id: str
    """MSH-11: ``P`` production, ``T`` training/test, ``D`` debugging (HL7 table 0103)."""
    message_type: str
    sending_application: str
    patient: tuple[PatientIdentifier, ...]
    measurements: tuple[Measurement, ...]
    alarms: tuple[Alarm, ...]
    ignored: tuple[Ignored, ...]

    @property
    def is_test(self) -> bool:
        """MSH-11 = T: a test message; the shell must not chart its readings as patient data."""
        return self.processing_id == "T"

    def as_dict(self) -> dict[str, Any]:
        """The contract's JSON object for one message (CONTRACTS.md, ``decode hl7``)."""
        return {
            "control_id": self.control_id,
            "processing_id": self.processing_id,
            "patient": {"identifiers": [ident.as_dict() for ident in self.patient]},
            "readings": [_reading_json(item) for item in self.measurements],
            "alarms": [
                {"code": alarm.code, "text": alarm.text, "time": _iso(alarm.time)}
                for alarm in self.alarms
            ],
            "ignored": [
                {"code": item.code, "reason": item.reason}
                | ({"detail": item.detail} if item.detail else {})
                for item in self.ignored
            ],
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _reading_json(item: Measurement) -> dict[str, Any]:
    out: dict[str, Any] = {
        "metric": item.metric,
        "value": item.value,
        "unit": item.unit,
        "time": _iso(item.time),
    }
    if "channel" in item.extra:
        out["channel"] = item.extra["channel"]
    out["code"] = item.extra.get("code", "")
    if item.no_value is not None:
        out["no_value"] = item.no_value
    if item.original_unit is not None:
        out["original_value"] = item.original_value
        out["original_unit"] = item.original_unit
    for key in ("reference_range", "utc_offset", "local_time"):
        if key in item.extra:
            out[key] = item.extra[key]
    if item.quality:
        out["quality"] = list(item.quality)
    return out


# -- masking ------------------------------------------------------------------------------------

#: Characters kept at the end of a masked identifier (enough to tell two beds apart on a screen).
MASK_KEEP = 2
#: Identifiers shorter than this are masked completely: keeping 2 of 5 would reveal too much.
MASK_MIN_LENGTH = 6


def mask_identifier(identifier: str) -> str:
    """``"800115105533"`` -> ``"**********33"``: keep the last two characters, never more.

    Short identifiers are masked entirely, so no caller can recover a national ID from output.
    """
    if len(identifier) < MASK_MIN_LENGTH:
        return "*" * len(identifier)
    return "*" * (len(identifier) - MASK_KEEP) + identifier[-MASK_KEEP:]


# -- splitting input into messages --------------------------------------------------------------


def _normalise_newlines(text: str) -> str:
    # HL7 v2.6 2.5.3: segments end with CR. Files and e-mails turn that into LF or CRLF.
    return text.replace("\r\n", "\r").replace("\n", "\r")


def _decode_bytes(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        # MSH-18 8859/1 (Philips IntelliVue) is Latin-1: every byte decodes.
        if b"8859/1" in data[:512]:
            return data.decode("latin-1")
        raise MalformedError(
            "HL7 input is not UTF-8 and does not declare 8859/1 in MSH-18",
            offset=error.start,
        ) from None


def split_messages(data: bytes | str) -> list[str]:
    """Split one input into HL7 messages: MLLP-framed, or bare segments (CR, LF or CRLF).

    Several messages per input are normal (a capture, a file of exports); each new MSH starts
    a message. Batch/file envelopes (FHS/BHS/BTS/FTS) are dropped. Anything before the first
    MSH, and any non-whitespace garbage between MLLP frames, is rejected with its offset.
    """
    if isinstance(data, bytes):
        if bytes([0x0B]) in data:
            return _split_mllp(data)
        text = _decode_bytes(data)
    else:
        if "\x0b" in data:
            return _split_mllp(data.encode("utf-8", "surrogatepass"))
        text = data
    return _split_text(text, base_offset=0)


def _split_mllp(data: bytes) -> list[str]:
    messages: list[str] = []
    for event in deframe_all(data):
        if isinstance(event, Frame):
            messages.extend(_split_text(_decode_bytes(event.payload), base_offset=event.offset))
        elif event.data.strip(b" \t\r\n"):
            raise MalformedError(f"MLLP: {event.reason}", offset=event.offset)
    if not messages:
        raise MalformedError("no HL7 message in the MLLP input", offset=0)
    return messages


def _split_text(text: str, *, base_offset: int) -> list[str]:
    messages: list[list[str]] = []
    offset = base_offset
    for segment in _normalise_newlines(text).split(_SEGMENT_SEPARATOR):
        stripped = segment.strip()
        if stripped and stripped[:3] not in _BATCH_ENVELOPE:
            if stripped.startswith("MSH"):
                messages.append([stripped])
            elif not messages:
                raise MalformedError("not HL7: input must start with an MSH segment", offset=offset)
            else:
                messages[-1].append(stripped)
        offset += len(segment) + 1
    if not messages:
        raise MalformedError("not HL7: no MSH segment", offset=base_offset)
    return [_SEGMENT_SEPARATOR.join(segments) + _SEGMENT_SEPARATOR for segments in messages]


# -- raw access to the python-hl7 tree ----------------------------------------------------------
# python-hl7 nests Field > Repetition > Component > str only where a separator occurs, so these
# helpers return the raw (still escaped) text at a position; unescaping is explicit and done in
# one place (_unescape), and never applied to patient identifiers.


def _raw(segment: Sequence[Any], field_num: int, repetition: int = 1, component: int = 1) -> str:
    if field_num >= len(segment):
        return ""
    value = segment[field_num]
    if isinstance(value, str):
        return value if repetition == 1 and component == 1 else ""
    if repetition > len(value):
        return ""
    rep = value[repetition - 1]
    if isinstance(rep, str):
        return rep if component == 1 else ""
    if component > len(rep):
        return ""
    return str(rep[component - 1])


def _raw_field(segment: Sequence[Any], field_num: int) -> str:
    return str(segment[field_num]) if field_num < len(segment) else ""


def _repetitions(segment: Sequence[Any], field_num: int) -> int:
    if field_num >= len(segment):
        return 0
    value = segment[field_num]
    if isinstance(value, str):
        return 1 if value else 0
    return len(value)


def _components(segment: Sequence[Any], field_num: int, repetition: int = 1) -> int:
    if field_num >= len(segment):
        return 0
    value = segment[field_num]
    if isinstance(value, str) or repetition > len(value):
        return 1
    rep = value[repetition - 1]
    return 1 if isinstance(rep, str) else len(rep)


def _segment_id(segment: Sequence[Any]) -> str:
    return str(segment[0]) if segment else ""


# -- header checks ------------------------------------------------------------------------------


def _check_header(message: str) -> None:
    """Validate MSH-1/MSH-2 ourselves so odd encoding characters fail as MalformedError."""
    if not message.startswith("MSH"):
        raise MalformedError("not HL7: message must start with an MSH segment", offset=0)
    if len(message) < 8:
        raise MalformedError("MSH segment too short for its encoding characters", offset=0)
    separator = message[3]
    if separator.isalnum() or separator.isspace() or not separator.isprintable():
        raise MalformedError(f"MSH-1 field separator {separator!r} is not usable", offset=0)
    end = message.find(separator, 4)
    encoding = message[4:end] if end >= 0 else message[4:].split(_SEGMENT_SEPARATOR, maxsplit=1)[0]
    # HL7 v2.6 2.14.9.2: component, repetition, escape, subcomponent (v2.7 adds truncation).
    if len(encoding) not in (4, 5):
        raise MalformedError("MSH-2 must hold 4 encoding characters (^~\\&)", offset=0)
    if len(set(encoding + separator)) != len(encoding) + 1 or any(
        char.isalnum() or char.isspace() or not char.isprintable() for char in encoding
    ):
        raise MalformedError("MSH-2 encoding characters are not distinct punctuation", offset=0)


def _parse(message: str) -> Any:
    segments = [s for s in _normalise_newlines(message).split(_SEGMENT_SEPARATOR) if s.strip()]
    text = _SEGMENT_SEPARATOR.join(segment.strip() for segment in segments)
    _check_header(text)
    if sum(1 for segment in segments if segment.strip().startswith("MSH")) > 1:
        raise MalformedError("more than one MSH segment: split the input with split_messages")
    try:
        return hl7.parse(text)
    except (hl7.HL7Exception, ValueError, IndexError, AssertionError) as error:
        raise MalformedError(f"HL7 syntax: {type(error).__name__}") from None


# -- time ---------------------------------------------------------------------------------------

# HL7 v2.6 2A.3.22 DTM: YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]. Mindray eGateway sends
# milliseconds without the decimal point (YYYYMMDDHHMMSSsss); accepted as that quirk.
_DTM = re.compile(
    r"^(?P<year>\d{4})(?P<month>\d{2})?(?P<day>\d{2})?(?P<hour>\d{2})?(?P<minute>\d{2})?"
    r"(?P<second>\d{2})?(?:\.(?P<fraction>\d{1,6})|(?P<millis>\d{3}))?"
    r"(?P<offset>[+-]\d{4})?$",
    re.ASCII,
)


@dataclass(frozen=True, slots=True)
class _Moment:
    utc: datetime | None
    offset: str | None
    local: str | None
    problem: str | None = None


def _parse_dtm(text: str, default_tz: tzinfo | None) -> _Moment:
    match = _DTM.match(text.strip())
    if match is None:
        return _Moment(None, None, None, problem="unparseable_time")
    parts = match.groupdict()
    fraction = parts["fraction"] or parts["millis"] or ""
    try:
        local = datetime(
            int(parts["year"]),
            int(parts["month"] or 1),
            int(parts["day"] or 1),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            int((fraction + "000000")[:6]),
        )
    except ValueError:
        return _Moment(None, None, None, problem="impossible_time")
    offset_text = parts["offset"]
    if offset_text is not None:
        hours, minutes = int(offset_text[1:3]), int(offset_text[3:5])
        if hours > 14 or minutes > 59:
            return _Moment(None, offset_text, None, problem="impossible_time_zone")
        sign = -1 if offset_text[0] == "-" else 1
        zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
        return _Moment(local.replace(tzinfo=zone).astimezone(UTC), offset_text, None)
    if default_tz is not None:
        aware = local.replace(tzinfo=default_tz)
        delta = aware.utcoffset() or timedelta(0)
        return _Moment(aware.astimezone(UTC), _format_offset(delta), None)
    # No offset and no configured device zone: the time is local to an unknown zone. Keep it
    # as text, do not guess (STYLE.md); the shell falls back to receipt time.
    return _Moment(None, None, local.isoformat())


def _zone_of(text: str) -> tzinfo | None:
    moment = _parse_dtm(text, None) if text.strip() else None
    if moment is None or moment.offset is None or moment.problem is not None:
        return None
    sign = -1 if moment.offset[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(moment.offset[1:3]), minutes=int(moment.offset[3:])))


def _format_offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


# -- numbers ------------------------------------------------------------------------------------

# HL7 v2.6 2A.3.47 NM: optional sign, digits, optional decimal point. No exponent, no blanks.
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$", re.ASCII)


# -- the decoder --------------------------------------------------------------------------------


@dataclass
class _Context:
    escape: str
    default_tz: tzinfo | None
    observation_time: _Moment | None = None  # OBR-7 of the current order
    measurements: list[Measurement] = field(default_factory=list)
    alarms: list[Alarm] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    patient: list[PatientIdentifier] = field(default_factory=list)


def decode_oru(message: str, *, default_tz: tzinfo | None = None) -> OruResult:
    """Decode one ORU^R01 message into measurements, alarms and ignored rows.

    ``default_tz`` is the monitor's configured time zone, applied only to times sent without an
    offset; without it such times are kept as text (``extra["local_time"]``) and ``time`` is None.

    Raises :class:`MalformedError` for input that is not HL7 (no MSH, bad encoding characters,
    no control id) and :class:`UnsupportedError` for any message other than ORU^R01.
    """
    parsed = _parse(message)
    msh = parsed[0]
    message_type = _raw(msh, 9, 1, 1).upper()
    trigger = _raw(msh, 9, 1, 2).upper()
    if not message_type:
        raise MalformedError("MSH-9 message type is empty", offset=0)
    if message_type != "ORU" or trigger not in ("R01", ""):
        shown = f"{message_type}^{trigger}" if trigger else message_type
        raise UnsupportedError(f"message type {shown} is not decoded; only ORU^R01", offset=0)
    control_id = _raw(msh, 10).strip()
    if not control_id:
        raise MalformedError("MSH-10 message control id is empty", offset=0)
    if default_tz is None:
        # HL7 v2.6 2A.3.22: a DTM without offset is in the sender's local zone; MSH-7 with an
        # offset tells us that zone, so it applies to the sender's naive OBR-7/OBX-14 times.
        default_tz = _zone_of(_raw(msh, 7))
    context = _Context(escape=str(parsed.esc), default_tz=default_tz)
    for index, segment in enumerate(parsed):
        if index == 0:
            continue
        kind = _segment_id(segment)
        if kind == "PID":
            context.patient.extend(_patient_identifiers(segment))
        elif kind == "OBR":
            obr_time = _raw(segment, 7)
            context.observation_time = _parse_dtm(obr_time, default_tz) if obr_time else None
        elif kind == "OBX":
            _decode_obx(segment, parsed, context)
    return OruResult(
        control_id=control_id,
        processing_id=_raw(msh, 11).strip().upper(),
        message_type=f"{message_type}^{trigger}" if trigger else message_type,
        sending_application=_unescape(parsed, _raw(msh, 3)),
        patient=tuple(context.patient),
        measurements=tuple(context.measurements),
        alarms=tuple(context.alarms),
        ignored=tuple(context.ignored),
    )


def _unescape(parsed: Any, text: str) -> str:
    """HL7 v2.6 2.7 escape sequences, via python-hl7 (the one place escapes are handled)."""
    return str(parsed.unescape(text)) if text else ""


# HL7 v2.6 3.4.2: PID-2 (patient id, external), PID-3 (identifier list), PID-4 (alternate),
# PID-19 (SSN, national id), PID-20 (driver's licence). All are identifiers; all are masked.
_PID_IDENTIFIER_FIELDS = (2, 3, 4, 19, 20)
_PID_CX_FIELDS = (2, 3, 4)


def _patient_identifiers(segment: Sequence[Any]) -> Iterator[PatientIdentifier]:
    for field_num in _PID_IDENTIFIER_FIELDS:
        for repetition in range(1, _repetitions(segment, field_num) + 1):
            identifier = _raw(segment, field_num, repetition, 1).strip()
            if not identifier or identifier == '""':
                continue
            authority, type_code = "", ""
            if field_num in _PID_CX_FIELDS:
                # CX-4 assigning authority (HD: namespace&universal id&type), CX-5 type code.
                authority = _raw(segment, field_num, repetition, 4).split("&")[0]
                type_code = _raw(segment, field_num, repetition, 5)
            elif field_num == 19:
                type_code = "SS"
            yield PatientIdentifier(
                masked=mask_identifier(identifier),
                field=f"PID-{field_num}",
                type_code=_safe_label(type_code),
                authority=_safe_label(authority),
            )


def _safe_label(text: str) -> str:
    # Authority and type codes are short codes; anything long or odd is masked like an id.
    text = text.strip()
    if len(text) > 20 or any(char.isdigit() for char in text):
        return mask_identifier(text)
    return text


def _code_text(parsed: Any, segment: Sequence[Any]) -> tuple[str, str, str, str]:
    """OBX-3 as (identifier, text, coding system, raw CWE for output)."""
    identifier = _raw(segment, 3, 1, 1).strip()
    text = _unescape(parsed, _raw(segment, 3, 1, 2)).strip()
    system = _raw(segment, 3, 1, 3).strip()
    return identifier, text, system, _raw_field(segment, 3)


def _decode_obx(segment: Sequence[Any], parsed: Any, context: _Context) -> None:
    identifier, text, system_raw, code = _code_text(parsed, segment)
    code = code or "(empty OBX-3)"
    value_type = _raw(segment, 2).strip().upper()
    raw_value = _raw_field(segment, 5)
    moment = _observation_time(segment, context)

    # Alarms first: an alert row is never a vital, whatever its value looks like.
    if system_raw.upper() in hl7_codes.ALARM_CODING_SYSTEMS or _is_mdc_event(
        system_raw, identifier
    ):
        context.alarms.append(
            Alarm(
                code=code,
                text=_unescape(parsed, raw_value).strip() or text,
                time=moment.utc if moment else None,
                extra=_time_extra(moment),
            )
        )
        return

    access_check = _raw(segment, 13).strip().upper()
    if access_check in hl7_codes.NON_MEASUREMENT_ACCESS_CHECKS:
        context.ignored.append(
            Ignored(code, hl7_codes.NON_MEASUREMENT_ACCESS_CHECKS[access_check], "OBX-13")
        )
        return

    system = hl7_codes.CODING_SYSTEMS.get(system_raw.upper(), system_raw.upper())
    row = hl7_codes.lookup(system, identifier, text)
    if row is None:
        if not raw_value.strip() and not value_type:
            # IHE PCD TF-2 PCD-01: rows without value type or value describe the device
            # containment tree (MDS, VMD, channel), not observations.
            context.ignored.append(Ignored(code, "device_hierarchy"))
        else:
            context.ignored.append(Ignored(code, "unmapped_code"))
        return
    if row.metric is None:
        context.ignored.append(Ignored(code, f"vendor_{row.role}"))
        return
    if _label_disagrees(system, row, text):
        context.ignored.append(
            Ignored(code, "code_label_mismatch", f"code means {row.metric}, label does not")
        )
        return

    status = _raw(segment, 11).strip().upper()
    if status in hl7_codes.RESULT_STATUS_IGNORED:
        context.ignored.append(Ignored(code, hl7_codes.RESULT_STATUS_IGNORED[status], "OBX-11"))
        return
    flag = _raw(segment, 8).strip().upper()
    if flag in hl7_codes.ABNORMAL_FLAGS_IGNORED:
        context.ignored.append(Ignored(code, hl7_codes.ABNORMAL_FLAGS_IGNORED[flag], "OBX-8"))
        return

    if moment is not None and moment.problem is not None:
        context.ignored.append(Ignored(code, moment.problem, "OBX-14/OBR-7"))
        return

    metric = row.metric
    canonical_unit = CATALOGUE[metric].unit
    extra = _measurement_extra(segment, code, moment)

    if status in hl7_codes.RESULT_STATUS_NOT_MEASURED:
        context.measurements.append(
            _no_value(metric, canonical_unit, moment, "not_measured", extra)
        )
        return

    number = _numeric_value(
        segment,
        value_type=value_type,
        raw_value=raw_value,
        escape=context.escape,
        code=code,
        context=context,
    )
    if number is None:
        return
    if hl7_codes.is_sentinel(number, metric):
        extra["sentinel"] = raw_value.strip()
        context.measurements.append(
            _no_value(metric, canonical_unit, moment, "not_measured", extra)
        )
        return

    unit_id = _raw(segment, 6, 1, 1).strip()
    unit_text = _unescape(parsed, _raw(segment, 6, 1, 2)).strip()
    if unit_id or unit_text:
        unit = hl7_codes.unit_of(unit_id, unit_text)
        if unit is None:
            context.ignored.append(Ignored(code, "unknown_unit", _raw_field(segment, 6)))
            return
    elif row.implied_unit is not None:
        unit = row.implied_unit
    else:
        context.ignored.append(Ignored(code, "unit_missing", "OBX-6 empty"))
        return

    original_value: float | None = None
    original_unit: str | None = None
    value = number
    if unit != canonical_unit:
        convert = hl7_codes.conversion(unit, canonical_unit, metric)
        if convert is None:
            context.ignored.append(
                Ignored(code, "unit_mismatch", f"{unit} is not convertible to {canonical_unit}")
            )
            return
        original_value, original_unit = number, unit
        value = convert(number)
    if not math.isfinite(value):
        context.ignored.append(Ignored(code, "not_a_number", "value out of range"))
        return
    context.measurements.append(
        Measurement(
            metric=metric,
            value=value,
            unit=canonical_unit,
            time=moment.utc if moment else None,
            original_value=original_value,
            original_unit=original_unit,
            quality=_quality(moment),
            extra=extra,
        )
    )


def _is_mdc_event(system: str, identifier: str) -> bool:
    return (
        system.upper() == "MDC"
        and hl7_codes.is_code_number(identifier)
        and int(identifier) >> 16 == hl7_codes.MDC_EVENT_PARTITION
    )


def _label_disagrees(system: str, row: hl7_codes.CodeRow, text: str) -> bool:
    """A code whose MDC label names a *different* metric: trust neither (seen in the field)."""
    if system != "MDC" or not text.startswith("MDC_"):
        return False
    by_label = hl7_codes.mdc_row_by_label(text)
    return by_label is not None and by_label.metric != row.metric


def _observation_time(segment: Sequence[Any], context: _Context) -> _Moment | None:
    # IHE PCD TF-2 PCD-01: OBX-14 is the observation time; absent, OBR-7 applies to the order.
    text = _raw(segment, 14)
    if text.strip():
        return _parse_dtm(text, context.default_tz)
    return context.observation_time


def _time_extra(moment: _Moment | None) -> dict[str, object]:
    extra: dict[str, object] = {}
    if moment is not None:
        if moment.offset is not None:
            extra["utc_offset"] = moment.offset
        if moment.local is not None:
            extra["local_time"] = moment.local
    return extra


def _quality(moment: _Moment | None) -> tuple[str, ...]:
    if moment is not None and moment.local is not None:
        return ("time_zone_unknown",)
    return ()


def _measurement_extra(
    segment: Sequence[Any], code: str, moment: _Moment | None
) -> dict[str, object]:
    extra: dict[str, object] = {"code": code}
    channel = _raw_field(segment, 4).strip()
    if channel:
        # OBX-4 sub-ID: IHE PCD-01 containment path (MDS.VMD.channel.metric), which tells two
        # channels of one code apart (e.g. Comen SpO2 1.3.1 and 1.3.2).
        extra["channel"] = channel
    reference_range = _raw_field(segment, 7).strip()
    if reference_range:
        extra["reference_range"] = reference_range
    extra.update(_time_extra(moment))
    return extra


def _no_value(
    metric: str, unit: str, moment: _Moment | None, reason: NoValue, extra: dict[str, object]
) -> Measurement:
    return Measurement(
        metric=metric,
        value=None,
        unit=unit,
        time=moment.utc if moment else None,
        no_value=reason,
        quality=_quality(moment),
        extra=extra,
    )


def _numeric_value(
    segment: Sequence[Any],
    *,
    value_type: str,
    raw_value: str,
    escape: str,
    code: str,
    context: _Context,
) -> float | None:
    """OBX-5 as a number, or None after recording why it is not one in ``ignored``."""
    if not raw_value.strip():
        # HL7 v2.6 7.4.2.5: an empty OBX-5 means the value was not entered.
        context.ignored.append(Ignored(code, "not_entered", "OBX-5 empty"))
        return None
    if raw_value.strip() == '""':
        # HL7 v2.6 2.5.3.4: "" is an explicit null.
        context.ignored.append(Ignored(code, "explicit_null", 'OBX-5 ""'))
        return None
    if value_type not in ("NM", "SN", ""):
        context.ignored.append(Ignored(code, "value_type_not_numeric", f"OBX-2 {value_type}"))
        return None
    if escape and escape in raw_value:
        # An escape sequence (HL7 v2.6 2.7) inside a number is never a number: \X..\ or \F\
        # could hide anything. Flag it instead of unescaping and hoping.
        context.ignored.append(Ignored(code, "escape_in_numeric", "OBX-5"))
        return None
    if _repetitions(segment, 5) > 1:
        context.ignored.append(Ignored(code, "repeated_value", "OBX-5"))
        return None
    text = raw_value
    if value_type == "SN" or _components(segment, 5) > 1:
        # HL7 v2.6 2A.3.72 SN: <comparator>^<num1>^<separator>^<num2>. Only "=" / "" with a
        # single number is a plain value; ranges and ratios are not a reading.
        comparator = _raw(segment, 5, 1, 1).strip()
        separator = _raw(segment, 5, 1, 3).strip()
        second = _raw(segment, 5, 1, 4).strip()
        if value_type != "SN" or comparator not in ("", "=") or separator or second:
            context.ignored.append(Ignored(code, "not_a_number", "structured value"))
            return None
        text = _raw(segment, 5, 1, 2)
    text = text.strip()
    if not _NUMBER.match(text):
        context.ignored.append(Ignored(code, "not_a_number", "OBX-5"))
        return None
    number = float(text)
    if not math.isfinite(number):
        context.ignored.append(Ignored(code, "not_a_number", "OBX-5 out of range"))
        return None
    return number


def decode_all(data: bytes | str, *, default_tz: tzinfo | None = None) -> list[OruResult]:
    """Split an input (file, capture) and decode every message; the first failure raises."""
    return [decode_oru(message, default_tz=default_tz) for message in split_messages(data)]
