"""Retries with backoff, the bounded queue and the background threads (fake sender, no I/O)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from ingest_service.notifier import (
    Channel,
    Notifier,
    OutcomeRecord,
    QuietHours,
    RenderedMessage,
    RetryPolicy,
    RoutingPolicy,
    retry_delay,
    retry_schedule,
)
from ingest_service.settings import IngestSettings
from vitals import Alert, Severity

FAST = RetryPolicy(attempts=3, first_delay_s=0.01, max_delay_s=0.02)
URL = "json://127.0.0.1:9/hook"


def test_backoff_doubles_from_the_first_delay_up_to_the_cap() -> None:
    policy = RetryPolicy(attempts=6, first_delay_s=2.0, max_delay_s=10.0)
    assert [retry_delay(n, policy) for n in range(1, 6)] == [2.0, 4.0, 8.0, 10.0, 10.0]
    assert retry_schedule(policy) == (2.0, 4.0, 8.0, 10.0, 10.0)
    assert retry_schedule(RetryPolicy(attempts=1)) == ()


def test_backoff_is_asked_only_after_a_failure() -> None:
    with pytest.raises(ValueError, match="at least one"):
        retry_delay(0, RetryPolicy())


def alert(severity: Severity = "high", subject: str = "p-1") -> Alert:
    return Alert(
        subject=subject,
        rule="spo2_low",
        severity=severity,
        time=datetime(2024, 5, 1, 4, tzinfo=UTC),
        message="x",
        metric="spo2",
        value=88,
    )


class FakeSender:
    """Fails the first ``failures`` calls, records every call."""

    def __init__(self, failures: int = 0, block: threading.Event | None = None) -> None:
        self.failures = failures
        self.block = block
        self.calls: list[tuple[str, RenderedMessage]] = []

    def __call__(
        self, channel: Channel, message: RenderedMessage, severity: Severity
    ) -> str | None:
        if self.block is not None:
            self.block.wait(10)
        self.calls.append((channel.url, message))
        if len(self.calls) <= self.failures:
            return "connection refused"
        return None


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def make(sender: FakeSender, records: list[OutcomeRecord], **kwargs: object) -> Notifier:
    return Notifier(
        [URL],
        retry=FAST,
        sender=sender,
        recorder=records.append,
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_transient_failure_is_retried_and_then_sent() -> None:
    sender = FakeSender(failures=2)
    records: list[OutcomeRecord] = []
    with make(sender, records) as notifier:
        notifier.submit([alert()])
        assert wait_until(lambda: len(records) == 1)
    assert len(sender.calls) == 3
    assert (records[0].status, records[0].attempts) == ("sent", 3)
    assert notifier.counters.sent == 1


def test_a_failure_after_all_attempts_is_recorded_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = FakeSender(failures=99)
    records: list[OutcomeRecord] = []
    with make(sender, records) as notifier:
        notifier.submit([alert()])
        assert wait_until(lambda: len(records) == 1)
    assert len(sender.calls) == FAST.attempts
    record = records[0]
    assert (record.status, record.attempts, record.detail) == ("failed", 3, "connection refused")
    assert record.channel.startswith("json://127.0.0.1:9/hook")
    assert notifier.counters.failed == 1
    assert "NOT delivered" in caplog.text


def test_submit_never_waits_on_a_slow_channel_and_a_full_queue_drops() -> None:
    release = threading.Event()
    sender = FakeSender(block=release)
    records: list[OutcomeRecord] = []
    notifier = make(sender, records, queue_size=2)
    started = time.monotonic()
    notifier.submit([alert(subject=f"p-{i}") for i in range(10)])
    assert time.monotonic() - started < 0.5
    # One notice is in the sender, two wait in the queue; the rest are dropped (logged).
    assert wait_until(lambda: notifier.counters.dropped >= 7)
    release.set()
    notifier.close()
    assert notifier.counters.sent + notifier.counters.dropped == 10
    assert notifier.counters.sent >= 2


def test_below_minimum_is_not_sent_and_quiet_hours_are_recorded_as_suppressed() -> None:
    sender = FakeSender()
    records: list[OutcomeRecord] = []
    night = datetime(2024, 5, 1, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
    routing = RoutingPolicy(quiet_hours=QuietHours.parse("22:00-07:00"))
    with make(sender, records, routing=routing, clock=lambda: night) as notifier:
        notifier.submit([alert("low"), alert("high"), alert("critical", "p-2")])
        assert wait_until(lambda: len(records) == 2)
    assert sorted((r.notice.severity, r.status) for r in records) == [
        ("critical", "sent"),
        ("high", "suppressed"),
    ]
    assert len(sender.calls) == 1
    assert notifier.counters.below_minimum == 1


def test_close_gives_up_on_a_dead_channel_within_its_timeout() -> None:
    sender = FakeSender(failures=99)
    records: list[OutcomeRecord] = []
    notifier = Notifier(
        [URL],
        retry=RetryPolicy(attempts=10, first_delay_s=5.0, max_delay_s=5.0),
        sender=sender,
        recorder=records.append,
    )
    notifier.submit([alert(), alert(subject="p-2")])
    assert wait_until(lambda: len(sender.calls) >= 1)
    started = time.monotonic()
    notifier.close(timeout=0.2)
    assert time.monotonic() - started < 3
    assert [r.status for r in records] == ["failed", "failed"]
    assert "shutdown before delivery" in records[1].detail


def test_each_channel_has_its_own_thread_so_a_dead_one_delays_no_other() -> None:
    calls: list[str] = []

    def sender(channel: Channel, message: RenderedMessage, severity: Severity) -> str | None:
        calls.append(channel.url)
        return "refused" if "dead" in channel.url else None

    records: list[OutcomeRecord] = []
    notifier = Notifier(
        ["json://127.0.0.1:9/dead", "json://127.0.0.1:9/alive"],
        retry=RetryPolicy(attempts=5, first_delay_s=5.0),
        sender=sender,
        recorder=records.append,
    )
    notifier.submit([alert()])
    assert wait_until(lambda: any(r.status == "sent" for r in records), timeout=2.0)
    notifier.close(timeout=0.1)
    assert {(r.channel.split("?")[0], r.status) for r in records} == {
        ("json://127.0.0.1:9/alive", "sent"),
        ("json://127.0.0.1:9/dead", "failed"),
    }


def test_without_urls_the_notifier_is_a_no_op() -> None:
    notifier = Notifier.from_settings(IngestSettings(notify_urls=""))
    assert not notifier.enabled
    notifier.submit([alert()])
    notifier.close()
    assert notifier.counters.submitted == 0


def test_a_url_apprise_cannot_use_is_skipped_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier(["nonsense://x", URL], sender=FakeSender(), recorder=lambda r: None)
    assert [c.url for c in notifier.channels] == [URL]
    assert "nonsense://" in caplog.text
    notifier.close()


def test_channel_secrets_are_masked_in_records() -> None:
    notifier = Notifier(["json://user:s3cret@127.0.0.1:9/h"], sender=FakeSender())
    assert "s3cret" not in notifier.channels[0].redacted
    notifier.close()
