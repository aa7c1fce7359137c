"""HL7 v2 original-mode acknowledgements (ACK with MSA AA/AE/AR) for the edge's MLLP listener.

Monitors send ORU^R01 and wait for an ACK before sending the next message (HL7 v2.6 2.9.2
original acknowledgment mode; IHE PCD TF-2 PCD-01 expects an application ACK). The listener
must answer every frame, even one it cannot decode, otherwise the monitor stalls or resends.

Pure: the caller passes the time and the new control id (STYLE.md: never read the clock here).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from firmware_bridge.errors import DecodeError

#: HL7 table 0008: AA accept; AE error (bad content, e.g. unknown codes are NOT this - the
#: message is accepted and the row ignored); AR reject (not HL7, unsupported message type).
AckCode = Literal["AA", "AE", "AR"]

_DEFAULT_ENCODING = "^~\\&"
_MSA_TEXT_MAX = 80  # HL7 v2.6 2.14.8.3: MSA-3 text message, ST(80)


def ack_code_for(error: DecodeError | None) -> AckCode:
    """The MSA-1 code for a decode outcome: accept, or reject what cannot be processed."""
    if error is None:
        return "AA"
    # Not HL7 / not a message type we take: reject, the sender must not resend it unchanged.
    if error.kind in ("malformed", "unsupported"):
        return "AR"
    return "AE"


def build_ack(
    original: str,
    code: AckCode,
    *,
    control_id: str,
    now: datetime,
    text: str = "",
) -> str:
    """An ACK for ``original`` (as received): MSH with sender and receiver swapped, MSA echoing
    the original MSH-10. Works for garbage too: then MSA-2 is empty and the code should be AR.

    ``text`` goes to MSA-3 (escaped, truncated to 80 characters); never put patient data in it.
    """
    field_sep, encoding, header = _original_header(original)
    # HL7 v2.6 2.14.9.2 MSH-2 order: component, repetition, escape, subcomponent.
    component, repetition, escape, subcomponent = encoding[0], encoding[1], encoding[2], encoding[3]

    def escape_text(value: str) -> str:
        # HL7 v2.6 2.7.1: escape the delimiters themselves, escape character first.
        out = value.replace(escape, f"{escape}E{escape}")
        for char, name in (
            (field_sep, "F"),
            (component, "S"),
            (repetition, "R"),
            (subcomponent, "T"),
        ):
            out = out.replace(char, f"{escape}{name}{escape}")
        return "".join(ch if ch.isprintable() else " " for ch in out)

    def get(index: int) -> str:
        return header[index] if index < len(header) else ""

    message_type = get(9).split(component)
    trigger = message_type[1] if len(message_type) > 1 else ""
    timestamp = now.astimezone(UTC).strftime("%Y%m%d%H%M%S") + "+0000"
    msh = field_sep.join(
        [
            "MSH",
            encoding,
            get(5),  # sending application = original receiving application
            get(6),
            get(3),  # receiving application = original sender
            get(4),
            timestamp,
            "",
            component.join(["ACK", trigger, "ACK"]) if trigger else "ACK",
            escape_text(control_id),
            get(11) or "P",
            get(12) or "2.6",
        ]
    )
    msa_fields = ["MSA", code, get(10)]
    if text:
        msa_fields.append(escape_text(text[:_MSA_TEXT_MAX]))
    return "\r".join([msh, field_sep.join(msa_fields)]) + "\r"


def _original_header(original: str) -> tuple[str, str, list[str]]:
    """(field separator, encoding characters, MSH fields indexed as MSH-n) or defaults."""
    start = original.find("MSH")
    if start < 0 or len(original) < start + 8:
        return "|", _DEFAULT_ENCODING, []
    line = original[start:].replace("\n", "\r").split("\r", 1)[0]
    field_sep = line[3]
    fields = line.split(field_sep)
    encoding = fields[1] if len(fields) > 1 else ""
    usable = (
        not field_sep.isalnum()
        and field_sep.isprintable()
        and not field_sep.isspace()
        and len(encoding) in (4, 5)
        and len(set(encoding + field_sep)) == len(encoding) + 1
        and all(not c.isalnum() and c.isprintable() and not c.isspace() for c in encoding)
    )
    if not usable:
        return "|", _DEFAULT_ENCODING, []
    # fields[0] = "MSH", fields[1] = MSH-2; MSH-1 is the separator itself, so MSH-n = fields[n-1].
    return field_sep, encoding[:4], ["MSH", field_sep, *fields[1:]]
