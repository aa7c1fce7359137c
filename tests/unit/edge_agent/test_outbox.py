"""The edge outbox: durable, numbered, prioritised, deleted only on confirmation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_agent import Outbox, retry_delay
from vitals import Reading

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def readings(n: int, device: str = "oxi-1") -> list[Reading]:
    return [
        Reading(
            subject="sim-s1",
            device=device,
            metric="spo2",
            value=95.0,
            unit="%",
            time=T0 + timedelta(minutes=i),
            source="sim",
        )
        for i in range(n)
    ]


def test_sequence_numbers_are_per_device_and_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    with Outbox(path) as outbox:
        first = outbox.put(readings(3))
        other = outbox.put(readings(1, device="cuff-1"))
    with Outbox(path) as outbox:  # a new process after a power cut
        later = outbox.put(readings(2))
        assert outbox.depth() == 6
    assert [r.seq for r in first] == [1, 2, 3]
    assert [r.seq for r in other] == [1]
    assert [r.seq for r in later] == [4, 5]


def test_rows_leave_only_when_confirmed(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as outbox:
        outbox.put(readings(5))
        due = outbox.due(now=0.0, limit=10)
        assert len(due) == 5
        outbox.mark_sent([row.row_id for row in due], retry_at=100.0)
        assert outbox.due(now=50.0, limit=10) == []  # waiting for the ack
        assert len(outbox.due(now=100.0, limit=10)) == 5  # no ack in time: re-send
        assert outbox.confirm([row.row_id for row in due[:2]]) == 2
        assert outbox.depth() == 3


def test_reconnect_makes_everything_unconfirmed_due_again(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as outbox:
        outbox.put(readings(2))
        outbox.mark_sent([row.row_id for row in outbox.due(0.0, 10)], retry_at=1e12)
        outbox.make_all_due()
        rows = outbox.due(now=1.0, limit=10)
        assert [row.attempts for row in rows] == [1, 1]


def test_alarms_drain_before_vitals_before_backfill(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as outbox:
        outbox.put(readings(1, device="backfill-dev"), lane="backfill")
        outbox.put(readings(1, device="vitals-dev"), lane="vitals")
        outbox.put(readings(1, device="alarm-dev"), lane="alarm")
        order = [row.reading.device for row in outbox.due(0.0, 10)]
    assert order == ["alarm-dev", "vitals-dev", "backfill-dev"]


def test_retry_delay_doubles_and_is_capped() -> None:
    assert [retry_delay(a) for a in range(6)] == [10.0, 20.0, 40.0, 80.0, 120.0, 120.0]


def test_an_undecodable_row_is_set_aside_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path) as outbox:
        outbox.put(readings(2))
    import sqlite3

    with sqlite3.connect(path) as db:  # a row from a future, incompatible version
        db.execute("UPDATE outbox SET payload = ? WHERE id = 1", (b'{"schema_version": 9}',))
    with Outbox(path) as outbox:
        due = outbox.due(0.0, 10)
        assert [row.row_id for row in due] == [2]
        assert outbox.rejected() == 1 and outbox.depth() == 1


def test_records_downloaded_from_a_device_memory_go_to_backfill(tmp_path: Path) -> None:
    """RACP records (quality ``stored_record``) drain after live vitals, however recent."""
    from edge_agent import EdgeAgent
    from vitals import BrokerAddress

    agent = EdgeAgent("gw-1", tmp_path / "o.sqlite", BrokerAddress("127.0.0.1", 1), prefix="t")
    now = datetime.now(UTC)  # both measured just now: only the quality flag tells them apart
    live = [r.model_copy(update={"time": now}) for r in readings(1, device="live")]
    stored = [
        r.model_copy(update={"device": "meter", "time": now, "quality": ("stored_record",)})
        for r in readings(1)
    ]
    with Outbox(tmp_path / "o2.sqlite") as outbox:
        agent._put_readings(outbox, [*stored, *live])
        assert outbox.lane_counts().get("backfill") == 1
        assert [row.reading.device for row in outbox.due(0.0, 10)] == ["live", "meter"]
