"""What a decoder produces: device-level measurements, before a shell binds them to a subject.

A decoder knows the metric, value, unit and (when the device sent one) the measurement time;
it does not know the patient, the device id or the outbox sequence number. The edge shell
turns Measurements into ``vitals.Reading`` with :func:`to_reading`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vitals import NoValue, Reading, Source


@dataclass(frozen=True, slots=True)
class Measurement:
    """One decoded value in canonical catalogue units (``value`` None iff ``no_value`` set)."""

    metric: str
    value: float | None
    unit: str
    time: datetime | None = None
    no_value: NoValue | None = None
    original_value: float | None = None
    original_unit: str | None = None
    quality: tuple[str, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)


def to_reading(
    measurement: Measurement,
    *,
    subject: str,
    device: str,
    received_at: datetime,
    source: Source,
    seq: int = 0,
) -> Reading:
    """Bind a measurement to its subject and device; a missing device time becomes receipt time.

    When the device gave no timestamp the reading is flagged ``time_from_receipt`` so that
    nobody mistakes gateway time for measurement time.
    """
    quality = measurement.quality
    moment = measurement.time
    if moment is None:
        moment = received_at
        quality = (*quality, "time_from_receipt")
    return Reading(
        subject=subject,
        device=device,
        metric=measurement.metric,
        value=measurement.value,
        no_value=measurement.no_value,
        unit=measurement.unit,
        time=moment,
        seq=seq,
        source=source,
        quality=quality,
        original_value=measurement.original_value,
        original_unit=measurement.original_unit,
    )
