"""``vitalstream bench rules``: rules-engine throughput on one core (CONTRACTS.md, bench).

Readings are built before the clock starts (the bench measures the engine, not pydantic):
100 simulated home/ward patients, one reading per metric per minute (heart rate, SpO2, pulse,
respiratory rate; blood pressure every 15 min; temperature hourly; glucose 4 x a day; weight
daily), fed to ``evaluate`` in ingest-sized batches, carrying the state between calls as the
ingest service does. Two runs: the default rule set (``core``), and every shipped pack.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import typer

from alert_rules import EMPTY_STATE, build_ruleset, evaluate, pack_names
from alert_rules.ruleset import RuleSet
from vitals import Reading, metric
from vitalstream.output import emit_json

#: Seconds of evaluation per rule set: long enough to average the shared machine's noise.
DEFAULT_DURATION_S = 3.0
PATIENTS = 100
BATCH = 500

_METRICS: tuple[tuple[str, float, float, int, int], ...] = (
    # metric, mean, sd, every n minutes, decimals (as devices report them)
    ("heart_rate", 78, 12, 1, 0),
    ("pulse_rate", 78, 12, 1, 0),
    ("spo2", 96, 2, 1, 0),
    ("respiratory_rate", 16, 3, 1, 0),
    ("bp_systolic", 132, 18, 15, 0),
    ("bp_diastolic", 82, 10, 15, 0),
    ("body_temperature", 36.8, 0.5, 60, 1),
    ("glucose", 7.0, 2.0, 360, 1),
    ("weight", 72, 0.6, 1440, 1),
)


def synthetic_readings(minutes: int, seed: int = 8) -> list[Reading]:
    """A day-like stream of plausible readings for ``PATIENTS`` subjects, in time order."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 25, tzinfo=UTC)
    readings: list[Reading] = []
    for minute in range(minutes):
        moment = start + timedelta(minutes=minute)
        for patient in range(PATIENTS):
            for name, mean, sd, every, decimals in _METRICS:
                if minute % every:
                    continue
                spec = metric(name)
                value = min(max(rng.gauss(mean, sd), spec.plausible_min), spec.plausible_max)
                readings.append(
                    Reading(
                        subject=f"bench-{patient:03d}",
                        device=f"dev-{patient:03d}",
                        metric=name,
                        value=round(value, decimals),
                        unit=spec.unit,
                        time=moment,
                        source="sim",
                    )
                )
    return readings


def _measure(readings: list[Reading], rules: RuleSet, duration_s: float) -> dict[str, float]:
    processed = 0
    alerts = 0
    started = time.perf_counter()
    elapsed = 0.0
    while elapsed < duration_s:
        state = EMPTY_STATE
        for i in range(0, len(readings), BATCH):
            batch = readings[i : i + BATCH]
            found, state = evaluate(batch, state, batch[-1].time, rules)
            alerts += len(found)
            processed += len(batch)
        elapsed = time.perf_counter() - started
    return {
        "readings_per_s": round(processed / elapsed, 1),
        "readings": processed,
        "alerts": alerts,
        "seconds": round(elapsed, 3),
    }


def bench_rules(duration_s: float = DEFAULT_DURATION_S) -> dict[str, Any]:
    """The bench's result: default rule set first (the headline), then all packs."""
    readings = synthetic_readings(minutes=120)
    default = _measure(readings, build_ruleset(), duration_s)
    every_pack = _measure(readings, build_ruleset(pack_names()), duration_s)
    return {
        "readings_per_s": default["readings_per_s"],
        "readings": default["readings"],
        "seconds": default["seconds"],
        "batch": BATCH,
        "patients": PATIENTS,
        "packs": ["core"],
        "all_packs": {"packs": list(pack_names()), **every_pack},
    }


def bench_rules_command(
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Measure readings per second through the rules engine on one core (pure, no I/O).

    Example: vitalstream bench rules --json  ->  {"readings_per_s": 250000.0, ...}.
    `readings_per_s` is the default rule set (core pack); `all_packs` runs every shipped pack
    (scores, composite, rate of change, stale data) over the same readings.
    """
    result = bench_rules()
    if json_output:
        emit_json(result)
        return
    typer.echo(
        f"{result['readings_per_s']:,.0f} readings/s (core pack), "
        f"{result['all_packs']['readings_per_s']:,.0f} readings/s (all packs)"
    )
