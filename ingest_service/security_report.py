"""Security alerts over the audit log and the stored data (issue 10, R11: leak detection).

``vitalstream security report`` lists what this module finds:

- ``audit_chain_broken`` (critical): :func:`ingest_service.audit.verify` finds an altered or
  deleted audit row;
- ``read_denied_burst`` (high): one actor collected at least ``threshold`` ``read_denied``
  audit rows within ``window`` -- a token probing subjects it may not read (credential misuse,
  or an attempt to harvest data);
- ``clear_id_leak`` (critical): a string that passes every GB 11643-1999 check (18 characters,
  region, birth date, ISO 7064 MOD 11-2 check character) appears in a dead letter's payload or
  in a text column of readings, alerts or the audit log: a clear resident ID got onto the wire
  or into storage. The check character cuts random 18-digit numbers (timestamps, sequence
  numbers) to about 1 in 11, the date and region checks further. The alert names table, column
  and row ids, never the number;
- ``gateway_mismatch`` (high): a gateway published batches claiming another gateway's id (the
  broker ACL should make this impossible; seeing it means a misconfigured broker or a stolen
  certificate).

Leak and misuse rules over the audit rows (:class:`LeakRuleSettings` holds their limits):

- ``bulk_browsing`` (high): one account read at least ``browse_threshold`` distinct subjects
  one by one (a ``subject`` in the row or ``subject/<s>/...`` as resource) within
  ``browse_window``; list views (the panel, the alert inbox) do not count, they are what a
  clinician opens every day;
- ``off_hours_new_address`` (high): a read outside working hours (local time) from an address
  that account had not used before (in the baseline period or earlier in the window); only
  accounts with some history are judged (a new account has no "usual" address yet);
- ``bulk_export`` (high): at least ``export_threshold`` exports (a resource ending in
  ``export``/``export.csv``, or a ``format`` in the row) by one account within
  ``export_window``, or one read that returned at least ``large_read_rows`` rows;
- ``login_failure_burst`` (high): at least ``login_threshold`` ``login_failed`` rows for one
  account, or from one address (password spraying), within ``login_window``;
- ``card_denied_burst`` (high): at least ``card_threshold`` refused health-card look-ups
  (``card_denied``) by one actor within ``card_window`` (cards being guessed or replayed).

Pure core: :func:`resident_ids_in`, :func:`contains_resident_id`, :func:`denied_bursts`,
:func:`bulk_browsing`, :func:`off_hours_new_address`, :func:`bulk_exports`,
:func:`failed_login_bursts`, :func:`card_denied_bursts`, :class:`SecurityAlert`. SQL shell:
:func:`build_report`. Read-only.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

import psycopg

from ingest_service import audit
from ingest_service.identity import InvalidIdError, validate_resident_id

Connection = psycopg.Connection[Any]
Severity = Literal["critical", "high", "medium", "low"]

#: Candidate resident IDs: 18 characters not inside a longer run of digits; region code first
#: digit 1-8 (GB 11643-1999 §4); last a digit or X. The checks of :func:`validate_resident_id`
#: then decide.
ID_CANDIDATE = re.compile(r"(?<![0-9])[1-8][0-9]{16}[0-9Xx](?![0-9])")
#: The same prefilter for PostgreSQL (POSIX regex) so only matching rows leave the database.
SQL_ID_CANDIDATE = "[1-8][0-9]{16}[0-9Xx]"

DEFAULT_LOOKBACK = timedelta(days=7)
DEFAULT_BURST_WINDOW = timedelta(minutes=10)
DEFAULT_BURST_THRESHOLD = 5
#: How many row ids an alert's detail lists at most.
MAX_IDS_IN_DETAIL = 10


@dataclass(frozen=True)
class SecurityAlert:
    """One raised security alert (an entry of the report's ``alerts``)."""

    kind: str
    severity: Severity
    detail: str
    count: int
    first_seen: datetime | None
    last_seen: datetime | None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (kind, severity, detail, count, first_seen, last_seen)."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "detail": self.detail,
            "count": self.count,
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
        }


