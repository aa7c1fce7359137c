"""``vitalstream audit export``: a time window of the audit log for the supervisor, re-checkable."""

from __future__ import annotations

import csv
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import typer
from typer.testing import CliRunner

from ingest_service.audit import AuditEntry, append, read_all
from ingest_service.schema import migrate
from vitalstream.commands.audit import audit_app

#: Long before the test runs: the export appends its own audit row at the real now.
T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(audit_app, name="audit")

    @app.callback()
    def _root() -> None:
        """Test root."""

    return app


def _seed(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        for i in range(6):
            append(
                conn,
                AuditEntry(
                    time=T0 + timedelta(hours=i),
                    actor="doctor:dr-li",
                    action="read",
                    resource=f"subject/pdemo{i}/readings",
                    detail={"role": "doctor", "purpose": "ward round, bed 3", "returned": i},
                ),
            )


def _export(database_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        _app(), ["audit", "export", "--database-url", database_url, "--actor", "sup:wang", *args]
    )
    return result.exit_code, result.stdout


def test_export_csv_and_jsonl_of_a_window_and_the_export_is_audited(
    database_url: str, tmp_path: Path
) -> None:
    _seed(database_url)
    # 09:00 (inclusive) to 12:00 (exclusive), the second bound given in UTC+8.
    window = ["--since", "2024-03-01T09:00:00Z", "--until", "2024-03-01T20:00:00+08:00"]
    code, out = _export(database_url, *window, "--out", str(tmp_path / "a.jsonl"), "--json")
    assert code == 0, out
    assert json.loads(out.strip().splitlines()[-1]) == {
        "rows": 3, "out": str(tmp_path / "a.jsonl"), "format": "jsonl",
    }  # fmt: skip
    lines = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [r["id"] for r in lines] == [2, 3, 4]
    assert lines[0]["time"] == "2024-03-01T09:00:00.000000+00:00"
    assert lines[0]["detail"] == {"role": "doctor", "purpose": "ward round, bed 3", "returned": 1}
    # The window is a piece of the chain: each row links to the one before it.
    assert lines[1]["prev_hash"] == lines[0]["hash"] and lines[2]["prev_hash"] == lines[1]["hash"]
    assert not (tmp_path / "a.jsonl").stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)

    code, out = _export(database_url, *window, "--out", str(tmp_path / "a.csv"))
    assert code == 0 and "exported 3 audit rows" in out, out
    with (tmp_path / "a.csv").open(newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert [int(r["id"]) for r in table] == [2, 3, 4]
    assert [json.loads(r["detail"]) for r in table] == [line["detail"] for line in lines]
    assert [r["hash"] for r in table] == [line["hash"] for line in lines]

    with psycopg.connect(database_url) as conn:
        rows = read_all(conn)
    exports = [r.entry for r in rows if r.entry.action == "export"]
    assert [(e.actor, e.resource, e.detail["format"], e.detail["rows"]) for e in exports] == [
        ("sup:wang", "audit_log/export", "jsonl", 3),
        ("sup:wang", "audit_log/export", "csv", 3),
    ]


def test_export_refuses_bad_arguments(database_url: str, tmp_path: Path) -> None:
    _seed(database_url)
    ok = ["--since", "2024-03-01", "--until", "2024-03-02"]
    assert _export(database_url, *ok, "--out", str(tmp_path / "a.txt"))[0] == 2
    assert _export(database_url, "--since", "yesterday", "--until", "2026-11-26",
                   "--out", str(tmp_path / "a.csv"))[0] == 2  # fmt: skip
    assert _export(database_url, "--since", "2026-11-26", "--until", "2026-11-25",
                   "--out", str(tmp_path / "a.csv"))[0] == 2  # fmt: skip
    assert not (tmp_path / "a.csv").exists()
    code, out = _export(database_url, *ok, "--out", str(tmp_path / "all.csv"), "--json")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["rows"] == 6
