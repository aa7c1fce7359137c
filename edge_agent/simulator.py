"""A simulator source: synthetic home patients and an ambulance patient (pure, seeded).

Everything here is SYNTHETIC and labelled so (source ``sim``, ids starting with ``sim``): it
never pretends to be a real recording (real recordings are replayed from ../shared/data).
Cadences follow how the devices are used at home: a wrist oximeter/wearable every minute,
a BP cuff twice a day (07:30 and 19:30 local time), a glucometer before meals (06:45, 11:30,
17:30) for the diabetic patient, a scale each morning (07:00) for the heart-failure patient,
a thermometer each morning for the frail elderly patient. Heart rate and SpO2 dip at night.

Scripted events sit at fixed fractions of the simulated window so that a short, time-warped
demo still shows them: a COPD desaturation, a hypoglycaemia, a hypertensive crisis, and one
motion artifact (a pulse of 400/min that ingest must dead-letter as implausible). The
ambulance patient deteriorates linearly towards shock over the transport.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from vitals import Reading
from vitals import metric as catalogue_metric

#: Local clock of the simulated homes (China Standard Time, UTC+8): schedules are local.
LOCAL_ZONE = ZoneInfo("Asia/Shanghai")

Condition = Literal["hypertension", "diabetes", "copd", "heart_failure", "elderly"]
HOME_CONDITIONS: tuple[Condition, ...] = (
    "hypertension",
    "diabetes",
    "copd",
    "heart_failure",
    "elderly",
)


@dataclass(frozen=True, slots=True)
class SimPatient:
    """One simulated patient behind one gateway."""

    subject: str
    gateway: str
    condition: Condition | Literal["ambulance"]
    incident: str | None = None

    def device(self, kind: str) -> str:
        """Stable device id of this patient's ``kind`` device (oximeter, cuff, ...)."""
        return f"{self.gateway}-{kind}"


def _reading(
    patient: SimPatient, device_kind: str, metric_name: str, value: float, moment: datetime
) -> Reading:
    return Reading(
        subject=patient.subject,
        device=patient.device(device_kind),
        metric=metric_name,
        value=value,
        unit=catalogue_metric(metric_name).unit,
        time=moment,
        source="sim",
        incident=patient.incident,
    )


def _local_times(start: datetime, end: datetime, at: time) -> Iterator[datetime]:
    """Every occurrence of local wall-clock time ``at`` in [start, end)."""
    day = start.astimezone(LOCAL_ZONE).date()
    while True:
        moment = datetime.combine(day, at, tzinfo=LOCAL_ZONE)
        if moment >= end:
            return
        if moment >= start:
            yield moment
        day += timedelta(days=1)


def _is_night(moment: datetime) -> bool:
    hour = moment.astimezone(LOCAL_ZONE).hour
    return hour >= 23 or hour < 6


@dataclass(frozen=True, slots=True)
class _Baseline:
    heart_rate: float = 72.0
    spo2: float = 97.0
    systolic: float = 128.0
    diastolic: float = 80.0
    glucose: float = 6.5
    weight: float = 68.0


_BASELINES: dict[str, _Baseline] = {
    "hypertension": _Baseline(systolic=152.0, diastolic=94.0, heart_rate=76.0),
    "diabetes": _Baseline(glucose=7.4, weight=74.0),
    "copd": _Baseline(spo2=92.0, heart_rate=84.0),
    "heart_failure": _Baseline(heart_rate=80.0, weight=71.0),
    "elderly": _Baseline(heart_rate=66.0, systolic=138.0, diastolic=76.0),
}


