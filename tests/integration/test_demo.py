"""`vitalstream demo` as a user runs it: the CONTRACTS.md summary, embedded fallbacks, kills."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from integration_support import free_port

pytestmark = pytest.mark.slow

CONTRACT_KEYS = {
    "published",
    "stored",
    "duplicates_dropped",
    "lost",
    "dead_lettered",
    "alerts",
    "handoffs",
    "latency_ms",
    "database",
    "broker",
}


def run_demo(args: list[str], env: dict[str, str], *, during: Any = None) -> dict[str, Any]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vitalstream", "demo", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )
    if during is not None:
        during(proc)
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, err.decode()[-3000:]
    lines = out.decode().strip().splitlines()
    assert len(lines) == 1, "--json must print exactly one JSON object on stdout"
    summary: dict[str, Any] = json.loads(lines[0])
    return summary


def check_contract(summary: dict[str, Any], *, latency: bool = True) -> None:
    assert summary.keys() >= CONTRACT_KEYS
    assert summary["lost"] == 0
    assert summary["stored"] > 0
    assert summary["stored"] + summary["dead_lettered"] >= summary["published"]
    assert sum(summary["alerts"].values()) >= 1
    if latency:  # a killed service makes the batches it held wait for its restart
        assert summary["latency_ms"]["p95"] < 1000
    assert summary["database"] in ("timescaledb", "postgresql")


def test_demo_starts_embedded_postgres_and_broker_when_nothing_answers(data_dir: Path) -> None:
    summary = run_demo(
        [
            "--duration",
            "6",
            "--patients",
            "5",
            "--database-url",
            f"postgresql://postgres@127.0.0.1:{free_port()}/vitalstream",
            "--broker-url",
            f"mqtt://127.0.0.1:{free_port()}",
        ],
        {"VITALSTREAM_DATA_DIR": str(data_dir)},
    )
    check_contract(summary)
    assert summary["broker"].startswith("mosquitto")  # installed here, so preferred
    assert summary["dead_lettered"] >= 1  # the scripted 400/min artifact


def test_demo_falls_back_to_the_python_broker(data_dir: Path, database_url: str) -> None:
    summary = run_demo(
        ["--duration", "5", "--patients", "2", "--broker-url", f"mqtt://127.0.0.1:{free_port()}"],
        {
            "VITALSTREAM_DATA_DIR": str(data_dir),
            "VITALSTREAM_EMBEDDED_BROKER": "amqtt",
            "VITALSTREAM_DATABASE_URL": database_url,
        },
    )
    check_contract(summary)
    assert summary["broker"].startswith("amqtt")


def _ingest_children(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> list[str]:
    """The demo's ingest child (it may still be starting on a loaded machine)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid), "-f", "ingest run"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if children:
            return children
        time.sleep(0.2)
    return []


def _kill_ingest_twice(proc: subprocess.Popen[bytes]) -> None:
    for delay in (4.0, 3.0):
        time.sleep(delay)
        children = _ingest_children(proc)
        assert children, "the demo's ingest child was not found"
        for pid in children:
            os.kill(int(pid), signal.SIGKILL)


def test_killing_the_ingest_service_mid_demo_loses_nothing(
    data_dir: Path, database_url: str, broker_url: str
) -> None:
    summary = run_demo(
        [
            "--duration",
            "12",
            "--patients",
            "3",
            "--broker-url",
            broker_url,
            "--database-url",
            database_url,
        ],
        {"VITALSTREAM_DATA_DIR": str(data_dir)},
        during=_kill_ingest_twice,
    )
    check_contract(summary, latency=False)
    assert summary["ingest_restarts"] >= 2


def test_free_port_is_really_free() -> None:
    port = free_port()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
