"""`vitalstream edge run` end to end: replay + HL7 monitor -> outbox -> broker -> ingest -> PG.

The agent runs as a child process (as on a gateway) and is stopped with SIGTERM: it must stop
its sources, exit 0, and keep its outbox; `edge status` then reads the outbox file.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from integration_support import free_port

from firmware_bridge.mllp import MllpDeframer, frame
from ingest_service import IngestService
from vitals import BrokerAddress, gateway_topic
from vitals.broker import forget_session

FIXTURES = Path(__file__).parents[1] / "fixtures" / "hl7"
CLI = "from vitalstream.commands.edge import edge_app; edge_app()"


def _stored(database_url: str, gateway_devices: tuple[str, ...]) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM readings WHERE device = ANY(%s)", (list(gateway_devices),)
        ).fetchone()
    return int(row[0]) if row else 0


def test_edge_run_replay_and_hl7_until_sigterm(
    tmp_path: Path,
    ingest: IngestService,
    database_url: str,
    broker_url: str,
    broker: BrokerAddress,
    topic_prefix: str,
) -> None:
    gateway = f"{topic_prefix}-gw"
    port = free_port()
    csv_lines = ["subject,time,metric,value"] + [
        f"s-replay,{minute * 60},heart_rate,{60 + minute % 20}" for minute in range(30)
    ]
    (tmp_path / "record.csv").write_text("\n".join(csv_lines) + "\n")
    (tmp_path / "edge.toml").write_text(
        f'gateway = "{gateway}"\nbroker_url = "{broker_url}"\ntopic_prefix = "{topic_prefix}"\n'
        'outbox = "outbox.sqlite"\ndrain_on_stop_s = 5\n'
        '[[sources]]\nkind = "replay"\nfile = "record.csv"\nspeed = 600\n'
        'device = "replay-dev"\n'
        f'[[sources]]\nkind = "hl7"\nhost = "127.0.0.1"\nport = {port}\n'
        'default_subject = "s-bed"\n'
        '[[sources.patients]]\nmonitor = "00A03700273EDE18"\nsubject = "s-bed"\n'
        'device = "bed-monitor"\n'
    )
    child = subprocess.Popen(
        [sys.executable, "-c", CLI, "run", "--config", str(tmp_path / "edge.toml")],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), 1)
                break
            except OSError:
                assert time.monotonic() < deadline, "the HL7 listener did not open"
                time.sleep(0.1)
        with sock:
            sock.settimeout(15)
            sock.sendall(frame((FIXTURES / "mindray_egateway_pcd01.hl7").read_bytes().strip()))
            deframer = MllpDeframer()
            acks: list[bytes] = []
            while not acks:
                acks = [e.payload for e in deframer.feed(sock.recv(65536)) if hasattr(e, "payload")]
        assert b"MSA|AA|23545" in acks[0]
        deadline = time.monotonic() + 30
        while _stored(database_url, ("replay-dev", "bed-monitor")) < 30 + 4:
            assert time.monotonic() < deadline, "readings did not reach the database"
            time.sleep(0.2)
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=30)
        assert child.returncode == 0, stderr
        assert "stopped" in stderr
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        forget_session(broker, gateway, retained=[gateway_topic(gateway, "status", topic_prefix)])
    assert _stored(database_url, ("replay-dev",)) == 30
    assert _stored(database_url, ("bed-monitor",)) == 4
    status = subprocess.run(
        [sys.executable, "-c", CLI, "status", "--config", str(tmp_path / "edge.toml"), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(status.stdout)
    assert report["depth"] == 0
    assert report["devices_last_seq"] == {"replay-dev": 30, "bed-monitor": 4}
