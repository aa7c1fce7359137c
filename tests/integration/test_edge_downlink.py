"""The config down-link against the real broker: `vitalstream edge push-config` publishes a
retained GatewayConfig; the agent applies it whole (device binding, local threshold, cadence),
persists it beside the outbox, acknowledges it on its status, refuses a bad one and keeps the
old, and has it in force again after a restart before the broker answers.
"""

from __future__ import annotations

import json
import queue
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import typer
from integration_support import count, wait_for
from typer.testing import CliRunner

from edge_agent import EdgeAgent, LocalAlarmSettings
from edge_agent.downlink import saved_config_path
from edge_agent.link import LinkSealing
from ingest_service import IngestService
from vitals import BrokerAddress, Reading, gateway_topic
from vitals.broker import forget_session
from vitals.sealed import SealKeyStore
from vitalstream.commands.edge import edge_app

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)

CONFIG_V1 = """
version = 1
cadence_s = 1.0

[[devices]]
device = "dev-x"
subject = "s-new"

[[thresholds]]
name = "hr_high_local"
metric = "heart_rate"
op = ">"
value = 120
severity = "critical"
"""

# Refused: a local threshold may not reuse a rule name of the core pack.
CONFIG_V2_BAD = """
version = 2

[[thresholds]]
name = "spo2_low"
metric = "spo2"
op = "<"
value = 85
"""


def push(file: Path, gateway: str, broker_url: str, prefix: str) -> tuple[int, dict[str, object]]:
    app = typer.Typer()
    app.add_typer(edge_app, name="edge")

    @app.callback()
    def _root() -> None:
        """Test root."""

    result = CliRunner().invoke(
        app,
        [
            "edge",
            "push-config",
            "--gateway",
            gateway,
            "--file",
            str(file),
            "--broker-url",
            broker_url,
            "--topic-prefix",
            prefix,
            "--wait",
            "15",
            "--json",
        ],
    )
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def queue_source(feed: queue.SimpleQueue[Reading]) -> Callable[[], Sequence[Reading]]:
    def source() -> Sequence[Reading]:
        taken: list[Reading] = []
        while not feed.empty():
            taken.append(feed.get_nowait())
        return taken

    return source


def test_push_apply_acknowledge_refuse_and_restart(
    ingest: IngestService,
    database_url: str,
    broker_url: str,
    broker: BrokerAddress,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    gateway = f"{topic_prefix}-cfg"
    outbox = tmp_path / "outbox.sqlite"
    feed: queue.SimpleQueue[Reading] = queue.SimpleQueue()

    def agent() -> EdgeAgent:
        return EdgeAgent(
            gateway,
            outbox,
            broker,
            prefix=topic_prefix,
            sources=[queue_source(feed)],
            local_alarms=LocalAlarmSettings(),
        )

    first = agent()
    second: EdgeAgent | None = None
    try:
        first.start()
        (tmp_path / "v1.toml").write_text(CONFIG_V1)
        code, report = push(tmp_path / "v1.toml", gateway, broker_url, topic_prefix)
        assert code == 0, report
        assert report["acknowledged"] is True
        assert first.config_version == 1
        assert json.loads(saved_config_path(outbox).read_text())["version"] == 1
        assert wait_for(
            lambda: (
                count(
                    database_url,
                    f"SELECT count(*) FROM gateways WHERE gateway = '{gateway}' "
                    "AND (status->>'config_version')::int = 1",
                )
                == 1
            ),
            15,
        ), "the acknowledgement did not reach the platform's gateway table"

        # The binding puts dev-x on s-new; the pushed threshold raises a local alarm.
        feed.put(
            Reading(
                subject="s-old",
                device="dev-x",
                metric="heart_rate",
                value=130.0,
                unit="/min",
                time=T0,
                source="sim",
            )
        )
        assert wait_for(lambda: count(database_url, "SELECT count(*) FROM edge_events") == 1, 20), (
            "the local alarm of the pushed threshold did not arrive"
        )
        with psycopg.connect(database_url) as conn:
            stored = conn.execute("SELECT subject FROM readings WHERE device = 'dev-x'").fetchone()
            event = conn.execute("SELECT rule, severity, subject FROM edge_events").fetchone()
        assert stored == ("s-new",)
        assert event == ("hr_high_local", "critical", "s-new")

        # A bad version 2 is refused, reported, and version 1 stays in force.
        (tmp_path / "v2.toml").write_text(CONFIG_V2_BAD)
        code, report = push(tmp_path / "v2.toml", gateway, broker_url, topic_prefix)
        assert code == 1
        assert report["acknowledged"] is False
        assert "spo2_low" in str(report["config_error"])
        assert first.config_version == 1
        assert json.loads(saved_config_path(outbox).read_text())["version"] == 1
        first.stop()

        # After a restart the saved version 1 is in force; the retained (bad) v2 is refused
        # again once connected.
        second = agent()
        second.start()
        assert wait_for(lambda: second is not None and second.config_version == 1, 5)
        assert wait_for(lambda: second is not None and second.counters.configs_refused >= 1, 15)
        assert second.config_version == 1
    finally:
        first.stop()
        if second is not None:
            second.stop()
        forget_session(
            broker,
            gateway,
            retained=[
                gateway_topic(gateway, "status", topic_prefix),
                gateway_topic(gateway, "config", topic_prefix),
            ],
        )


def test_push_config_sees_the_acknowledgement_of_a_gateway_that_seals(
    broker_url: str,
    broker: BrokerAddress,
    topic_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the SM4 layer on, the gateway's status (carrying the acknowledged config version)
    is sealed on the wire; `push-config --wait` opens it with the platform's keys."""
    gateway = f"{topic_prefix}-sealcfg"
    platform_keys, gateway_keys = tmp_path / "platform-keys", tmp_path / "gateway-keys"
    key_id, key = SealKeyStore(platform_keys).create(gateway)
    SealKeyStore(gateway_keys).install(key_id, key)
    monkeypatch.setenv("VITALSTREAM_SEALING_POLICY", "required")
    monkeypatch.setenv("VITALSTREAM_SEALING_KEY_DIR", str(platform_keys))
    agent = EdgeAgent(
        gateway,
        tmp_path / "outbox.sqlite",
        broker,
        prefix=topic_prefix,
        sealing=LinkSealing(gateway_keys),
    )
    try:
        agent.start()
        (tmp_path / "v1.toml").write_text(CONFIG_V1)
        code, report = push(tmp_path / "v1.toml", gateway, broker_url, topic_prefix)
        assert code == 0, report
        assert report["acknowledged"] is True
        assert agent.config_version == 1
    finally:
        agent.stop()