@dataclass(frozen=True)
class SecurityReport:
    """The ``vitalstream security report`` output."""

    alerts: tuple[SecurityAlert, ...]
    checked_at: datetime
    since: datetime

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form: ``{"alerts": [...], "checked_at", "since"}``."""
        return {
            "alerts": [alert.as_dict() for alert in self.alerts],
            "checked_at": self.checked_at.isoformat(),
            "since": self.since.isoformat(),
        }


# --------------------------------------------------------------------------- pure core


def resident_ids_in(text: str, *, today: date = date.max) -> int:
    """How many substrings of ``text`` pass every GB 11643-1999 check of a resident ID.

    ``today`` bounds the birth date (default: no bound, for scanning stored data whose age is
    unknown). Only a count comes back, so the number itself goes nowhere.
    """
    found = 0
    for match in ID_CANDIDATE.finditer(text):
        try:
            validate_resident_id(match.group(0), today=today)
        except InvalidIdError:
            continue
        found += 1
    return found


def contains_resident_id(text: str, *, today: date = date.max) -> bool:
    """Whether ``text`` holds something that passes the GB 11643-1999 checks."""
    return resident_ids_in(text, today=today) > 0


def denied_bursts(
    rows: Iterable[tuple[str, datetime]], *, window: timedelta, threshold: int
) -> list[SecurityAlert]:
    """``read_denied_burst`` alerts: actors with ``threshold`` denials within ``window``.

    ``rows`` are (actor, time) of ``read_denied`` audit rows in any order. For each actor,
    every denial that lies in some window of length ``window`` holding at least ``threshold``
    denials is part of a burst; the alert counts those denials, spans the first to the last of
    them and names the peak (most denials in one window).
    """
    alerts: list[SecurityAlert] = []
    minutes = window.total_seconds() / 60
    for actor, burst, peak in _bursts(rows, window=window, threshold=threshold):
        alerts.append(
            SecurityAlert(
                kind="read_denied_burst",
                severity="high",
                detail=(
                    f"actor {actor!r} was refused {len(burst)} reads in bursts (up to {peak} "
                    f"within {minutes:g} min; threshold {threshold}): possible credential misuse "
                    "or an attempt to read subjects it may not; check who holds the account and "
                    "revoke its tokens"
                ),
                count=len(burst),
                first_seen=burst[0],
                last_seen=burst[-1],
            )
        )
    return alerts


def _bursts(
    rows: Iterable[tuple[str, datetime]], *, window: timedelta, threshold: int
) -> list[tuple[str, list[datetime], int]]:
    """Per key: the times that lie in some window of length ``window`` holding at least
    ``threshold`` events, and the peak count in one window (keys sorted; none when empty)."""
    if threshold < 1:
        raise ValueError("the burst threshold is at least 1")
    by_key: dict[str, list[datetime]] = defaultdict(list)
    for key, moment in rows:
        by_key[key].append(moment)
    found: list[tuple[str, list[datetime], int]] = []
    for key in sorted(by_key):
        times = sorted(by_key[key])
        in_burst = [False] * len(times)
        peak = 0
        start = 0
        for end, moment in enumerate(times):
            while moment - times[start] > window:
                start += 1
            size = end - start + 1
            peak = max(peak, size)
            if size >= threshold:
                for index in range(start, end + 1):
                    in_burst[index] = True
        burst = [moment for moment, flagged in zip(times, in_burst, strict=True) if flagged]
        if burst:
            found.append((key, burst, peak))
    return found


# --------------------------------------------------------------------------- leak rules

#: Audit actions that read patient data (a card look-up resolves a subject).
READ_ACTIONS = frozenset({"read", "card_resolve"})
_SUBJECT_RESOURCE = re.compile(r"^(?:web/doctor/)?subjects?/([A-Za-z0-9][A-Za-z0-9_.:-]*)")
_EXPORT_RESOURCE = re.compile(r"(?:^|/)export(?:\.[a-z0-9]+)?$")
DEFAULT_TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class LeakRuleSettings:
    """Limits of the audit-log leak rules (defaults documented in docs/security.md)."""

    browse_window: timedelta = timedelta(hours=1)
    browse_threshold: int = 50
    #: Services (a regional platform) read many subjects by design.
    browse_exempt_roles: frozenset[str] = frozenset({"service"})
    #: Working hours in local time: [start, end) hours; weekends are not treated apart.
    working_hours: tuple[int, int] = (7, 20)
    timezone: str = DEFAULT_TIMEZONE
    #: ER staff work nights; services run around the clock.
    off_hours_exempt_roles: frozenset[str] = frozenset({"er", "service"})
    #: How far before the report's window the known addresses are taken from.
    address_baseline: timedelta = timedelta(days=30)
    export_window: timedelta = timedelta(hours=24)
    export_threshold: int = 3
    large_read_rows: int = 50_000
    login_window: timedelta = timedelta(minutes=10)
    login_threshold: int = 10
    card_window: timedelta = timedelta(minutes=10)
    card_threshold: int = 5

    @property
    def tz(self) -> tzinfo:
        """The deployment's time zone."""
        return ZoneInfo(self.timezone)


