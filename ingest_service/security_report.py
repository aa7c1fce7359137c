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

Pure core: :func:`resident_ids_in`, :func:`contains_resident_id`, :func:`denied_bursts`,
:class:`SecurityAlert`. SQL shell: :func:`build_report`. Read-only.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

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
    if threshold < 1:
        raise ValueError("the burst threshold is at least 1")
    by_actor: dict[str, list[datetime]] = defaultdict(list)
    for actor, moment in rows:
        by_actor[actor].append(moment)
    alerts: list[SecurityAlert] = []
    for actor in sorted(by_actor):
        times = sorted(by_actor[actor])
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
        if not burst:
            continue
        minutes = window.total_seconds() / 60
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
    ]
    alerts.sort(key=lambda a: (_SEVERITY_ORDER[a.severity], a.kind, a.detail))
    return SecurityReport(alerts=tuple(alerts), checked_at=now, since=since)
