"""`vitalstream chaos` as CONTRACTS.md runs it: SIGKILLs, then nothing lost or stored twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_chaos_with_broker_and_ingest_kills_loses_nothing(
    data_dir: Path, database_url: str
) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vitalstream",
            "chaos",
            "--broker-kills",
            "2",
            "--ingest-kills",
            "2",
            "--duration",
            "16",
            "--patients",
            "3",
            "--json",
        ],
        capture_output=True,
        timeout=400,
        check=False,
        env={
            **os.environ,
            "VITALSTREAM_DATA_DIR": str(data_dir),
            "VITALSTREAM_DATABASE_URL": database_url,
        },
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["lost"] == 0
    assert summary["duplicates_stored"] == 0
    assert summary["stored"] > 0
    assert summary["broker_kills"] == 2 and summary["broker_restarts"] >= 2
    assert summary["ingest_kills"] == 2 and summary["ingest_restarts"] >= 2