def _role_of(entry: audit.AuditEntry) -> str:
    role = entry.detail.get("role") if isinstance(entry.detail, Mapping) else None
    return str(role) if isinstance(role, str) else entry.actor.split(":", 1)[0]


def _detail(entry: audit.AuditEntry, name: str) -> object:
    return entry.detail.get(name) if isinstance(entry.detail, Mapping) else None


def subject_read(entry: audit.AuditEntry) -> str | None:
    """The one subject a read row is about (``detail.subject`` or ``subject/<s>/...``), or
    None for list views and other actions."""
    if entry.action not in READ_ACTIONS:
        return None
    subject = _detail(entry, "subject")
    if isinstance(subject, str) and subject:
        return subject
    match = _SUBJECT_RESOURCE.match(entry.resource)
    return match.group(1) if match else None


def is_export(entry: audit.AuditEntry) -> bool:
    """Whether a row records an export (the web CSV export, any ``.../export`` resource, a
    row with a ``format``, or an ``export`` action)."""
    if entry.action == "export":
        return True
    if entry.action not in READ_ACTIONS:
        return False
    return bool(_EXPORT_RESOURCE.search(entry.resource)) or bool(_detail(entry, "format"))


def _returned(entry: audit.AuditEntry) -> int:
    value = _detail(entry, "returned")
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, Mapping):
        return sum(v for v in value.values() if isinstance(v, int) and not isinstance(v, bool))
    return 0


def bulk_browsing(
    entries: Iterable[audit.AuditEntry],
    *,
    window: timedelta,
    threshold: int,
    exempt_roles: frozenset[str] = frozenset(),
) -> list[SecurityAlert]:
    """``bulk_browsing``: accounts that read ``threshold`` distinct subjects within ``window``.

    Sliding window over each account's subject reads; the alert spans the windows that went
    over the limit and counts the most distinct subjects seen in one window.
    """
    if threshold < 1:
        raise ValueError("the browsing threshold is at least 1")
    reads: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for entry in entries:
        subject = subject_read(entry)
        if subject is not None and _role_of(entry) not in exempt_roles:
            reads[entry.actor].append((entry.time, subject))
    alerts: list[SecurityAlert] = []
    for actor in sorted(reads):
        events = sorted(reads[actor])
        inside: Counter[str] = Counter()
        start = 0
        peak = 0
        first: datetime | None = None
        last: datetime | None = None
        for moment, subject in events:
            inside[subject] += 1
            while moment - events[start][0] > window:
                old = events[start][1]
                inside[old] -= 1
                if inside[old] == 0:
                    del inside[old]
                start += 1
            if len(inside) >= threshold:
                first = first or events[start][0]
                last = moment
            peak = max(peak, len(inside))
        if first is None:
            continue
        minutes = window.total_seconds() / 60
        alerts.append(
            SecurityAlert(
                kind="bulk_browsing",
                severity="high",
                detail=(
                    f"actor {actor!r} read {peak} distinct subjects within {minutes:g} min "
                    f"(threshold {threshold}): far more records than care needs; check the "
                    "purpose with the account holder, revoke its tokens if it is not theirs"
                ),
                count=peak,
                first_seen=first,
                last_seen=last,
            )
        )
    return alerts


