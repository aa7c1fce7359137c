"""Crew incident events through the durable outbox (``EdgeAgent.submit_event``, issue 9).

The agent writes them to the alarm lane, publishes each one on its own on ``.../events`` in
the shape the handoff service decodes (a bare :class:`IncidentEvent`), and deletes it when a
``BatchAck`` carrying its ``event_id`` comes back.
"""

from __future__ import annotations

import queue
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent import EdgeAgent
from edge_agent.agent import _chunks
from edge_agent.link import GatewayLink
from edge_agent.outbox import Outbox
from vitals import (
    BatchAck,
    BrokerAddress,
    LocalAlarm,
    Reading,
    WaveformSnippet,
    decode,
    encode_samples,
)
from vitals.incident import Findings, IncidentEvent

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
GATEWAY = "amb-7"


def crew_event(n: int, kind: str = "findings") -> IncidentEvent:
    fields: dict[str, object] = {"subject": "tmp-0a1b2c"} if kind == "open" else {}
    return IncidentEvent.model_validate(
        {
            "event_id": f"inc-1-e{n}",
            "kind": kind,
            "incident": "inc-1",
            "gateway": GATEWAY,
            "time": T0 + timedelta(minutes=n),
            "findings": Findings(befast_positive=True).model_dump(),
            **fields,
        }
    )


def reading(minute: int) -> Reading:
    return Reading(
        subject="tmp-0a1b2c",
        device="amb-7-monitor",
        metric="heart_rate",
        value=88.0,
        unit="/min",
        time=T0 + timedelta(minutes=minute),
        source="sim",
        incident="inc-1",
    )


def alarm() -> LocalAlarm:
    return LocalAlarm(
        event_id="al-1",
        gateway=GATEWAY,
        subject="tmp-0a1b2c",
        rule="spo2_low",
        severity="high",
        time=T0,
        raised_at=T0,
        message="SpO2 87 %",
    )


def snippet() -> WaveformSnippet:
    return WaveformSnippet(
        subject="tmp-0a1b2c",
        device="amb-7-monitor",
        channel="ecg_ii",
        start=T0,
        sample_rate_hz=250,
        scale=0.005,
        samples=encode_samples([0.01 * i for i in range(250)], 0.005),
        source="sim",
    )


def test_crew_events_wait_on_disk_in_the_alarm_lane_ahead_of_readings(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    with Outbox(path) as outbox:
        outbox.put([reading(0), reading(1)])
        outbox.put_waveforms([snippet()])
        outbox.put_crew_events([crew_event(1, "open"), crew_event(2)])
        outbox.put_events([alarm()])
        assert outbox.lane_counts()["alarm"] == 3
        assert outbox.depth_by_kind() == {"reading": 2, "event": 3, "waveform": 1}
    with Outbox(path) as reopened:  # durable: still there after a restart
        due = reopened.due(now=1e12, limit=100)
    assert [row.kind for row in due] == [
        "crew_event",
        "crew_event",
        "event",
        "reading",
        "reading",
        "waveform",
    ]
    assert due[0].item == crew_event(1, "open")
    assert due[1].item == crew_event(2)


def test_crew_events_are_never_dropped_by_the_overflow_policy(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite", max_rows=3) as outbox:
        outbox.put_crew_events([crew_event(1, "open"), crew_event(2)])
        outbox.put([reading(0), reading(1), reading(2)])
        drops = outbox.take_drops()
        assert {d.kind for d in drops} == {"reading"}
        kinds = [row.kind for row in outbox.due(now=1e12, limit=100)]
    assert kinds.count("crew_event") == 2


def test_each_crew_event_is_a_message_of_its_own(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        outbox.put_crew_events([crew_event(1, "open"), crew_event(2)])
        outbox.put_events([alarm()])
        outbox.put([reading(0), reading(1)])
        chunks = _chunks(outbox.due(now=1e12, limit=100), size=250)
    assert [[row.kind for row in chunk] for chunk in chunks] == [
        ["crew_event"],
        ["crew_event"],
        ["event"],
        ["reading", "reading"],
    ]


class FakeLink:
    """What ``_drain`` / ``_apply_acks`` use of a :class:`GatewayLink`."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []
        self.acks: queue.SimpleQueue[BatchAck] = queue.SimpleQueue()
        self.connected = True

    def publish(self, kind: str, payload: bytes, *, retain: bool = False) -> bool:
        self.published.append((kind, payload))
        return True


def test_submitted_events_are_published_as_the_handoff_service_reads_them_and_confirmed(
    tmp_path: Path,
) -> None:
    agent = EdgeAgent(
        GATEWAY, tmp_path / "outbox.sqlite", BrokerAddress("127.0.0.1", 1), prefix="t"
    )
    agent.submit_event(crew_event(1, "open"))
    agent.submit_event(crew_event(2))
    link = FakeLink()
    as_link: GatewayLink = link  # type: ignore[assignment]
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        outbox.put([reading(0)])
        agent._take_crew_events(outbox)
        assert agent.counters.crew_events_accepted == 2
        assert outbox.depth() == 3
        assert agent._drain(outbox, as_link) == 3
        kinds = [kind for kind, _ in link.published]
        assert kinds == ["events", "events", "readings"]
        # The bare IncidentEvent, exactly what ingest_service.handoff decodes today.
        sent = [decode(payload, IncidentEvent) for _, payload in link.published[:2]]
        assert sent == [crew_event(1, "open"), crew_event(2)]
        # The handoff service confirms by event id; only then does the row leave the outbox.
        link.acks.put(BatchAck(batch_ids=("inc-1-e1",), committed_at=T0))
        agent._apply_acks(outbox, as_link)
        assert outbox.depth() == 2
        link.acks.put(BatchAck(batch_ids=("inc-1-e2", "unknown-batch"), committed_at=T0))
        agent._apply_acks(outbox, as_link)
        assert outbox.depth_by_kind() == {"reading": 1, "event": 0, "waveform": 0}


def test_an_event_of_another_gateway_is_refused(tmp_path: Path) -> None:
    agent = EdgeAgent(
        GATEWAY, tmp_path / "outbox.sqlite", BrokerAddress("127.0.0.1", 1), prefix="t"
    )
    other = crew_event(1).model_copy(update={"gateway": "amb-9"})
    with pytest.raises(ValueError, match="amb-9"):
        agent.submit_event(other)
