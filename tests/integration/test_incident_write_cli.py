"""`vitalstream incident open|update|handoff` as a user runs it, against a real fresh database
(through `python -m vitalstream.commands.incident` until cli.py wires `incident_app`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from test_api_support import audit_rows


def _run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VITALSTREAM_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "vitalstream.commands.incident", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


def _json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, "--json prints exactly one object"
    value: dict[str, Any] = json.loads(lines[0])
    return value


def test_open_update_handoff(database_url: str, tmp_path: Path) -> None:
    opened = _json(
        _run(database_url, "open", "--gateway", "amb-3", "--incident", "inc-cli-1",
             "--complaint", "Fall from ladder", "--pathway", "trauma", "--by", "medic-1",
             "--json")
    )  # fmt: skip
    assert opened["kind"] == "open" and opened["event_id"].startswith("cli-")
    assert opened["incident"]["subject"].startswith("tmp-")
    assert _run(database_url, "open", "--gateway", "amb-3", "--incident", "inc-cli-1").returncode
    updated = _json(
        _run(database_url, "update", "inc-cli-1", "--eta", "2026-11-25T11:20:00+00:00",
             "--findings", '{"injured": true, "gcs_motor": 5}', "--json")
    )  # fmt: skip
    assert updated["kind"] == "update"
    assert updated["incident"]["findings"]["gcs_motor"] == 5
    assert updated["incident"]["timeline"]["eta"].startswith("2026-11-25T11:20:00")
    assert _run(database_url, "update", "inc-cli-1", "--eta", "tomorrow").returncode == 2
    assert _run(database_url, "update", "inc-cli-1", "--findings", "[1]").returncode == 2
    assert _run(database_url, "update", "nope", "--pathway", "stroke").returncode == 1

    out = tmp_path / "bundle.json"
    handed = _json(
        _run(database_url, "handoff", "inc-cli-1", "--sbar", '{"situation": "Trauma, GCS M5"}',
             "--out", str(out), "--json")
    )  # fmt: skip
    assert handed["out"] == str(out)
    bundle = Bundle.model_validate_json(out.read_text(encoding="utf-8"))
    assert bundle.id == handed["bundle_id"] and handed["bundle"]["type"] == "document"
    assert _run(database_url, "handoff", "inc-cli-1").returncode == 1
    shown = _json(_run(database_url, "show", "inc-cli-1", "--json"))
    assert shown["status"] == "handed_over" and shown["handoff"]["bundle_id"] == bundle.id
    assert [e["kind"] for e in shown["events"]] == ["open", "update", "handover"]

    writes = [r for r in audit_rows(database_url) if r[3].get("via") == "cli"]
    assert [(r[0], r[1]) for r in writes][:1] == [("cli:medic-1", "incident_opened")]
    assert [r[1] for r in writes] == [
        "incident_opened",
        "incident_updated",
        "incident_handed_over",
    ]