def off_hours_new_address(
    entries: Iterable[audit.AuditEntry],
    *,
    known: Mapping[str, Iterable[str]],
    tz: tzinfo,
    working_hours: tuple[int, int] = (7, 20),
    exempt_roles: frozenset[str] = frozenset(),
) -> list[SecurityAlert]:
    """``off_hours_new_address``: reads outside ``working_hours`` (local ``tz``) from an
    address the account had not used before.

    ``known`` holds each account's addresses from before the window (the baseline); rows in
    the window add to it in time order, so only the first use of an address can raise. An
    account with no known address at all is not judged. One alert per (account, address).
    """
    start_hour, end_hour = working_hours
    seen: dict[str, set[str]] = {actor: set(addresses) for actor, addresses in known.items()}
    hits: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for entry in sorted(entries, key=lambda e: e.time):
        address = _detail(entry, "from")
        if not isinstance(address, str) or not address:
            continue
        history = seen.setdefault(entry.actor, set())
        local = entry.time.astimezone(tz)
        off_hours = not start_hour <= local.hour < end_hour
        new = address not in history
        if (
            (new or (entry.actor, address) in hits)
            and history
            and off_hours
            and entry.action in READ_ACTIONS
            and _role_of(entry) not in exempt_roles
        ):
            hits[(entry.actor, address)].append(entry.time)
            continue  # the address becomes known only once a daytime row uses it
        history.add(address)
    return [
        SecurityAlert(
            kind="off_hours_new_address",
            severity="high",
            detail=(
                f"actor {actor!r} read patient data {len(times)} time(s) outside working "
                f"hours ({start_hour:02d}:00-{end_hour:02d}:00 local) from {address}, an "
                "address it had not used before: confirm with the account holder; if it was "
                "not them, revoke its tokens and disable the account"
            ),
            count=len(times),
            first_seen=min(times),
            last_seen=max(times),
        )
        for (actor, address), times in sorted(hits.items())
    ]


def bulk_exports(
    entries: Iterable[audit.AuditEntry],
    *,
    window: timedelta,
    threshold: int,
    large_read_rows: int,
) -> list[SecurityAlert]:
    """``bulk_export``: ``threshold`` exports by one account within ``window``, or one read
    that returned at least ``large_read_rows`` rows."""
    exports: list[tuple[str, datetime]] = []
    large: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for entry in entries:
        if is_export(entry):
            exports.append((entry.actor, entry.time))
        elif entry.action in READ_ACTIONS and _returned(entry) >= large_read_rows:
            large[entry.actor].append((entry.time, _returned(entry)))
    alerts: list[SecurityAlert] = []
    hours = window.total_seconds() / 3600
    for actor, burst, peak in _bursts(exports, window=window, threshold=threshold):
        alerts.append(
            SecurityAlert(
                kind="bulk_export",
                severity="high",
                detail=(
                    f"actor {actor!r} exported data {len(burst)} times (up to {peak} within "
                    f"{hours:g} h; threshold {threshold}): exports leave the system's audit; "
                    "check where the files went"
                ),
                count=len(burst),
                first_seen=burst[0],
                last_seen=burst[-1],
            )
        )
    for actor in sorted(large):
        reads = sorted(large[actor])
        alerts.append(
            SecurityAlert(
                kind="bulk_export",
                severity="high",
                detail=(
                    f"actor {actor!r} made {len(reads)} read(s) returning at least "
                    f"{large_read_rows} rows (largest {max(n for _, n in reads)}): a dump "
                    "through the API; check the purpose"
                ),
                count=len(reads),
                first_seen=reads[0][0],
                last_seen=reads[-1][0],
            )
        )
    return alerts


