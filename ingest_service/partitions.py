"""Weekly range partitions of ``readings`` on plain PostgreSQL (no TimescaleDB).

Partitions are named ``readings_pYYYYMMDD`` after the Monday (UTC) that starts their week and
cover [Monday 00:00 UTC, next Monday). The writer calls :func:`ensure_for` with the times of
each batch, so a late reading from a gateway that was offline for a month still finds its
partition; the service also creates the coming weeks ahead at start-up. There is no DEFAULT
partition on purpose: rows in a default partition would block creating the proper partition
later, and nothing may be lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

#: Serialises partition creation between concurrent ingest workers.
_PARTITION_LOCK = 0x76_73_70_74  # "vspt"
WEEK = timedelta(days=7)

Connection = psycopg.Connection[tuple[object, ...]]


def week_start(moment: datetime) -> date:
    """The Monday (UTC) of the week holding ``moment``."""
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def partition_name(monday: date) -> str:
    """``readings_p20261123`` for the week starting Monday 2026-11-23."""
    return f"readings_p{monday:%Y%m%d}"


def existing(conn: Connection) -> set[date]:
    """Mondays of the partitions that exist now."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'readings'"
    ).fetchall()
    mondays: set[date] = set()
    for (name,) in rows:
        text = str(name)
        if text.startswith("readings_p"):
            mondays.add(datetime.strptime(text[len("readings_p") :], "%Y%m%d").date())
    return mondays


def create(conn: Connection, mondays: Iterable[date]) -> list[date]:
    """Create the partitions of ``mondays`` that are missing; returns the ones created."""
    wanted = sorted(set(mondays))
    if not wanted:
        return []
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
    have = existing(conn)
    created: list[date] = []
    for monday in wanted:
        if monday in have:
            continue
        start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
        conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF readings FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(partition_name(monday)),
                sql.Literal(start),
                sql.Literal(start + WEEK),
            )
        )
        created.append(monday)
    return created


def ensure_ahead(
    conn: Connection, now: datetime, weeks_back: int = 5, weeks_ahead: int = 2
) -> list[date]:
    """Create partitions around ``now`` (start-up and periodic maintenance)."""
    this_week = week_start(now)
    return create(conn, (this_week + WEEK * k for k in range(-weeks_back, weeks_ahead + 1)))


def drop_partitions_before(conn: Connection, cutoff: datetime) -> list[str]:
    """Retention on the plain path: drop whole weeks that end before ``cutoff``."""
    dropped: list[str] = []
    for monday in sorted(existing(conn)):
        if datetime(monday.year, monday.month, monday.day, tzinfo=UTC) + WEEK <= cutoff:
            name = partition_name(monday)
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
            dropped.append(name)
    return dropped