def simulate_home(patient: SimPatient, start: datetime, end: datetime, seed: int) -> list[Reading]:
    """All readings of one home patient in [start, end), sorted by time."""
    if patient.condition == "ambulance":
        raise ValueError("use simulate_ambulance for the ambulance patient")
    rng = random.Random(seed)
    base = _BASELINES[patient.condition]
    window = end - start
    out: list[Reading] = []

    desat_from = start + window * 0.25
    desat_to = desat_from + timedelta(minutes=20)
    minute = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while minute < end:
        night = _is_night(minute)
        hr = base.heart_rate - (8 if night else 0) + rng.gauss(0, 3)
        spo2 = base.spo2 - (0.8 if night else 0) + rng.gauss(0, 0.7)
        if patient.condition == "copd" and desat_from <= minute < desat_to:
            spo2 = 87.0 + rng.gauss(0, 0.6)
        out.append(_reading(patient, "wearable", "heart_rate", round(hr), minute))
        out.append(_reading(patient, "wearable", "spo2", min(100, round(spo2)), minute))
        minute += timedelta(minutes=1)

    def blood_pressure(moment: datetime, systolic: float, diastolic: float) -> None:
        mean = diastolic + (systolic - diastolic) / 3
        for name, value in (
            ("bp_systolic", systolic),
            ("bp_diastolic", diastolic),
            ("bp_mean", mean),
        ):
            out.append(_reading(patient, "cuff", name, round(value), moment))
        out.append(
            _reading(
                patient, "cuff", "pulse_rate", round(base.heart_rate + rng.gauss(0, 4)), moment
            )
        )

    for at in (time(7, 30), time(19, 30)):
        for moment in _local_times(start, end, at):
            blood_pressure(
                moment, base.systolic + rng.gauss(0, 7), base.diastolic + rng.gauss(0, 5)
            )

    if patient.condition == "hypertension":
        crisis = start + window * 0.55
        blood_pressure(crisis, 186, 114)
        blood_pressure(crisis + timedelta(minutes=10), 182, 110)
    if patient.condition == "diabetes":
        for at in (time(6, 45), time(11, 30), time(17, 30)):
            for moment in _local_times(start, end, at):
                glucose = round(base.glucose + rng.gauss(0, 1.0), 1)
                out.append(_reading(patient, "glucometer", "glucose", glucose, moment))
        hypo = start + window * 0.40
        out.append(_reading(patient, "glucometer", "glucose", 2.8, hypo))
        out.append(_reading(patient, "glucometer", "glucose", 4.6, hypo + timedelta(minutes=15)))
    if patient.condition in ("heart_failure", "elderly"):
        for moment in _local_times(start, end, time(7, 0)):
            weight = round(base.weight + rng.gauss(0, 0.2), 1)
            out.append(_reading(patient, "scale", "weight", weight, moment))
    if patient.condition == "elderly":
        for moment in _local_times(start, end, time(8, 0)):
            temperature = round(36.6 + rng.gauss(0, 0.2), 1)
            out.append(_reading(patient, "thermometer", "body_temperature", temperature, moment))
        # A motion artifact from the cuff: physiologically impossible, must be dead-lettered.
        out.append(_reading(patient, "cuff", "pulse_rate", 400, start + window * 0.70))

    return sorted(out, key=lambda r: r.time)


def simulate_ambulance(
    patient: SimPatient, start: datetime, end: datetime, seed: int, *, cadence_s: float = 15.0
) -> list[Reading]:
    """An ambulance patient deteriorating towards shock over [start, end), every ``cadence_s``.

    NIBP every 12th step and GCS/temperature every 40th (3 and 10 minutes at the default 15 s);
    a higher cadence (ambulance mode, e.g. 5 s) makes those proportionally more frequent.
    """
    rng = random.Random(seed)
    total = (end - start).total_seconds()
    out: list[Reading] = []

    def lerp(first: float, last: float, fraction: float) -> float:
        return first + (last - first) * fraction

    if cadence_s <= 0:
        raise ValueError("cadence_s must be positive")
    moment = start + timedelta(seconds=cadence_s)
    step = 0
    while moment < end:
        f = (moment - start).total_seconds() / total
        values = {
            "heart_rate": lerp(96, 136, f) + rng.gauss(0, 2),
            "spo2": min(100.0, lerp(96, 86, f) + rng.gauss(0, 0.5)),
            "respiratory_rate": lerp(18, 29, f) + rng.gauss(0, 1),
            "etco2": lerp(38, 30, f) + rng.gauss(0, 1),
        }
        if step % 12 == 0:  # NIBP every 3 minutes
            systolic = lerp(118, 82, f) + rng.gauss(0, 3)
            diastolic = lerp(74, 50, f) + rng.gauss(0, 2)
            values |= {
                "bp_systolic": systolic,
                "bp_diastolic": diastolic,
                "bp_mean": diastolic + (systolic - diastolic) / 3,
            }
        if step % 40 == 0:
            values["gcs"] = 15 if f < 0.5 else 14
            values["body_temperature"] = lerp(37.2, 38.6, f)
        for name, value in values.items():
            rounded = round(value, 1) if name == "body_temperature" else round(value)
            out.append(_reading(patient, "monitor", name, rounded, moment))
        moment += timedelta(seconds=cadence_s)
        step += 1
    return out


class TimeWarpSource:
    """Releases pre-simulated readings as a warped clock passes their measurement time.

    ``sim_time = sim_start + elapsed_wall_seconds * speed``; pure, so tests can drive it.
    """

    def __init__(self, readings: Sequence[Reading], sim_start: datetime, speed: float) -> None:
        self._readings = sorted(readings, key=lambda r: r.time)
        self._sim_start = sim_start
        self._speed = speed
        self._next = 0

    def due(self, elapsed_wall_s: float) -> list[Reading]:
        """Readings whose time has come after ``elapsed_wall_s`` seconds of wall time."""
        first = self._next
        if elapsed_wall_s == float("inf"):
            self._next = len(self._readings)
            return self._readings[first:]
        horizon = self._sim_start + timedelta(seconds=elapsed_wall_s * self._speed)
        while self._next < len(self._readings) and self._readings[self._next].time <= horizon:
            self._next += 1
        return self._readings[first : self._next]

    @property
    def remaining(self) -> int:
        """How many readings have not been released yet."""
        return len(self._readings) - self._next
