"""Must show (issue 6): SIGKILL the agent while it publishes and restart it: nothing lost,
nothing stored twice.

`vitalstream edge run` runs as a child process with a replay source, is SIGKILLed while
readings are still flowing, and is restarted with the same outbox. The outbox numbers every
accepted reading per device, gap-free, in the same transaction that makes it durable
(`seq`), so "every accepted reading stored exactly once" is checkable in the database: the
device's seqs there are exactly 1..last_seq, each once. (The replay restarts from the
beginning after the kill with a new time base: those are new readings with new seqs.)
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
from integration_support import wait_for

from ingest_service import IngestService
from vitals import BrokerAddress, gateway_topic
from vitals.broker import forget_session

DEVICE = "replay-kill"
RECORDED = 1500  # one reading a second in the recording, replayed at 150x: 10 s per run


def _db_seqs(database_url: str) -> tuple[int, int, int, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT seq), coalesce(min(seq), 0), coalesce(max(seq), 0) "
            "FROM readings WHERE device = %s",
            (DEVICE,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def _outbox(path: Path) -> tuple[int, int]:
    """(accepted so far = last seq of the device, rows still in the outbox), read-only."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        last = db.execute("SELECT last_seq FROM device_seq WHERE device = ?", (DEVICE,)).fetchone()
        depth = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
    finally:
        db.close()
    return (int(last[0]) if last else 0), int(depth)


def _start(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "vitalstream", "edge", "run", "--config", str(config)],
        cwd=config.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_sigkill_while_publishing_loses_nothing_and_stores_nothing_twice(
    tmp_path: Path,
    ingest: IngestService,
    database_url: str,
    broker_url: str,
    broker: BrokerAddress,
    topic_prefix: str,
) -> None:
    gateway = f"{topic_prefix}-kill"
    rows = ["subject,time,metric,value"] + [
        f"s-kill,{second},heart_rate,{60 + second % 40}" for second in range(RECORDED)
    ]
    (tmp_path / "record.csv").write_text("\n".join(rows) + "\n")
    config = tmp_path / "edge.toml"
    config.write_text(
        f'gateway = "{gateway}"\nbroker_url = "{broker_url}"\ntopic_prefix = "{topic_prefix}"\n'
        'outbox = "outbox.sqlite"\ndrain_on_stop_s = 10\n'
        '[[sources]]\nkind = "replay"\nfile = "record.csv"\nspeed = 150\n'
        f'device = "{DEVICE}"\n'
    )
    outbox = tmp_path / "outbox.sqlite"
    child = _start(config)
    try:
        # Kill once a good part has been stored but the replay is still producing.
        assert wait_for(lambda: _db_seqs(database_url)[0] >= 200, 30), "nothing was stored"
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        accepted_before, left_in_outbox = _outbox(outbox)
        stored_at_kill = _db_seqs(database_url)[0]
        assert accepted_before < RECORDED, "the replay finished before the kill"
        assert stored_at_kill < accepted_before or left_in_outbox > 0, "nothing was in flight"

        child = _start(config)  # same config, same outbox
        # The second run accepts the whole recording again (re-based: new keys, new seqs).
        total = accepted_before + RECORDED

        def settled() -> bool:
            return _outbox(outbox) == (total, 0) and _db_seqs(database_url)[0] >= total

        assert wait_for(settled, 60), (_outbox(outbox), _db_seqs(database_url), total)
        child.send_signal(signal.SIGTERM)
        assert child.wait(30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        forget_session(broker, gateway, retained=[gateway_topic(gateway, "status", topic_prefix)])
    count, distinct, first, last = _db_seqs(database_url)
    # Every accepted reading (seq 1..total) is in the database, and each exactly once.
    assert (count, distinct, first, last) == (total, total, 1, total)
    assert _outbox(outbox) == (total, 0)
