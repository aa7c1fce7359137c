"""The fast decoder of the hottest payload, a readings :class:`~vitals.Batch`.

The ingest service decodes every reading it stores, and building one pydantic model per
reading was the largest single cost of an ingest worker (docs/benchmarks.md). msgspec decodes
the same JSON into slotted structs in C, about three times faster. The pydantic models stay
the contract: :func:`decode_batch` takes the fast path only when the payload passes every
check of :class:`~vitals.Reading` and :class:`~vitals.Batch` there, and hands anything else
to ``decode(payload, Batch)``, which either accepts it (lenient input the structs refuse,
such as ``"90"`` for a number) or says what is wrong in the contract's own words. Either way
the caller gets :class:`WireBatch` and :class:`WireReading`: the same fields, values and UTC
times as the models. ``tests/unit/vitals/test_wire.py`` holds the two paths to the same
answers on generated payloads.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec

from vitals.catalogue import CATALOGUE
from vitals.codec import MAX_PAYLOAD_BYTES, decode
from vitals.models import IDENTIFIER_PATTERN, Batch, NoValue, Reading, Source

# msgspec matches with re.search, where "$" also matches before a final newline; "\Z" does
# not, like the Rust regex behind the models' pattern.
_Identifier = Annotated[str, msgspec.Meta(pattern=IDENTIFIER_PATTERN.removesuffix("$") + r"\Z")]


class WireReading(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """A decoded :class:`~vitals.Reading` (same fields; ``time`` in UTC)."""

    subject: _Identifier
    device: _Identifier
    metric: str
    unit: str
    time: datetime
    source: Source
    schema_version: Literal[1] = 1
    value: float | None = None
    no_value: NoValue | None = None
    seq: Annotated[int, msgspec.Meta(ge=0)] = 0
    quality: tuple[str, ...] = ()
    original_value: float | None = None
    original_unit: str | None = None
    incident: _Identifier | None = None

    @property
    def key(self) -> tuple[str, str, datetime]:
        """The idempotency key (device, metric, time)."""
        return (self.device, self.metric, self.time)

    def with_quality(self, *flags: str) -> WireReading:
        """The same reading with ``flags`` added to its quality."""
        return msgspec.structs.replace(self, quality=(*self.quality, *flags))

    def to_model(self) -> Reading:
        """The contract model of this reading (for encoding it, e.g. into a dead letter)."""
        return Reading.model_validate(msgspec.structs.asdict(self))


class WireBatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A decoded :class:`~vitals.Batch`."""

    batch_id: _Identifier
    gateway: _Identifier
    sent_at: datetime
    readings: Annotated[tuple[WireReading, ...], msgspec.Meta(min_length=1)]
    schema_version: Literal[1] = 1


#: Either view of a reading: what producers build (the model) or what ingest decodes.
ReadingLike = Reading | WireReading

_DECODER = msgspec.json.Decoder(WireBatch)
#: A time with more than six fractional digits: msgspec rounds it to the microsecond where
#: the models truncate, so such payloads take the models' path.
_SUB_MICROSECOND = re.compile(rb":\d\d\.\d{7}")


def decode_batch(payload: bytes) -> WireBatch:
    """Decode a readings batch, or raise ``PayloadError`` exactly as ``decode(…, Batch)``."""
    if len(payload) <= MAX_PAYLOAD_BYTES and not _SUB_MICROSECOND.search(payload):
        try:
            batch = _DECODER.decode(payload)
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass
        else:
            checked = _checked(batch)
            if checked is not None:
                return checked
    return _from_model(decode(payload, Batch))


def _checked(batch: WireBatch) -> WireBatch | None:
    """``batch`` with UTC times when it passes the models' own checks, else None."""
    if batch.sent_at.tzinfo is None:
        return None
    moved = False
    for reading in batch.readings:
        spec = CATALOGUE.get(reading.metric)
        value = reading.value
        if (
            spec is None
            or reading.unit != spec.unit
            or (value is None) == (reading.no_value is None)
            or (value is not None and not math.isfinite(value))
        ):
            return None
        zone = reading.time.tzinfo
        if zone is not UTC:
            if zone is None:
                return None
            moved = True
    if not moved:
        return batch
    return msgspec.structs.replace(
        batch,
        readings=tuple(
            r if r.time.tzinfo is UTC else msgspec.structs.replace(r, time=r.time.astimezone(UTC))
            for r in batch.readings
        ),
    )


def _from_model(batch: Batch) -> WireBatch:
    """The structs of a batch the models accepted (the slow path's answer)."""
    return WireBatch(
        batch_id=batch.batch_id,
        gateway=batch.gateway,
        sent_at=batch.sent_at,
        readings=tuple(
            WireReading(**{name: getattr(r, name) for name in Reading.model_fields})
            for r in batch.readings
        ),
    )