def failed_login_bursts(
    entries: Iterable[audit.AuditEntry], *, window: timedelta, threshold: int
) -> list[SecurityAlert]:
    """``login_failure_burst``: ``threshold`` ``login_failed`` rows for one account (guessing
    its password) or from one address (spraying many accounts) within ``window``."""
    by_account: list[tuple[str, datetime]] = []
    by_address: list[tuple[str, datetime]] = []
    for entry in entries:
        if entry.action != "login_failed":
            continue
        if entry.actor != "anonymous":
            by_account.append((entry.actor, entry.time))
        address = _detail(entry, "from")
        if isinstance(address, str) and address:
            by_address.append((address, entry.time))
    minutes = window.total_seconds() / 60
    alerts: list[SecurityAlert] = []
    for label, rows, advice in (
        ("account", by_account, "its password is being guessed; tell the holder, consider "
         "`vitalstream user disable` and a new password"),
        ("address", by_address, "one source tries many logins (password spraying); block it "
         "at the reverse proxy"),
    ):  # fmt: skip
        for key, burst, peak in _bursts(rows, window=window, threshold=threshold):
            alerts.append(
                SecurityAlert(
                    kind="login_failure_burst",
                    severity="high",
                    detail=(
                        f"{label} {key!r} had {len(burst)} failed logins in bursts (up to "
                        f"{peak} within {minutes:g} min; threshold {threshold}): {advice}"
                    ),
                    count=len(burst),
                    first_seen=burst[0],
                    last_seen=burst[-1],
                )
            )
    return alerts


def card_denied_bursts(
    entries: Iterable[audit.AuditEntry], *, window: timedelta, threshold: int
) -> list[SecurityAlert]:
    """``card_denied_burst``: ``threshold`` refused health-card look-ups by one actor within
    ``window`` (revoked or unknown cards presented again and again)."""
    rows = [(e.actor, e.time) for e in entries if e.action == "card_denied"]
    minutes = window.total_seconds() / 60
    return [
        SecurityAlert(
            kind="card_denied_burst",
            severity="high",
            detail=(
                f"actor {actor!r} had {len(burst)} health-card look-ups refused (up to {peak} "
                f"within {minutes:g} min; threshold {threshold}): revoked or forged cards are "
                "being tried; check the device and the cards presented"
            ),
            count=len(burst),
            first_seen=burst[0],
            last_seen=burst[-1],
        )
        for actor, burst, peak in _bursts(rows, window=window, threshold=threshold)
    ]


def _ids(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:MAX_IDS_IN_DETAIL])
    more = len(ids) - MAX_IDS_IN_DETAIL
    return shown + (f" and {more} more" if more > 0 else "")


# --------------------------------------------------------------------------- SQL shell


