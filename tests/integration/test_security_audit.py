"""The audit log against a real PostgreSQL: append, verify, tamper, and the CLI."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from ingest_service.audit import AuditEntry, append, iter_rows, read_all, verify
from ingest_service.schema import migrate
from vitalstream.commands.audit import audit_app

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _entry(i: int) -> AuditEntry:
    return AuditEntry(
        time=T0 + timedelta(seconds=i),
        actor="doctor-1" if i % 2 else "nurse-2",
        action="read",
        resource=f"subject/pdemo{i}",
        detail={"role": "doctor", "purpose": "care", "from": "10.1.2.3", "score": 1.5 + i},
    )


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(audit_app, name="audit")

    @app.callback()
    def _root() -> None:
        """Test root."""

    return app


def _cli_verify(database_url: str, *extra: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(
        _app(), ["audit", "verify", "--json", "--database-url", database_url, *extra]
    )
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def test_append_verify_and_tamper(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        for i in range(6):
            append(conn, _entry(i), "sha256" if i == 3 else "sm3")
        rows = read_all(conn)
    assert [row.id for row in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0].entry == _entry(0)
    assert verify(rows).ok
    assert _cli_verify(database_url) == (0, {"rows": 6, "ok": True, "first_bad_row": None})

    with psycopg.connect(database_url, autocommit=True) as conn:
        # The trigger refuses ordinary changes ...
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE audit_log SET actor = 'intruder' WHERE id = 4")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM audit_log WHERE id = 2")
        # ... so the attacker is a superuser who switches triggers off.
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute(
                "UPDATE audit_log SET detail = jsonb_set(detail, '{purpose}', '\"curiosity\"')"
                " WHERE id = 4"
            )
    assert _cli_verify(database_url) == (0, {"rows": 6, "ok": False, "first_bad_row": 4})
    assert _cli_verify(database_url, "--check")[0] == 1


def test_deleted_row_is_found(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        for i in range(5):
            append(conn, _entry(i))
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute("DELETE FROM audit_log WHERE id = 2")
    with psycopg.connect(database_url) as conn:
        result = verify(iter_rows(conn))
    assert (result.rows, result.ok, result.first_bad_row) == (4, False, 3)


def test_concurrent_appends_stay_linear(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)

    def writer(offset: int) -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for i in range(15):
                append(conn, _entry(offset + i))

    threads = [threading.Thread(target=writer, args=(100 * n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with psycopg.connect(database_url) as conn:
        result = verify(iter_rows(conn))
    assert (result.rows, result.ok) == (60, True)


def test_append_inside_a_rolled_back_transaction_leaves_no_row(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        append(conn, _entry(0))
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT 1")  # the caller's own work has opened a transaction
        append(conn, _entry(1))  # ... so the audit row joins it (a savepoint)
        conn.rollback()  # and goes when the work is rolled back
        append(conn, _entry(2))  # no transaction open: append commits on its own
        rows = read_all(conn)
    assert [row.entry.resource for row in rows] == ["subject/pdemo0", "subject/pdemo2"]
    assert verify(rows).ok


def test_verify_on_a_database_without_the_table(database_url: str) -> None:
    assert _cli_verify(database_url) == (0, {"rows": 0, "ok": True, "first_bad_row": None})


def test_verify_unreachable_database_exits_1() -> None:
    result = CliRunner().invoke(
        _app(),
        ["audit", "verify", "--json", "--database-url", "postgresql://nobody@127.0.0.1:1/x"],
    )
    assert result.exit_code == 1
