"""`vitalstream handoff demo` as a user runs it, for each pathway, against the real services:
the right team is pre-alerted, within 2 s of the finding, and bundle.json is a FHIR Bundle."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fhir.resources.R4B.bundle import Bundle
from integration_support import make_data_dir

pytestmark = pytest.mark.slow

EXPECTED_TEAM = {
    "stroke": "stroke_team",
    "stemi": "cath_lab",
    "trauma": "trauma_team",
    "maternal": "obstetric_team",
}
ID_PATTERN = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")


def _command() -> list[str]:
    """`vitalstream handoff` once cli.py wires it; the module's own entry point until then."""
    probe = subprocess.run(
        [sys.executable, "-m", "vitalstream", "handoff", "--help"],
        capture_output=True,
        check=False,
        timeout=60,
    )
    if probe.returncode == 0:
        return [sys.executable, "-m", "vitalstream", "handoff"]
    return [sys.executable, "-m", "vitalstream.commands.handoff"]


@pytest.mark.parametrize("pathway", sorted(EXPECTED_TEAM))
def test_handoff_demo_activates_the_team_notifies_fast_and_writes_a_valid_bundle(
    pathway: str, database_url: str, broker_url: str, topic_prefix: str, tmp_path: Path
) -> None:
    data_dir = make_data_dir()
    out = tmp_path / "out"
    env = {
        **os.environ,
        "VITALSTREAM_DATA_DIR": str(data_dir),
        "VITALSTREAM_DATABASE_URL": database_url,
        "VITALSTREAM_BROKER_URL": broker_url,
        "VITALSTREAM_TOPIC_PREFIX": topic_prefix,
    }
    proc = subprocess.run(
        [*_command(), "demo", "--pathway", pathway, "--out", str(out), "--json"],
        capture_output=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    lines = proc.stdout.decode().strip().splitlines()
    assert len(lines) == 1, "--json must print exactly one JSON object on stdout"
    summary: dict[str, Any] = json.loads(lines[0])

    assert summary["pathway"] == pathway
    assert summary["activated"] == [EXPECTED_TEAM[pathway]]
    assert 0 <= summary["activation_to_notification_ms"] < 2000
    bundle_path = Path(summary["bundle"])
    assert bundle_path == out / "bundle.json"

    text = bundle_path.read_text()
    bundle = Bundle.model_validate_json(text)  # checked from outside with fhir.resources
    assert bundle.type == "document"
    resources = [entry.resource for entry in bundle.entry or []]
    kinds = [type(r).__name__ for r in resources]
    assert kinds[0] == "Composition"
    assert {"Patient", "Encounter", "Observation", "Condition"} <= set(kinds)
    raw = json.loads(text)
    observations = [
        e["resource"] for e in raw["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    coded = [o for o in observations if "valueQuantity" in o]
    assert coded and all(
        {c["system"] for c in o["code"]["coding"]} >= {"http://loinc.org"} for o in coded
    )
    assert any("dataAbsentReason" in o for o in observations)  # the capnography gap
    assert not ID_PATTERN.search(text)

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT a.team, n.activation_to_notification_ms, h.receipt->>'status'"
            " FROM pathway_activations a JOIN pathway_notifications n ON n.activation_id = a.id"
            " JOIN handoffs h ON h.incident = a.incident WHERE a.incident = %s",
            (summary["incident_id"],),
        ).fetchone()
    assert row is not None
    assert row[0] == EXPECTED_TEAM[pathway] and row[1] < 2000 and row[2] == "accepted"
