"""Payload codec: models <-> MQTT payload bytes (UTF-8 JSON).

JSON keeps payloads readable in a broker console and in the dead-letter table; the size cost
is small next to TLS framing for batches of tens of readings. Decoding never raises anything
but ``PayloadError`` (with ``kind`` = ``too_large``, ``malformed`` or ``schema``).
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from vitals.errors import PayloadError

#: Upper bound on one MQTT payload the ingest service accepts (a batch of ~2 000 readings).
MAX_PAYLOAD_BYTES = 1_000_000

ModelT = TypeVar("ModelT", bound=BaseModel)


def encode(model: BaseModel) -> bytes:
    """Serialise a contract model to payload bytes."""
    return model.model_dump_json(exclude_none=True).encode()


def decode(payload: bytes, model: type[ModelT], *, max_bytes: int = MAX_PAYLOAD_BYTES) -> ModelT:
    """Parse payload bytes into ``model`` or raise a ``PayloadError`` that says why."""
    if len(payload) > max_bytes:
        raise PayloadError(f"payload of {len(payload)} bytes exceeds {max_bytes}", kind="too_large")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"payload is not UTF-8 at byte {exc.start}") from None
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        kind = "malformed" if first["type"] == "json_invalid" else "schema"
        raise PayloadError(
            f"{where}: {first['msg']} ({exc.error_count()} error(s))", kind=kind
        ) from None
