"""The alert notifier: tells clinicians about new alerts through apprise URLs.

See docs/notifications.md.

Pure core, thin shell:

- **Templates** (:func:`render`) build every message from structured fields only: the
  pseudonymous subject, rule, severity, time, metric, measured value and a link to the doctor's
  page. An alert's free-text ``message`` is never copied, so whatever a rule or a device put
  there (a name, an ID number) cannot reach an e-mail inbox or a chat group. A subject that
  looks like a personal number (a run of 11+ digits: a resident ID or a phone number) is
  withheld as well, in case a pseudonym was ever skipped upstream.
- **Routing** (:func:`route`): a minimum severity, and quiet hours during which only critical
  alerts are sent; the others stay on the doctor's page (and are recorded as suppressed).
- **Retries** (:func:`retry_delay`): exponential backoff with a cap.

The shell, :class:`Notifier`, has one bounded queue and one daemon thread per channel (apprise
URL). :meth:`Notifier.submit` only routes and enqueues, never waits: the ingest loop calls it
after the commit and acks, and a slow SMTP server or a dead webhook can delay nothing but its
own channel. A full queue drops the notice with an error log (the alert itself is already
stored). Every outcome per channel (sent, failed after all attempts, suppressed by quiet hours)
is written to the ``notifications`` table by the channel's thread.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, tzinfo
from typing import Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

import apprise
import psycopg

from alert_rules.lifecycle import Notification, TrackedAlert
from ingest_service.settings import IngestSettings
from vitals import Alert, Severity, now_utc
from vitals.catalogue import CATALOGUE

log = logging.getLogger("vitalstream.ingest.notify")

ChannelKind = Literal["text", "email", "json"]
Reason = Literal["new", "renotify", "escalation", "snooze_expired", "shelve_expired"]
Decision = Literal["send", "below_minimum", "quiet_hours"]
Outcome = Literal["sent", "failed", "suppressed"]

#: Severities in increasing order of urgency (vitals.Severity).
SEVERITY_RANK: dict[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

#: apprise schemas whose channel gets the JSON template; e-mail gets the long text one; every
#: other schema (chat-app webhooks: Slack, Teams, DingTalk, WeCom, Feishu, Telegram, ntfy ...)
#: gets the short text one.
_KIND_BY_SCHEMA: dict[str, ChannelKind] = {
    "json": "json",
    "jsons": "json",
    "mailto": "email",
    "mailtos": "email",
}

#: A run of 11 or more digits: a PRC resident ID (GB 11643: 17 digits + check), an old 15-digit
#: ID, a mobile number (11 digits). Pseudonyms (base32, identity.py) never look like this.
_PERSONAL_NUMBER = re.compile(r"\d{11,}")
WITHHELD = "[withheld]"
_QUIET_HOURS = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")

_REASON_TEXT: dict[str, str] = {
    "new": "new alert",
    "renotify": "reminder: not acknowledged yet",
    "escalation": "escalated: not acknowledged in time",
    "snooze_expired": "snooze expired, still active",
    "shelve_expired": "shelving expired, still active",
}

#: Where a channel URL begins inside a comma-separated list (a comma inside a URL, such as
#: ``mailto://...?to=a@x,b@y``, is not followed by ``schema://``).
_URL_START = re.compile(r",\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")


# -- pure core: what to say --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Notice:
    """What a notification says, as structured fields (the only input of the templates)."""

    subject: str
    rule: str
    severity: Severity
    time: datetime
    link: str
    metric: str | None = None
    value: float | None = None
    unit: str | None = None
    reason: Reason = "new"
    contact: str | None = None


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """A title and a body for one channel kind."""

    title: str
    body: str


def safe_subject(subject: str) -> str:
    """The subject as it may appear in a message: withheld when it looks like a personal number."""
    return WITHHELD if _PERSONAL_NUMBER.search(subject) else subject


def doctor_link(base_url: str, subject: str) -> str:
    """``{base_url}/doctor/subjects/{subject}``; the subjects list when the subject is withheld."""
    base = base_url.rstrip("/")
    if safe_subject(subject) == WITHHELD:
        return f"{base}/doctor/subjects"
    return f"{base}/doctor/subjects/{quote(subject, safe='')}"


def notice_for_alert(alert: Alert, base_url: str, reason: Reason = "new") -> Notice:
    """A notice about an engine alert (its ``message`` deliberately left out)."""
    spec = CATALOGUE.get(alert.metric) if alert.metric else None
    return Notice(
        subject=alert.subject,
        rule=alert.rule,
        severity=alert.severity,
        time=alert.time,
        link=doctor_link(base_url, alert.subject),
        metric=alert.metric,
        value=alert.value,
        unit=spec.unit if spec else None,
        reason=reason,
    )


def notice_for_lifecycle(notification: Notification, alert: TrackedAlert, base_url: str) -> Notice:
    """A notice for a lifecycle notification (re-notification, escalation, expiry)."""
    return Notice(
        subject=alert.subject,
        rule=alert.rule,
        severity=alert.severity,
        time=alert.raised_at,
        link=doctor_link(base_url, alert.subject),
        reason=notification.reason,
        contact=notification.contact,
    )


def channel_kind(url: str) -> ChannelKind:
    """Which template a channel gets, from its URL's schema."""
    schema = url.split("://", 1)[0].lower()
    return _KIND_BY_SCHEMA.get(schema, "text")


