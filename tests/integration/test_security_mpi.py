"""Master patient index and the audited merge of a temporary subject, on a real PostgreSQL.

Subjects here are pseudonyms of SYNTHETIC IDs (region 110101, made-up dates, computed check
characters) or made-up pseudonym-shaped strings; no real person.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from ingest_service.audit import iter_rows, verify
from ingest_service.identity import (
    PseudonymKey,
    check_character,
    pseudonyms_for,
    temporary_subject,
    validate_resident_id,
)
from ingest_service.mpi import SubjectError, merge, register, resolve
from ingest_service.schema import migrate
from ingest_service.storage import Delivery, ReadingWriter
from ingest_service.validate import validate_message
from vitals import Batch, Reading, encode
from vitalstream.commands.subject import subject_app

NOW = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
KEY_1 = PseudonymKey(version=1, secret=bytes(range(32)))
KEY_2 = PseudonymKey(version=2, secret=bytes(range(32, 64)))
TEMP = temporary_subject(bytes(range(16)))
OTHER_TEMP = temporary_subject(bytes(range(1, 17)))


def synthetic_id(born: str = "19900307", sequence: str = "123") -> str:
    """A SYNTHETIC resident ID (region 110101) with a valid check character."""
    body = "110101" + born + sequence
    return body + check_character(body)


def subjects_of(number: str, *keys: PseudonymKey) -> dict[int, str]:
    resident = validate_resident_id(number, today=date(2026, 11, 25))
    return pseudonyms_for(resident, {key.version: key for key in keys})


def store(conn: psycopg.Connection[Any], readings: list[Reading], batch_id: str) -> None:
    """Store readings through the real writer (partitions, rollups)."""
    kind = migrate(conn)
    batch = Batch(batch_id=batch_id, gateway="gw-1", sent_at=NOW, readings=tuple(readings))
    payload = encode(batch)
    topic = "vs/v1/gw/gw-1/readings"
    outcome = validate_message(topic, payload, prefix="vs", now=NOW)
    with conn.transaction():
        ReadingWriter(kind).write(conn, [Delivery(topic, payload, NOW, outcome)], NOW)


def spo2(subject: str, device: str, start: datetime, count: int, value: float) -> list[Reading]:
    return [
        Reading(
            subject=subject,
            device=device,
            metric="spo2",
            value=value,
            unit="%",
            time=start + timedelta(seconds=30 * i),
            source="sim",
        )
        for i in range(count)
    ]


def add_alert(conn: psycopg.Connection[Any], subject: str, rule: str, minutes: int) -> int:
    row = conn.execute(
        "INSERT INTO alerts (subject, rule, severity, time, message) VALUES"
        " (%s, %s, 'high', %s, 'synthetic test alert') RETURNING id",
        (subject, rule, NOW - timedelta(minutes=minutes)),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_register_and_resolve_across_key_rotation(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        first = subjects_of(synthetic_id(), KEY_1)
        canonical = register(conn, first)
        assert canonical == first[1]
        # After rotation enrolment knows both versions: the old subject stays canonical.
        both = subjects_of(synthetic_id(), KEY_1, KEY_2)
        assert register(conn, both) == canonical
        assert resolve(conn, both[2]) == canonical
        assert resolve(conn, both[1]) == canonical
        # A resident first enrolled after the rotation is canonical under the newest key.
        newcomer = subjects_of(synthetic_id("20010911", "456"), KEY_1, KEY_2)
        assert register(conn, newcomer) == newcomer[2]
        assert resolve(conn, newcomer[1]) == newcomer[2]
        with pytest.raises(SubjectError) as caught:
            resolve(conn, "p" + "a" * 26)
        assert caught.value.kind == "unknown_subject"
        # Two residents' pseudonyms are never joined.
        with pytest.raises(SubjectError) as conflict:
            register(conn, {1: first[1], 2: newcomer[2]})
        assert conflict.value.kind == "mpi_conflict"
        rows = conn.execute("SELECT count(*) FROM subject_pseudonyms").fetchone()
        assert rows == (4,)


def test_merge_rekeys_readings_alerts_rollups_and_is_audited(database_url: str) -> None:
    real = subjects_of(synthetic_id(), KEY_1, KEY_2)
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        register(conn, {1: real[1]})  # enrolled before the rotation: canonical is real[1]
        register(conn, real)
        store(conn, spo2(real[1], "oxi-home", NOW - timedelta(hours=2), 10, 97.0), "b1")
        store(conn, spo2(TEMP, "amb-oxi", NOW - timedelta(minutes=30), 20, 91.0), "b2")
        store(conn, spo2(OTHER_TEMP, "amb-oxi-2", NOW - timedelta(minutes=30), 5, 95.0), "b3")
        old_real_alert = add_alert(conn, real[1], "spo2_low", 90)
        temp_alert = add_alert(conn, TEMP, "spo2_low", 10)  # newer: stays open
        temp_only = add_alert(conn, TEMP, "tachycardia", 5)

        # Merging into the post-rotation pseudonym lands on the canonical subject.
        result = merge(conn, TEMP, real[2], "clerk-7", "identified at ER triage", now=NOW)

        assert result.subject == real[1]
        assert (result.readings, result.alerts, result.repeat) == (20, 2, False)
        assert result.alerts_closed == (old_real_alert,)
        assert result.rollup_rows > 0
        count = conn.execute("SELECT count(*) FROM readings WHERE subject = %s", (TEMP,))
        assert count.fetchone() == (0,)
        count = conn.execute("SELECT count(*) FROM readings WHERE subject = %s", (real[1],))
        assert count.fetchone() == (30,)
        untouched = conn.execute(
            "SELECT count(*) FROM readings WHERE subject = %s", (OTHER_TEMP,)
        ).fetchone()
        assert untouched == (5,)
        states: dict[int, str] = dict(
            conn.execute("SELECT id, state FROM alerts WHERE subject = %s", (real[1],)).fetchall()
        )
        assert states == {old_real_alert: "resolved", temp_alert: "active", temp_only: "active"}
        for table in ("readings_5min", "readings_1h"):
            left = conn.execute(
                f"SELECT count(*) FROM {table} WHERE subject = %s",
                (TEMP,),
            ).fetchone()
            assert left == (0,)
            total = conn.execute(
                f"SELECT sum(n), sum(sum) FROM {table} WHERE subject = %s",
                (real[1],),
            ).fetchone()
            assert total == (30, 10 * 97.0 + 20 * 91.0)
        merged = conn.execute(
            "SELECT subject, actor, reason, readings, alerts, alerts_closed, audit_id"
            " FROM subject_merges WHERE temporary = %s",
            (TEMP,),
        ).fetchone()
        assert merged == (real[1], "clerk-7", "identified at ER triage", 20, 2, 1, result.audit_id)
        audit = conn.execute(
            "SELECT actor, action, resource, detail FROM audit_log WHERE id = %s",
            (result.audit_id,),
        ).fetchone()
        assert audit is not None
        assert audit[:3] == ("clerk-7", "subject_merge", f"subject/{real[1]}")
        assert audit[3]["temporary"] == TEMP and audit[3]["requested_into"] == real[2]
        assert resolve(conn, TEMP) == real[1]

    with psycopg.connect(database_url) as conn:
        assert verify(iter_rows(conn)).ok


def test_repeat_sweeps_stragglers_and_refusals_change_nothing(database_url: str) -> None:
    real = subjects_of(synthetic_id(), KEY_1)[1]
    other_real = subjects_of(synthetic_id("19751224", "031"), KEY_1)[1]
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        store(conn, spo2(TEMP, "amb-oxi", NOW - timedelta(minutes=30), 4, 93.0), "b1")
        first = merge(conn, TEMP, real, "clerk-7", "identified", now=NOW)
        assert first.readings == 4
        # The ambulance monitor still sends under the temporary subject for a while.
        store(conn, spo2(TEMP, "amb-oxi", NOW - timedelta(minutes=5), 3, 94.0), "b2")
        again = merge(conn, TEMP, real, "clerk-7", "sweep", now=NOW + timedelta(minutes=1))
        assert (again.readings, again.repeat) == (3, True)
        row = conn.execute(
            "SELECT readings FROM subject_merges WHERE temporary = %s", (TEMP,)
        ).fetchone()
        assert row == (7,)

        def refused(kind: str, temporary: str, into: str, reason: str = "identified") -> None:
            with pytest.raises(SubjectError) as caught:
                merge(conn, temporary, into, "clerk-7", reason, now=NOW)
            assert caught.value.kind == kind

        refused("merge_conflict", TEMP, other_real)
        refused("unknown_subject", OTHER_TEMP, real)
        refused("invalid_subject", real, other_real)
        refused("invalid_subject", TEMP, OTHER_TEMP)
        refused("invalid_reason", TEMP, real, "   ")
        # A clerk pasting the ID into the reason: refused, so the audit log never holds it.
        refused("invalid_reason", TEMP, real, f"card {synthetic_id()} shown (synthetic)")
        audit_rows = conn.execute("SELECT count(*) FROM audit_log").fetchone()
        assert audit_rows == (2,)


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(subject_app, name="subject")

    @app.callback()
    def _root() -> None:
        """Test root."""

    return app


def test_cli_merge_and_resolve(database_url: str) -> None:
    real = subjects_of(synthetic_id(), KEY_1)[1]
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        store(conn, spo2(TEMP, "amb-oxi", NOW - timedelta(minutes=30), 2, 93.0), "b1")
    runner = CliRunner()
    base = ["--database-url", database_url, "--json"]
    result = runner.invoke(
        _app(),
        ["subject", "merge", "--temporary", TEMP, "--into", real, "--reason", "triage",
         "--actor", "clerk-9", *base],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["subject"] == real and out["readings"] == 2 and out["repeat"] is False
    result = runner.invoke(_app(), ["subject", "resolve", TEMP, *base])
    assert result.exit_code == 0
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "pseudonym": TEMP,
        "subject": real,
    }
    result = runner.invoke(
        _app(),
        ["subject", "merge", "--temporary", OTHER_TEMP, "--into", real, "--reason", "x", *base],
    )
    assert result.exit_code == 3
    error = json.loads(result.stdout.strip().splitlines()[-1])["error"]
    assert error["kind"] == "unknown_subject"
