"""The ingest service's rule runner against PostgreSQL: stale-data alerts come from the tick.

A batch judges the subjects in it; a wearable that went silent is found by the timer tick
(``IngestService._maintain`` → ``RuleRunner.tick``), which sweeps every known subject.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from alert_rules.ruleset import build_ruleset
from ingest_service.rules_runner import RuleRunner
from ingest_service.schema import migrate
from vitals import Reading

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _heart_rate(subject: str, at: datetime) -> Reading:
    return Reading(
        subject=subject,
        device=f"{subject}-band",
        metric="heart_rate",
        value=72.0,
        unit="/min",
        time=at,
        source="sim",
    )


def test_a_silent_wearable_is_alerted_by_the_tick_not_by_other_batches(database_url: str) -> None:
    """IEC 60601-1-8 loss of monitoring data (elderly pack ``wearable_silent``): 1 h silent."""
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        runner = RuleRunner()
        runner.load(conn)
        runner.rules = build_ruleset(["core", "elderly"])  # as a subject's settings would
        first = runner.judge(conn, [_heart_rate("sim-quiet", T0)], T0)
        conn.commit()
        runner.adopt(first, {"sim-quiet"})

        later = T0 + timedelta(hours=3)
        busy = runner.judge(conn, [_heart_rate("sim-busy", later)], later)
        conn.commit()
        runner.adopt(busy, {"sim-busy"})
        assert [a.subject for a in busy.alerts] == []

        ticked = runner.tick(conn, later)
        conn.commit()
        assert ("sim-quiet", "wearable_silent") in {(a.subject, a.rule) for a in ticked.alerts}
        stored = conn.execute(
            "SELECT count(*) FROM alerts WHERE subject = 'sim-quiet' AND rule = 'wearable_silent'"
        ).fetchone()
        assert stored is not None and stored[0] == 1