def _exists(conn: Connection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def _audit_alerts(conn: Connection) -> list[SecurityAlert]:
    if not _exists(conn, "audit_log"):
        return []
    result = audit.verify(audit.iter_rows(conn))
    if result.ok or result.first_bad_row is None:
        return []
    row = conn.execute(
        "SELECT time FROM audit_log WHERE id = %s", (result.first_bad_row,)
    ).fetchone()
    moment = row[0] if row is not None else None
    return [
        SecurityAlert(
            kind="audit_chain_broken",
            severity="critical",
            detail=(
                f"the audit log's hash chain breaks at row id {result.first_bad_row} of "
                f"{result.rows}: that row was altered, or a row before it was deleted; compare "
                "with the last anchored head hash and the database's own logs"
            ),
            count=1,
            first_seen=moment,
            last_seen=moment,
        )
    ]


def _burst_alerts(
    conn: Connection, since: datetime, window: timedelta, threshold: int
) -> list[SecurityAlert]:
    if not _exists(conn, "audit_log"):
        return []
    rows = conn.execute(
        "SELECT actor, time FROM audit_log WHERE action = 'read_denied' AND time >= %s",
        (since,),
    ).fetchall()
    return denied_bursts(
        ((str(actor), moment) for actor, moment in rows), window=window, threshold=threshold
    )


#: The detail keys the leak rules look at (the rest of a row's detail is not loaded).
_RULE_DETAIL_KEYS = ("role", "subject", "from", "format", "returned")


def _rule_entries(conn: Connection, since: datetime) -> list[audit.AuditEntry]:
    keys = ", ".join(f"'{key}', detail->'{key}'" for key in _RULE_DETAIL_KEYS)
    rows = conn.execute(
        f"SELECT time, actor, action, resource, jsonb_strip_nulls(jsonb_build_object({keys}))"  # noqa: S608
        " FROM audit_log WHERE time >= %s ORDER BY time",
        (since,),
    ).fetchall()
    return [
        audit.AuditEntry(
            time=moment, actor=str(actor), action=str(action), resource=str(resource), detail=detail
        )
        for moment, actor, action, resource, detail in rows
    ]


def _known_addresses(conn: Connection, start: datetime, end: datetime) -> dict[str, set[str]]:
    rows = conn.execute(
        "SELECT actor, array_agg(DISTINCT detail->>'from') FROM audit_log"
        " WHERE time >= %s AND time < %s AND detail->>'from' IS NOT NULL GROUP BY actor",
        (start, end),
    ).fetchall()
    return {str(actor): {str(a) for a in addresses} for actor, addresses in rows}


def _leak_rule_alerts(
    conn: Connection, since: datetime, rules: LeakRuleSettings
) -> list[SecurityAlert]:
    if not _exists(conn, "audit_log"):
        return []
    entries = _rule_entries(conn, since)
    known = _known_addresses(conn, since - rules.address_baseline, since)
    return [
        *bulk_browsing(
            entries,
            window=rules.browse_window,
            threshold=rules.browse_threshold,
            exempt_roles=rules.browse_exempt_roles,
        ),
        *off_hours_new_address(
            entries,
            known=known,
            tz=rules.tz,
            working_hours=rules.working_hours,
            exempt_roles=rules.off_hours_exempt_roles,
        ),
        *bulk_exports(
            entries,
            window=rules.export_window,
            threshold=rules.export_threshold,
            large_read_rows=rules.large_read_rows,
        ),
        *failed_login_bursts(entries, window=rules.login_window, threshold=rules.login_threshold),
        *card_denied_bursts(entries, window=rules.card_window, threshold=rules.card_threshold),
    ]


#: Where a clear ID could leak: (table, row id, scanned text, time column, label). Readings
#: have no row id (their key holds the device id, which may itself be the leak), so none is
#: listed for them.
_TEXT_SOURCES: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "readings",
        "NULL::bigint",
        "concat_ws(' ', subject, device, gateway, incident, array_to_string(quality, ' '))",
        "received_at",
        "readings.subject/device/gateway/incident/quality",
    ),
    ("alerts", "id", "concat_ws(' ', subject, message)", "created_at", "alerts.subject/message"),
    ("audit_log", "id", "concat_ws(' ', actor, resource, detail::text)", "time", "audit_log"),
)


def _leak_alert(label: str, hits: list[tuple[int | None, datetime]]) -> SecurityAlert:
    times = sorted(moment for _, moment in hits)
    ids = sorted(i for i, _ in hits if i is not None)
    where = f" (row ids: {_ids(ids)})" if ids else ""
    return SecurityAlert(
        kind="clear_id_leak",
        severity="critical",
        detail=(
            f"{len(hits)} row(s) of {label} hold a string that passes the GB 11643-1999 checks "
            f"of a resident ID number{where}: find the source that sent it, purge or redact "
            "the rows, and treat it as a personal-information incident"
        ),
        count=len(hits),
        first_seen=times[0],
        last_seen=times[-1],
    )


