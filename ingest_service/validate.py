"""Validation of one MQTT message against the contract (pure: ``now`` is passed in).

Policy (docs/ingest.md):
- a message that cannot be decoded, whose topic is not a gateway topic, or whose batch names
  another gateway than its topic (a gateway may only speak for itself) is rejected whole and
  dead-lettered with its raw bytes;
- inside a good batch, a reading with a value outside the catalogue's plausible range is a
  device fault: that reading alone is dead-lettered (``implausible``), the rest are stored;
- a measurement time more than 5 minutes in the future or older than 30 days is stored but
  flagged (``future_time`` / ``stale_time``): the value is real, its clock may not be.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from vitals import PayloadError, Reading, metric, parse_topic
from vitals.wire import WireBatch, WireReading, decode_batch

FUTURE_TOLERANCE = timedelta(minutes=5)
STALE_AFTER = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class RejectedReading:
    """One reading of a batch that goes to the dead letters, with the reason."""

    reading: Reading  # the model: a dead letter holds the reading encoded as the contract
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class AcceptedBatch:
    """A decoded batch split into readings to store and readings to dead-letter."""

    batch: WireBatch
    readings: tuple[WireReading, ...]
    rejected: tuple[RejectedReading, ...]


@dataclass(frozen=True, slots=True)
class RejectedMessage:
    """A message rejected whole."""

    gateway: str | None
    kind: str
    detail: str


def validate_message(
    topic: str, payload: bytes, *, prefix: str, now: datetime
) -> AcceptedBatch | RejectedMessage:
    """Decode and check a ``.../readings`` message."""
    try:
        gateway, _kind = parse_topic(topic, prefix)
    except PayloadError as exc:
        return RejectedMessage(None, exc.kind, exc.detail)
    try:
        batch = decode_batch(payload)
    except PayloadError as exc:
        return RejectedMessage(gateway, exc.kind, exc.detail)
    if batch.gateway != gateway:
        return RejectedMessage(
            gateway,
            "gateway_mismatch",
            f"batch claims gateway {batch.gateway!r} but was published under {gateway!r}",
        )
    good: list[WireReading] = []
    bad: list[RejectedReading] = []
    future, stale = now + FUTURE_TOLERANCE, now - STALE_AFTER
    for reading in batch.readings:
        spec = metric(reading.metric)
        value = reading.value
        if value is not None and not spec.is_plausible(value):
            bad.append(
                RejectedReading(
                    reading.to_model(),
                    "implausible",
                    f"{reading.metric} = {value:g} {spec.unit} is outside the plausible "
                    f"range {spec.plausible_min:g}..{spec.plausible_max:g}",
                )
            )
        elif reading.time > future:
            good.append(reading.with_quality("future_time"))
        elif reading.time < stale:
            good.append(reading.with_quality("stale_time"))
        else:
            good.append(reading)
    return AcceptedBatch(batch, tuple(good), tuple(bad))
