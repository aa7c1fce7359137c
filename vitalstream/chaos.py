"""``vitalstream chaos``: the demo's pipeline under SIGKILLs of the broker and the ingest service.

The broker must be one we may kill, so chaos always runs its own embedded broker (Mosquitto
when installed, else amqtt) on a free port; the database is the configured one (or embedded).
Kills are spread evenly over the run, alternating broker and ingest; after each kill the
demo's supervisors restart what died. The verdict comes from the database, as in the demo.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import replace
from typing import Any

from vitalstream.demo import DemoOptions, Progress, Targets, run_demo

log = logging.getLogger("vitalstream.chaos")


def kill_plan(duration_s: float, broker_kills: int, ingest_kills: int) -> list[tuple[float, str]]:
    """When to kill what: (seconds after start, "broker"|"ingest"), evenly spread, alternating.

    Pure, so the schedule can be tested without killing anything.
    """
    kinds = ["broker"] * broker_kills + ["ingest"] * ingest_kills
    ordered: list[str] = []
    b, i = broker_kills, ingest_kills
    while b or i:  # interleave: b i b i ... then the rest
        if b:
            ordered.append("broker")
            b -= 1
        if i:
            ordered.append("ingest")
            i -= 1
    assert sorted(ordered) == sorted(kinds)
    total = len(ordered)
    return [(duration_s * (k + 1) / (total + 1), kind) for k, kind in enumerate(ordered)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_chaos(
    options: DemoOptions,
    broker_kills: int,
    ingest_kills: int,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the pipeline through the kills and return the CONTRACTS.md chaos summary."""
    plan = kill_plan(options.duration_s, broker_kills, ingest_kills)
    done: list[str] = []

    def disrupt(targets: Targets, stop: threading.Event) -> None:
        elapsed = 0.0
        for at, kind in plan:
            if stop.wait(max(0.0, at - elapsed)):
                return
            elapsed = at
            killed = targets.kill_broker() if kind == "broker" else targets.kill_ingest()
            log.warning(
                "chaos: SIGKILL %s at %.1f s (%s)",
                kind,
                at,
                "killed" if killed else "was not running",
            )
            if killed:
                done.append(kind)

    # Nothing listens on a fresh port, so the demo starts (and may kill) its own broker.
    own_broker = replace(options, broker_url=f"mqtt://127.0.0.1:{_free_port()}")
    summary = run_demo(own_broker, progress, disrupt)
    return {
        "published": summary["published"],
        "stored": summary["stored"],
        "lost": summary["lost"],
        "duplicates_stored": summary["duplicates_stored"],
        "dead_lettered": summary["dead_lettered"],
        "duplicates_dropped": summary["duplicates_dropped"],
        "broker_kills": done.count("broker"),
        "ingest_kills": done.count("ingest"),
        "broker_restarts": summary["broker_restarts"],
        "ingest_restarts": summary["ingest_restarts"],
        "broker": summary["broker"],
        "database": summary["database"],
    }