def _leak_alerts(conn: Connection, since: datetime, today: date) -> list[SecurityAlert]:
    alerts: list[SecurityAlert] = []
    if _exists(conn, "dead_letters"):
        clear = "concat_ws(' ', topic, gateway, device, reason_detail)"
        rows = conn.execute(
            f"SELECT id, received_at, payload, {clear} FROM dead_letters"  # noqa: S608
            f" WHERE received_at >= %s AND (encode(payload, 'escape') ~ %s OR {clear} ~ %s)",
            (since, SQL_ID_CANDIDATE, SQL_ID_CANDIDATE),
        ).fetchall()
        hits: list[tuple[int | None, datetime]] = [
            (int(row_id), moment)
            for row_id, moment, payload, text in rows
            if resident_ids_in(bytes(payload).decode("utf-8", "replace") + " " + text, today=today)
        ]
        if hits:
            alerts.append(_leak_alert("dead_letters (payload, topic, reason)", hits))
    for table, key, columns, time_column, label in _TEXT_SOURCES:
        if not _exists(conn, table):
            continue
        # Identifiers and expressions come from the constant table above; values are parameters.
        query = (
            f"SELECT {key}, {time_column}, {columns} FROM {table}"  # noqa: S608
            f" WHERE {time_column} >= %s AND {columns} ~ %s"
        )
        rows = conn.execute(query.encode(), (since, SQL_ID_CANDIDATE)).fetchall()
        found: list[tuple[int | None, datetime]] = [
            (None if row_id is None else int(row_id), moment)
            for row_id, moment, text in rows
            if resident_ids_in(str(text), today=today)
        ]
        if found:
            alerts.append(_leak_alert(label, found))
    return alerts


def _mismatch_alerts(conn: Connection, since: datetime) -> list[SecurityAlert]:
    if not _exists(conn, "dead_letters"):
        return []
    rows = conn.execute(
        "SELECT coalesce(gateway, '?'), count(*), min(received_at), max(received_at)"
        " FROM dead_letters WHERE reason_kind = 'gateway_mismatch' AND received_at >= %s"
        " GROUP BY 1 ORDER BY 1",
        (since,),
    ).fetchall()
    return [
        SecurityAlert(
            kind="gateway_mismatch",
            severity="high",
            detail=(
                f"{int(count)} batch(es) published under gateway {gateway!r}'s topic claimed "
                "another gateway's id: check the broker ACL (pattern vs/v1/gw/%u/#, "
                "use_identity_as_username) and whether that gateway's certificate was copied; "
                "revoke it with `vitalstream pki revoke`"
            ),
            count=int(count),
            first_seen=first,
            last_seen=last,
        )
        for gateway, count, first, last in rows
    ]


_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def build_report(
    conn: Connection,
    *,
    now: datetime,
    lookback: timedelta = DEFAULT_LOOKBACK,
    burst_window: timedelta = DEFAULT_BURST_WINDOW,
    burst_threshold: int = DEFAULT_BURST_THRESHOLD,
    rules: LeakRuleSettings | None = None,
) -> SecurityReport:
    """Run every check; the audit chain is verified whole, the rest over ``[now - lookback, …)``.

    Needs a connection that is not in autocommit mode (the chain is read through a server-side
    cursor); it only reads.
    """
    since = now - lookback
    alerts = [
        *_audit_alerts(conn),
        *_leak_alerts(conn, since, now.date()),
        *_burst_alerts(conn, since, burst_window, burst_threshold),
        *_mismatch_alerts(conn, since),
        *_leak_rule_alerts(conn, since, rules or LeakRuleSettings()),
    ]
    alerts.sort(key=lambda a: (_SEVERITY_ORDER[a.severity], a.kind, a.detail))
    return SecurityReport(alerts=tuple(alerts), checked_at=now, since=since)
