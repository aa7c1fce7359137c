"""The database schema: numbered migrations, applied once each, at start-up, under a lock.

One module owns both storage paths (ARCHITECTURE.md, Storage). When the ``timescaledb``
extension is available, ``readings`` becomes a hypertable; otherwise it stays a plain table
(declarative partitioning of the plain path is the storage issue's work and will be added as
a new migration). The API above does not know which path runs.
"""

from __future__ import annotations

from typing import Literal

import psycopg

DatabaseKind = Literal["timescaledb", "postgresql"]

#: Advisory-lock key so that concurrent ingest workers do not migrate at the same time.
_MIGRATION_LOCK = 0x76_73_6D_67  # "vsmg"

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "readings, dead letters, batches, alerts, gateways",
        """
CREATE TABLE readings (
    time            timestamptz      NOT NULL,
    subject         text             NOT NULL,
    device          text             NOT NULL,
    metric          text             NOT NULL,
    value           double precision,
    no_value        text,
    unit            text             NOT NULL,
    seq             bigint           NOT NULL,
    source          text             NOT NULL,
    quality         text[]           NOT NULL DEFAULT '{}',
    original_value  double precision,
    original_unit   text,
    incident        text,
    gateway         text             NOT NULL,
    batch_id        text             NOT NULL,
    received_at     timestamptz      NOT NULL,
    -- The idempotency key of ARCHITECTURE.md; it includes time, as a hypertable requires.
    PRIMARY KEY (device, metric, time),
    CHECK ((value IS NULL) <> (no_value IS NULL))
);
CREATE INDEX readings_subject_metric_time ON readings (subject, metric, time DESC);

CREATE TABLE dead_letters (
    id              bigserial        PRIMARY KEY,
    received_at     timestamptz      NOT NULL,
    topic           text             NOT NULL,
    gateway         text,
    batch_id        text,
    reason_kind     text             NOT NULL,
    reason_detail   text             NOT NULL,
    payload         bytea            NOT NULL,
    device          text,
    metric          text,
    time            timestamptz,
    replayed_at     timestamptz
);
-- A reading re-sent by the edge is dead-lettered once, like it is stored once.
CREATE UNIQUE INDEX dead_letters_reading_key ON dead_letters (device, metric, time)
    WHERE device IS NOT NULL;

CREATE TABLE ingest_batches (
    batch_id            text         PRIMARY KEY,
    gateway             text         NOT NULL,
    sent_at             timestamptz  NOT NULL,
    first_committed_at  timestamptz  NOT NULL,
    readings            integer      NOT NULL,
    inserted            integer      NOT NULL,
    duplicates          integer      NOT NULL,
    dead_lettered       integer      NOT NULL,
    deliveries          integer      NOT NULL DEFAULT 1
);
CREATE INDEX ingest_batches_gateway ON ingest_batches (gateway);

CREATE TABLE alerts (
    id          bigserial        PRIMARY KEY,
    subject     text             NOT NULL,
    rule        text             NOT NULL,
    severity    text             NOT NULL,
    time        timestamptz      NOT NULL,
    message     text             NOT NULL,
    metric      text,
    value       double precision,
    state       text             NOT NULL DEFAULT 'active',
    created_at  timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX alerts_subject_time ON alerts (subject, time DESC);

CREATE TABLE gateways (
    gateway     text             PRIMARY KEY,
    state       text             NOT NULL,
    last_seen   timestamptz      NOT NULL,
    status      jsonb            NOT NULL
);
""",
    ),
)

#: Applied after migration 1 when TimescaleDB is available (small and standard on purpose;
#: checked against a real TimescaleDB outside this repository).
_TIMESCALE_SETUP = """
CREATE EXTENSION IF NOT EXISTS timescaledb;
SELECT create_hypertable('readings', 'time', if_not_exists => TRUE, migrate_data => TRUE);
"""


def timescale_available(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """True when the server offers the ``timescaledb`` extension."""
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    return row is not None


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> DatabaseKind:
    """Apply missing migrations (idempotent, concurrency-safe) and report the storage path."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, description text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {int(str(r[0])) for r in conn.execute("SELECT version FROM schema_migrations")}
        timescale = timescale_available(conn)
        for version, description, sql in MIGRATIONS:
            if version in done:
                continue
            conn.execute(sql.encode())
            if version == 1 and timescale:
                conn.execute(_TIMESCALE_SETUP.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                (version, description),
            )
    return "timescaledb" if timescale else "postgresql"
