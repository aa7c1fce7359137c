"""``vitalstream ingest run --workers N``: a supervisor of N workers in one shared group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from integration_support import count, publish_raw, wait_for
from test_rule_consumer import one_spo2

from ingest_service import IngestSettings
from vitals import BrokerAddress, gateway_topic
from vitals.broker import forget_session


def children(pid: int) -> set[int]:
    """PIDs whose parent is ``pid`` (from /proc: no psutil needed)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_two_workers_store_once_and_die_with_a_killed_supervisor(
    ingest_settings: IngestSettings, broker: BrokerAddress, topic_prefix: str, tmp_path: Path
) -> None:
    url = ingest_settings.database_url
    client_id = f"{topic_prefix}-sup"
    ready = tmp_path / "ready"
    env = dict(os.environ) | {
        "VITALSTREAM_DATABASE_URL": url,
        "VITALSTREAM_BROKER_URL": ingest_settings.broker_url,
        "VITALSTREAM_TOPIC_PREFIX": topic_prefix,
        "VITALSTREAM_INGEST_CLIENT_ID": client_id,
    }
    command = ["ingest", "run", "--workers", "2", "--ready-file", str(ready)]
    supervisor = subprocess.Popen([sys.executable, "-m", "vitalstream", *command], env=env)
    try:
        assert wait_for(ready.exists, 90), "the supervisor never became ready"
        workers = children(supervisor.pid)
        assert len(workers) == 2
        gateway = f"{topic_prefix}-gw"
        topic = gateway_topic(gateway, "readings", topic_prefix)
        publish_raw(
            broker,
            topic,
            *[one_spo2(gateway, f"{topic_prefix}-s", minute, 97) for minute in range(10)],
        )
        assert wait_for(lambda: count(url, "SELECT count(*) FROM readings") == 10, 30)
        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait(10)
        assert wait_for(lambda: not any(alive(pid) for pid in workers), 15), (
            "workers outlived their killed supervisor"
        )
    finally:
        if supervisor.poll() is None:
            supervisor.terminate()
            supervisor.wait(30)
        for n in range(2):
            forget_session(broker, f"{client_id}-{n}")