def split_urls(text: str) -> tuple[str, ...]:
    """Comma-separated apprise URLs; commas inside a URL's query are kept."""
    parts = (part.strip(" ,\t\r\n") for part in _URL_START.split(text))
    return tuple(part for part in parts if part)


def _measured(notice: Notice) -> str | None:
    if notice.metric is None:
        return None
    if notice.value is None:
        return notice.metric
    unit = f" {notice.unit}" if notice.unit else ""
    return f"{notice.metric} {notice.value:g}{unit}"


def _local(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def render(notice: Notice, kind: ChannelKind, zone: tzinfo) -> RenderedMessage:
    """The message for one channel kind, from the notice's structured fields only."""
    subject = safe_subject(notice.subject)
    level = notice.severity.upper()
    prefix = "" if notice.reason == "new" else f"{_REASON_TEXT[notice.reason].split(':')[0]}: "
    title = f"vitalstream {level}: {prefix}{notice.rule} (subject {subject})"
    measured = _measured(notice)
    when = _local(notice.time, zone)
    if kind == "json":
        document = {
            "schema": "vitalstream.notification/1",
            "reason": notice.reason,
            "subject": subject,
            "rule": notice.rule,
            "severity": notice.severity,
            "time": notice.time.isoformat(),
            "metric": notice.metric,
            "value": notice.value,
            "unit": notice.unit,
            "contact": notice.contact,
            "link": notice.link,
        }
        return RenderedMessage(title, json.dumps(document, separators=(",", ":")))
    if kind == "email":
        lines = [
            f"Rule: {notice.rule}",
            f"Severity: {notice.severity}",
            f"Subject (pseudonym): {subject}",
            *([f"Measured: {measured}"] if measured else []),
            f"Time: {when}",
            f"Why you get this: {_REASON_TEXT[notice.reason]}",
            *([f"Contact: {notice.contact}"] if notice.contact else []),
            f"Open: {notice.link}",
            "",
            "This message carries the patient's pseudonymous id only; the details are on the "
            "doctor's page (login required).",
        ]
        return RenderedMessage(title, "\n".join(lines))
    parts = [f"[{level}] {prefix}{notice.rule}", f"subject {subject}"]
    if measured:
        parts.append(measured)
    parts.extend((when, notice.link))
    return RenderedMessage(title, " · ".join(parts))


# -- pure core: whether and when to send ------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QuietHours:
    """A local time window (may wrap midnight) in which only critical alerts are sent."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``"22:00-07:00"`` (local time, start inclusive, end exclusive)."""
        match = _QUIET_HOURS.fullmatch(text)
        try:
            if match is None:
                raise ValueError(text)
            h1, m1, h2, m2 = (int(group) for group in match.groups())
            return cls(time(h1, m1), time(h2, m2))
        except ValueError:
            raise ValueError(f"quiet hours must look like 22:00-07:00, not {text!r}") from None

    def contains(self, local: time) -> bool:
        """True when ``local`` lies in the window."""
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    """Which alerts are sent: a minimum severity and optional quiet hours."""

    min_severity: Severity = "high"
    quiet_hours: QuietHours | None = None
    zone: tzinfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    #: Severities sent even in quiet hours.
    quiet_hours_allow: Severity = "critical"


def route(severity: Severity, now: datetime, policy: RoutingPolicy) -> Decision:
    """Send, or why not: below the minimum severity, or a non-critical alert in quiet hours."""
    rank = SEVERITY_RANK[severity]
    if rank < SEVERITY_RANK[policy.min_severity]:
        return "below_minimum"
    if (
        policy.quiet_hours is not None
        and rank < SEVERITY_RANK[policy.quiet_hours_allow]
        and policy.quiet_hours.contains(now.astimezone(policy.zone).time())
    ):
        return "quiet_hours"
    return "send"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a channel is tried."""

    attempts: int = 5
    first_delay_s: float = 2.0
    max_delay_s: float = 60.0


def retry_delay(failed_attempts: int, policy: RetryPolicy) -> float:
    """Seconds to wait after the ``failed_attempts``-th failure: first, 2x, 4x ... up to the cap."""
    if failed_attempts < 1:
        raise ValueError("retry_delay is asked after at least one failed attempt")
    return min(policy.max_delay_s, policy.first_delay_s * float(2 ** (failed_attempts - 1)))


def retry_schedule(policy: RetryPolicy) -> tuple[float, ...]:
    """All waits between the attempts (``attempts - 1`` of them)."""
    return tuple(retry_delay(n, policy) for n in range(1, policy.attempts))


# -- the shell ---------------------------------------------------------------------------------
#: Sends one rendered message on one channel: None when delivered, else why not.
Sender = Callable[["Channel", RenderedMessage, Severity], "str | None"]


@dataclass(frozen=True, slots=True)
class Channel:
    """One apprise URL: its template kind and the URL with secrets masked (for logs and rows)."""

    url: str
    kind: ChannelKind
    redacted: str


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """One row of the ``notifications`` table."""

    notice: Notice
    channel: str
    status: Outcome
    attempts: int
    detail: str
    submitted_at: datetime
    finished_at: datetime


@dataclass
class NotifierCounters:
    """Totals since start."""

    submitted: int = 0
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    below_minimum: int = 0
    dropped: int = 0


_NOTIFY_TYPE: dict[str, apprise.NotifyType] = {
    "critical": apprise.NotifyType.FAILURE,
    "high": apprise.NotifyType.WARNING,
}


class AppriseSender:
    """Sends through apprise, one ``Apprise`` object per channel (apprise's throttle applies)."""

    def __init__(self) -> None:
        self._clients: dict[str, apprise.Apprise] = {}

    def __call__(
        self, channel: Channel, message: RenderedMessage, severity: Severity
    ) -> str | None:
        client = self._clients.get(channel.url)
        if client is None:
            client = apprise.Apprise()
            if not client.add(channel.url):
                return "apprise does not accept this URL"
            self._clients[channel.url] = client
        result = client.notify(
            body=message.body,
            title=message.title,
            notify_type=_NOTIFY_TYPE.get(severity, apprise.NotifyType.INFO),
            body_format=apprise.NotifyFormat.TEXT,
        )
        if result:
            return None
        reasons = [
            entry.message
            for service in result
            for attempt in service
            for entry in attempt
            if entry.level in ("WARNING", "ERROR")
        ]
        return (reasons[-1] if reasons else f"apprise status {result.status.name}")[:500]


def describe_channel(url: str) -> Channel | None:
    """The channel for an apprise URL, or None (logged) when apprise does not know the URL."""
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        log.error(
            "notify: ignoring a URL apprise cannot use (%s://...)", url.split("://", maxsplit=1)[0]
        )
        return None
    return Channel(url=url, kind=channel_kind(url), redacted=str(plugin.url(privacy=True)))  # type: ignore[no-untyped-call]


class NotificationLog:
    """Writes outcomes to the ``notifications`` table on its own autocommit connection."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._lock = threading.Lock()

    def record(self, outcome: OutcomeRecord) -> None:
        """Insert one row; a database problem is logged, never raised (the log line stays)."""
        notice = outcome.notice
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=5)
                self._conn.execute(
                    "INSERT INTO notifications (submitted_at, finished_at, subject, rule, "
                    "severity, alert_time, reason, contact, channel, status, attempts, detail) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        outcome.submitted_at,
                        outcome.finished_at,
                        notice.subject,
                        notice.rule,
                        notice.severity,
                        notice.time,
                        notice.reason,
                        notice.contact,
                        outcome.channel,
                        outcome.status,
                        outcome.attempts,
                        outcome.detail,
                    ),
                )
            except psycopg.Error as exc:
                log.warning("notify: could not record a %s notification (%s)", outcome.status, exc)
                if self._conn is not None:
                    self._conn.close()
                self._conn = None

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._conn = None


@dataclass(frozen=True, slots=True)
class _Job:
    notice: Notice
    decision: Decision
    submitted_at: datetime


class Notifier:
    """Routes, renders and sends notices in the background; see the module docstring.

    ``submit`` never blocks. ``close`` drains the queues for up to ``timeout`` seconds, then
    gives up on what is left (recorded as failed, "shutdown before delivery").
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        routing: RoutingPolicy | None = None,
        retry: RetryPolicy | None = None,
        base_url: str = "http://127.0.0.1:8000",
        queue_size: int = 1000,
        recorder: Callable[[OutcomeRecord], None] | None = None,
        sender: Sender | None = None,
        clock: Callable[[], datetime] = now_utc,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.routing = routing or RoutingPolicy()
        self.retry = retry or RetryPolicy()
        self.base_url = base_url
        self.counters = NotifierCounters()
        self.channels = tuple(c for c in (describe_channel(u) for u in urls) if c is not None)
        self._queue_size = queue_size
        self._recorder = recorder
        self._sender: Sender = sender or AppriseSender()
        self._clock = clock
        self._on_close = on_close
        self._queues: dict[Channel, queue.Queue[_Job]] = {}
        self._threads: list[threading.Thread] = []
        self._closing = threading.Event()
        self._abort = threading.Event()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> Notifier:
        """The notifier the ingest service uses (no channel when ``notify_urls`` is empty)."""
        quiet = settings.notify_quiet_hours
        log_table = NotificationLog(settings.database_url)
        return cls(
            split_urls(settings.notify_urls),
            routing=RoutingPolicy(
                min_severity=settings.notify_min_severity,
                quiet_hours=QuietHours.parse(quiet) if quiet else None,
                zone=ZoneInfo(settings.notify_timezone),
            ),
            retry=RetryPolicy(
                attempts=settings.notify_attempts,
                first_delay_s=settings.notify_backoff_s,
                max_delay_s=settings.notify_backoff_max_s,
            ),
            base_url=settings.notify_base_url,
            queue_size=settings.notify_queue_size,
            recorder=log_table.record,
            on_close=log_table.close,
        )

    @property
    def enabled(self) -> bool:
        """False when no channel is configured: ``submit`` then does nothing."""
        return bool(self.channels)

    # -- called by the ingest loop -------------------------------------------------------------
    def submit(self, alerts: Iterable[Alert]) -> None:
        """Notify about new engine alerts (call after the commit that stored them)."""
        if self.enabled:
            self.submit_notices(notice_for_alert(a, self.base_url) for a in alerts)

    def submit_lifecycle(self, notifications: Iterable[tuple[Notification, TrackedAlert]]) -> None:
        """Notify for lifecycle notifications (re-notification, escalation, expiries)."""
        if self.enabled:
            self.submit_notices(notice_for_lifecycle(n, a, self.base_url) for n, a in notifications)

    def submit_notices(self, notices: Iterable[Notice]) -> None:
        """Route and enqueue; never blocks (a full channel queue drops with an error log)."""
        if not self.enabled or self._closing.is_set():
            return
        now = self._clock()
        for notice in notices:
            decision = route(notice.severity, now, self.routing)
            with self._lock:
                self.counters.submitted += 1
                if decision == "below_minimum":
                    self.counters.below_minimum += 1
                    continue
            for channel in self.channels:
                try:
                    self._queue_for(channel).put_nowait(_Job(notice, decision, now))
                except queue.Full:
                    with self._lock:
                        self.counters.dropped += 1
                    log.error(
                        "notify: queue of %s is full; %s alert %s for %s not notified there",
                        channel.redacted,
                        notice.severity,
                        notice.rule,
                        safe_subject(notice.subject),
                    )

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued for up to ``timeout`` s, then record the rest as failed."""
        self._closing.set()
        for thread in self._threads:
            thread.join(timeout)
        if any(thread.is_alive() for thread in self._threads):
            self._abort.set()
            for thread in self._threads:
                thread.join(5.0)
        if self._on_close is not None:
            self._on_close()

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the channel threads -------------------------------------------------------------------
    def _queue_for(self, channel: Channel) -> queue.Queue[_Job]:
        with self._lock:
            channel_queue = self._queues.get(channel)
            if channel_queue is None:
                channel_queue = queue.Queue(maxsize=self._queue_size)
                self._queues[channel] = channel_queue
                thread = threading.Thread(
                    target=self._run_channel,
                    args=(channel, channel_queue),
                    name=f"notify-{len(self._threads)}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
            return channel_queue

    def _run_channel(self, channel: Channel, jobs: queue.Queue[_Job]) -> None:
        while True:
            try:
                job = jobs.get(timeout=0.1)
            except queue.Empty:
                if self._closing.is_set():
                    return
                continue
            try:
                self._handle(channel, job)
            except Exception:  # the thread must outlive any one bad notice
                log.exception("notify: unexpected error on %s", channel.redacted)

    def _handle(self, channel: Channel, job: _Job) -> None:
        if job.decision == "quiet_hours":
            self._finish(channel, job, "suppressed", 0, "quiet hours (non-critical)")
            return
        message = render(job.notice, channel.kind, self.routing.zone)
        detail = ""
        attempt = 0
        while attempt < self.retry.attempts:
            if self._abort.is_set():
                detail = f"shutdown before delivery; last error: {detail or 'none'}"
                break
            attempt += 1
            error = self._sender(channel, message, job.notice.severity)
            if error is None:
                self._finish(channel, job, "sent", attempt, "")
                return
            detail = error
            if attempt < self.retry.attempts:
                delay = retry_delay(attempt, self.retry)
                log.warning(
                    "notify: attempt %d/%d on %s failed (%s); retrying in %.1f s",
                    attempt,
                    self.retry.attempts,
                    channel.redacted,
                    error,
                    delay,
                )
                self._abort.wait(delay)
        log.error(
            "notify: %s alert %s for subject %s NOT delivered to %s after %d attempts: %s",
            job.notice.severity,
            job.notice.rule,
            safe_subject(job.notice.subject),
            channel.redacted,
            attempt,
            detail,
        )
        self._finish(channel, job, "failed", attempt, detail)

    def _finish(
        self, channel: Channel, job: _Job, status: Outcome, attempts: int, detail: str
    ) -> None:
        with self._lock:
            if status == "sent":
                self.counters.sent += 1
            elif status == "failed":
                self.counters.failed += 1
            else:
                self.counters.suppressed += 1
        if self._recorder is not None:
            self._recorder(
                OutcomeRecord(
                    notice=job.notice,
                    channel=channel.redacted,
                    status=status,
                    attempts=attempts,
                    detail=detail,
                    submitted_at=job.submitted_at,
                    finished_at=self._clock(),
                )
            )
