"""What a decoder produces: device-level measurements, before a shell binds them to a subject.

A decoder knows the metric, value, unit and (when the device sent one) the measurement time;
it does not know the patient, the device id or the outbox sequence number. The edge shell
turns Measurements into ``vitals.Reading`` with :func:`to_reading`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

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


def place_rr_intervals(
    measurements: Sequence[Measurement], received_at: datetime
) -> list[Measurement]:
    """Give each RR interval of one notification its own beat time.

    A Heart Rate Measurement (0x2A37) may carry several RR intervals and no timestamp. Bound
    to the receipt time they would all share one (device, metric, time) key and all but one
    would be dropped as duplicates. The intervals are consecutive and the last one ends at
    (about) the notification (GATT HRS 1.0, 3.1.1.5: oldest first), so each is stamped with
    the beat that ends it: ``received_at`` minus the sum of the intervals after it. Flagged
    ``time_from_rr`` so nobody takes it for a device clock.
    """
    out = list(measurements)
    later_ms = 0.0
    for index in range(len(out) - 1, -1, -1):
        m = out[index]
        if m.metric != "rr_interval" or m.time is not None or m.value is None:
            continue
        out[index] = replace(
            m,
            time=received_at - timedelta(milliseconds=later_ms),
            quality=(*m.quality, "time_from_rr"),
        )
        later_ms += m.value
    return out
