"""Health cards against a real PostgreSQL: issue, resolve, revoke, audit, and the CLI.

Subjects are pseudonym-shaped made-up strings; no ID number is involved at all.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from ingest_service.audit import iter_rows, verify
from ingest_service.health_card import HealthCardError, issue, resolve_card, revoke
from ingest_service.identity import PseudonymKey
from ingest_service.mpi import register
from ingest_service.schema import migrate
from vitalstream.commands.card import card_app

NOW = datetime.now(UTC)
KEY = PseudonymKey(version=1, secret=bytes(range(32)))
OLD = "p" + "a" * 26  # the resident's pseudonym under key version 1 (made up)
NEW = "p" + "b" * 26  # ... and under version 2


def test_issue_resolve_revoke_and_audit(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        register(conn, {1: OLD})  # enrolled before the rotation
        register(conn, {1: OLD, 2: NEW})
        card = issue(conn, NEW, key=KEY, actor="clerk-1", now=NOW)
        assert card.subject == OLD  # the canonical subject
        found = resolve_card(conn, card.token, keys={1: KEY}, actor="nurse-3", now=NOW)
        assert (found.subject, found.card_id) == (OLD, card.card_id)
        with pytest.raises(HealthCardError) as expired:
            resolve_card(
                conn, card.token, keys={1: KEY}, actor="nurse-3", now=NOW + timedelta(days=400)
            )
        assert expired.value.kind == "card_expired"
        with pytest.raises(HealthCardError) as unknown:
            issue(conn, "p" + "c" * 26, key=KEY, actor="clerk-1", now=NOW)
        assert unknown.value.kind == "unknown_subject"

        assert revoke(conn, card.card_id, actor="clerk-1", now=NOW)
        assert not revoke(conn, card.card_id, actor="clerk-1", now=NOW)
        with pytest.raises(HealthCardError) as revoked:
            resolve_card(conn, card.token, keys={1: KEY}, actor="nurse-3", now=NOW)
        assert revoked.value.kind == "card_revoked"
        actions = conn.execute("SELECT actor, action FROM audit_log ORDER BY id").fetchall()
        assert actions == [
            ("clerk-1", "card_issue"),
            ("nurse-3", "card_resolve"),
            ("clerk-1", "card_revoke"),
            ("nurse-3", "card_denied"),
        ]
    with psycopg.connect(database_url) as conn:
        assert verify(iter_rows(conn)).ok


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(card_app, name="card")

    @app.callback()
    def _root() -> None:
        """Test root."""

    return app


def test_cli_issue_writes_a_qr_and_resolve_finds_the_subject(
    database_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        register(conn, {1: OLD})
    runner = CliRunner()
    common = ["--database-url", database_url, "--key-dir", str(tmp_path / "keys"), "--json"]
    out = tmp_path / "card.png"
    result = runner.invoke(
        _app(), ["card", "issue", "--subject", OLD, "--ttl", "30", "--out", str(out), *common]
    )
    assert result.exit_code == 0, result.output
    issued = json.loads(result.stdout.strip().splitlines()[-1])
    assert issued["subject"] == OLD and out.read_bytes().startswith(b"\x89PNG")
    assert OLD not in issued["token"]
    assert (tmp_path / "keys" / "key-v1.bin").stat().st_mode & 0o077 == 0

    result = runner.invoke(_app(), ["card", "resolve", issued["token"], *common])
    assert result.exit_code == 0, result.output
    resolved = json.loads(result.stdout.strip().splitlines()[-1])
    assert resolved["subject"] == OLD and resolved["card_id"] == issued["card_id"]

    tampered = issued["token"][:-5] + ("AAAAA" if issued["token"][-5:] != "AAAAA" else "BBBBB")
    result = runner.invoke(_app(), ["card", "resolve", tampered, *common])
    assert result.exit_code == 3
    assert json.loads(result.stdout.strip().splitlines()[-1])["error"]["kind"] == "card_invalid"

    result = runner.invoke(
        _app(),
        ["card", "revoke", issued["card_id"], "--database-url", database_url, "--json"],
    )
    assert result.exit_code == 0
    result = runner.invoke(_app(), ["card", "resolve", issued["token"], *common])
    assert result.exit_code == 3
    assert json.loads(result.stdout.strip().splitlines()[-1])["error"]["kind"] == "card_revoked"
