"""The database schema: numbered migrations, applied once each, at start-up, under a lock.

One module owns both storage paths (ARCHITECTURE.md, Storage); the API above them does not
know which one runs. Both expose the same relations: ``readings`` and the rollups
``readings_5min`` / ``readings_1h`` with columns (bucket, subject, metric, n, sum, min, max).

- **TimescaleDB** (extension available): ``readings`` is a hypertable with 7-day chunks,
  compressed after 7 days (segment by subject and metric), and the rollups are continuous
  aggregates refreshed by policy. The SQL is kept small and standard on purpose; it is
  checked against a real TimescaleDB outside this repository (docs/storage.md).
- **Plain PostgreSQL**: ``readings`` is range-partitioned by week on ``time``; partitions are
  created ahead (and on demand for late data) by :mod:`ingest_service.partitions`, and the
  rollups are ordinary tables the writer maintains in the same statement as the insert.
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
        "dead letters, batches, alerts, gateways (+ readings per storage path)",
        """
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
    (
        2,
        "audit log: append-only SM3/SHA-256 hash chain (ingest_service.audit)",
        """
CREATE TABLE audit_log (
    id          bigserial    PRIMARY KEY,
    time        timestamptz  NOT NULL,
    actor       text         NOT NULL,
    action      text         NOT NULL,
    resource    text         NOT NULL,
    detail      jsonb        NOT NULL DEFAULT '{}',
    algorithm   text         NOT NULL CHECK (algorithm IN ('sm3', 'sha256')),
    prev_hash   bytea        NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash        bytea        NOT NULL CHECK (octet_length(hash) = 32),
    -- One successor per row: the chain cannot fork even if the append lock is bypassed.
    UNIQUE (prev_hash)
);
CREATE INDEX audit_log_actor_time ON audit_log (actor, time);
CREATE INDEX audit_log_resource_time ON audit_log (resource, time);

-- Append-only: UPDATE, DELETE and TRUNCATE are refused for everyone but a superuser who
-- disables the trigger; `vitalstream audit verify` finds what such a user changed.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
""",
    ),
    (
        3,
        "rule state, per-subject rule settings, alert clearance",
        """
-- The rules engine's memory per subject (streaks, open alerts, windows), checkpointed.
CREATE TABLE rule_state (
    subject     text         PRIMARY KEY,
    state       jsonb        NOT NULL,
    updated_at  timestamptz  NOT NULL
);
-- A doctor's per-patient rule settings (packs, targets, disabled rules) and why.
CREATE TABLE subject_rules (
    subject         text         PRIMARY KEY,
    packs           text[],
    parameters      jsonb        NOT NULL DEFAULT '{}',
    disabled_rules  text[]       NOT NULL DEFAULT '{}',
    updated_at      timestamptz  NOT NULL DEFAULT now(),
    updated_by      text         NOT NULL,
    reason          text         NOT NULL
);
ALTER TABLE alerts ADD COLUMN condition_cleared_at timestamptz,
    ADD COLUMN occurrences integer NOT NULL DEFAULT 1,
    ADD COLUMN last_seen_at timestamptz;
-- One open alert per subject and rule, whatever happens to the engine's memory. Alerts
-- written before this migration could have several open episodes: the newest stays open.
UPDATE alerts a SET state = 'resolved'
WHERE state IN ('active', 'acknowledged') AND EXISTS (
    SELECT 1 FROM alerts b WHERE b.subject = a.subject AND b.rule = a.rule
    AND b.state IN ('active', 'acknowledged') AND b.id > a.id);
CREATE UNIQUE INDEX alerts_one_open ON alerts (subject, rule)
    WHERE state IN ('active', 'acknowledged');
""",
    ),
    (
        4,
        "master patient index, subject merges, health cards (issue 10)",
        """
-- One row per resident known to enrolment: the canonical subject (their first pseudonym) and
-- the key version it was made with. Never the clear ID (ingest_service.mpi).
CREATE TABLE subjects_mpi (
    subject      text         PRIMARY KEY,
    key_version  integer      NOT NULL CHECK (key_version >= 1),
    created_at   timestamptz  NOT NULL DEFAULT now()
);
-- Every pseudonym of a resident, one per key version, so old ones resolve after rotation.
CREATE TABLE subject_pseudonyms (
    pseudonym    text         PRIMARY KEY,
    key_version  integer      NOT NULL CHECK (key_version >= 1),
    subject      text         NOT NULL REFERENCES subjects_mpi (subject),
    created_at   timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (subject, key_version)
);
-- A temporary (ambulance) subject merged into the real one; one merge per temporary subject.
CREATE TABLE subject_merges (
    temporary       text         PRIMARY KEY,
    subject         text         NOT NULL,
    merged_at       timestamptz  NOT NULL,
    actor           text         NOT NULL,
    reason          text         NOT NULL,
    readings        bigint       NOT NULL,
    alerts          bigint       NOT NULL,
    alerts_closed   bigint       NOT NULL,
    audit_id        bigint       NOT NULL,
    CHECK (temporary <> subject)
);
CREATE INDEX subject_merges_subject ON subject_merges (subject);
-- Electronic health cards: the token carries only a random card id (ingest_service.health_card).
CREATE TABLE health_cards (
    card_id      text         PRIMARY KEY,
    subject      text         NOT NULL,
    issued_at    timestamptz  NOT NULL,
    expires_at   timestamptz  NOT NULL,
    issued_by    text         NOT NULL,
    revoked_at   timestamptz,
    CHECK (expires_at > issued_at)
);
CREATE INDEX health_cards_subject ON health_cards (subject);
""",
    ),
    (
        5,
        "notifications: one row per alert notice and channel (ingest_service.notifier)",
        """
-- What the notifier did with each notice on each channel: sent, failed after all retries, or
-- suppressed (quiet hours). The channel is the apprise URL with its secrets masked.
CREATE TABLE notifications (
    id            bigserial    PRIMARY KEY,
    submitted_at  timestamptz  NOT NULL,
    finished_at   timestamptz  NOT NULL,
    subject       text         NOT NULL,
    rule          text         NOT NULL,
    severity      text         NOT NULL,
    alert_time    timestamptz  NOT NULL,
    reason        text         NOT NULL,
    contact       text,
    channel       text         NOT NULL,
    status        text         NOT NULL CHECK (status IN ('sent', 'failed', 'suppressed')),
    attempts      integer      NOT NULL CHECK (attempts >= 0),
    detail        text         NOT NULL DEFAULT ''
);
CREATE INDEX notifications_subject_rule ON notifications (subject, rule, alert_time);
CREATE INDEX notifications_failed ON notifications (submitted_at) WHERE status = 'failed';
""",
    ),
    (
        6,
        "edge events: alarms the gateways raised locally (edge_agent.alarms)",
        """
-- One row per event a gateway sent on .../events (a LocalAlarm today). The gateway makes the
-- event id once and keeps it through re-sends, so (gateway, event_id) stores it once.
CREATE TABLE edge_events (
    gateway      text         NOT NULL,
    event_id     text         NOT NULL,
    kind         text         NOT NULL,
    subject      text         NOT NULL,
    rule         text,
    severity     text,
    time         timestamptz  NOT NULL,
    raised_at    timestamptz  NOT NULL,
    received_at  timestamptz  NOT NULL,
    batch_id     text         NOT NULL,
    payload      jsonb        NOT NULL,
    PRIMARY KEY (gateway, event_id)
);
CREATE INDEX edge_events_subject_time ON edge_events (subject, time);
""",
    ),
    (
        7,
        "device registry (unknown-device policy, last seen per device)",
        """
-- Devices the platform knows. With VITALSTREAM_DEVICE_POLICY=quarantine, readings from a
-- device not listed here are dead-lettered as unknown_device until it is registered.
CREATE TABLE devices (
    device         text         PRIMARY KEY,
    gateway        text         NOT NULL,
    registered_by  text         NOT NULL,
    registered_at  timestamptz  NOT NULL,
    last_seen      timestamptz
);
CREATE INDEX devices_gateway ON devices (gateway);
""",
    ),
    (
        8,
        "pre-hospital handoff: incidents, crew events, pathway activations, ER notifications,"
        " handoff bundles (ingest_service.handoff, issue 9)",
        """
-- IF NOT EXISTS on purpose: before this migration the handoff service created these tables
-- itself at start-up (the same DDL), so a database it already ran on has them, with rows
-- worth keeping. There this migration only records itself; elsewhere it creates them.
CREATE TABLE IF NOT EXISTS incidents (
    incident        text         PRIMARY KEY,
    gateway         text         NOT NULL,
    subject         text         NOT NULL,
    pathway         text,
    state           jsonb        NOT NULL,
    opened_at       timestamptz  NOT NULL,
    updated_at      timestamptz  NOT NULL,
    handed_over_at  timestamptz
);
CREATE INDEX IF NOT EXISTS incidents_open ON incidents (updated_at) WHERE handed_over_at IS NULL;

-- Every crew event once (event_id: QoS 1 may deliver twice), also those of unknown incidents.
CREATE TABLE IF NOT EXISTS incident_events (
    event_id     text         PRIMARY KEY,
    incident     text         NOT NULL,
    gateway      text         NOT NULL,
    kind         text         NOT NULL,
    time         timestamptz  NOT NULL,
    received_at  timestamptz  NOT NULL,
    payload      jsonb        NOT NULL
);
CREATE INDEX IF NOT EXISTS incident_events_incident ON incident_events (incident, time);

-- Each pathway activates at most once per incident.
CREATE TABLE IF NOT EXISTS pathway_activations (
    id                   bigserial    PRIMARY KEY,
    incident             text         NOT NULL REFERENCES incidents,
    pathway              text         NOT NULL,
    team                 text         NOT NULL,
    reasons              text[]       NOT NULL,
    missing              text[]       NOT NULL DEFAULT '{}',
    advice               text[]       NOT NULL DEFAULT '{}',
    guideline            text         NOT NULL,
    deadline             timestamptz,
    finding_received_at  timestamptz  NOT NULL,
    activated_at         timestamptz  NOT NULL,
    UNIQUE (incident, pathway)
);

-- One row per ER channel an activation was sent on; the team's acknowledgement of the
-- pre-alert fills acknowledged_at/by (ER board, API, CLI).
CREATE TABLE IF NOT EXISTS pathway_notifications (
    id                             bigserial         PRIMARY KEY,
    activation_id                  bigint            NOT NULL REFERENCES pathway_activations,
    channel                        text              NOT NULL,
    target                         text              NOT NULL,
    status                         text              NOT NULL,
    detail                         text,
    notified_at                    timestamptz       NOT NULL,
    activation_to_notification_ms  double precision  NOT NULL,
    acknowledged_at                timestamptz,
    acknowledged_by                text
);
CREATE INDEX IF NOT EXISTS pathway_notifications_activation
    ON pathway_notifications (activation_id);

-- The FHIR handoff Bundle of an incident and the hospital's receipt.
CREATE TABLE IF NOT EXISTS handoffs (
    incident     text         PRIMARY KEY REFERENCES incidents,
    bundle_id    text         NOT NULL,
    bundle       jsonb        NOT NULL,
    created_at   timestamptz  NOT NULL,
    receipt      jsonb,
    received_at  timestamptz
);
""",
    ),
    (
        10,
        "API login: users, service clients, revoked tokens (ingest_service.users, issue 10)",
        """
-- People who log in with a password (OAuth2 password grant). role decides what the token may
-- read (ingest_service.api.access): a patient's token carries their own subject, a doctor's
-- the contracted subjects. password_hash is an argon2id PHC string (argon2-cffi).
CREATE TABLE users (
    username             text         PRIMARY KEY,
    role                 text         NOT NULL CHECK (role IN ('patient', 'doctor', 'er', 'admin')),
    subject              text,
    contracted_subjects  text[]       NOT NULL DEFAULT '{}',
    password_hash        text         NOT NULL,
    disabled             boolean      NOT NULL DEFAULT false,
    created_at           timestamptz  NOT NULL,
    CHECK ((role = 'patient') = (subject IS NOT NULL)),
    CHECK (role = 'doctor' OR contracted_subjects = '{}')
);

-- Services that log in as themselves (OAuth2 client-credentials grant), e.g. a regional
-- platform. secret_hash is argon2id like a password; scopes are what the client may ask for.
CREATE TABLE api_clients (
    client_id    text         PRIMARY KEY,
    secret_hash  text         NOT NULL,
    role         text         NOT NULL CHECK (role IN ('service', 'er', 'admin')),
    scopes       text[]       NOT NULL DEFAULT '{}',
    disabled     boolean      NOT NULL DEFAULT false,
    created_at   timestamptz  NOT NULL
);

-- Tokens refused before they expire (POST /api/v1/auth/revoke). Only the id (jti) is kept,
-- never the token. Rows older than the longest token lifetime no longer matter.
CREATE TABLE revoked_tokens (
    jti         text         PRIMARY KEY,
    revoked_at  timestamptz  NOT NULL,
    by          text         NOT NULL,
    reason      text         NOT NULL DEFAULT ''
);
CREATE INDEX revoked_tokens_revoked_at ON revoked_tokens (revoked_at);
""",
    ),
    (
        9,
        "alert lifecycle: snooze, shelve, escalation, who acknowledged/resolved, transitions"
        " (ingest_service.alert_lifecycle)",
        """
-- What the lifecycle (alert_rules.lifecycle.TrackedAlert) keeps per alert. active_since is
-- when the alert last started waiting for a human (raised, or woken from a snooze/shelf):
-- the escalation clock. pending_notice is a notification an action asked for (a manual
-- escalation) that the ingest service's lifecycle tick sends, as it holds the notifier.
ALTER TABLE alerts ADD COLUMN snoozed_until timestamptz,
    ADD COLUMN shelved_until timestamptz,
    ADD COLUMN escalation_level integer NOT NULL DEFAULT 0 CHECK (escalation_level >= 0),
    ADD COLUMN acknowledged_at timestamptz,
    ADD COLUMN acknowledged_by text,
    ADD COLUMN resolved_at timestamptz,
    ADD COLUMN resolved_by text,
    ADD COLUMN notified_at timestamptz,
    ADD COLUMN renotified integer NOT NULL DEFAULT 0 CHECK (renotified >= 0),
    ADD COLUMN active_since timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN pending_notice text;
UPDATE alerts SET active_since = created_at;

-- Every lifecycle transition (who, when, why); each one also has an audit_log row (audit_id).
-- note is what a person typed (NULL for the system and for an action without a note).
CREATE TABLE alert_transitions (
    id                bigserial    PRIMARY KEY,
    alert_id          bigint       NOT NULL REFERENCES alerts (id),
    action            text         NOT NULL,
    from_state        text,
    to_state          text         NOT NULL,
    at                timestamptz  NOT NULL,
    actor             text         NOT NULL,
    reason            text         NOT NULL,
    note              text,
    escalation_level  integer,
    audit_id          bigint
);
CREATE INDEX alert_transitions_alert ON alert_transitions (alert_id, at);
CREATE INDEX alert_transitions_actor ON alert_transitions (actor, at);

-- Acknowledgements and resolutions made before this migration live in the audit log only.
INSERT INTO alert_transitions
    (alert_id, action, from_state, to_state, at, actor, reason, note, audit_id)
SELECT a.id, CASE l.action WHEN 'alert_acknowledged' THEN 'acknowledge' ELSE 'resolve' END,
       l.detail->>'from_state', coalesce(l.detail->>'to_state', substr(l.action, 7)), l.time,
       l.actor, coalesce(l.detail->>'why', ''), nullif(l.detail->>'note', ''), l.id
FROM audit_log l JOIN alerts a ON l.resource = 'alert/' || a.id::text
WHERE l.action IN ('alert_acknowledged', 'alert_resolved')
ORDER BY l.id;
UPDATE alerts a SET acknowledged_at = t.at, acknowledged_by = t.actor
FROM (SELECT DISTINCT ON (alert_id) alert_id, at, actor FROM alert_transitions
      WHERE to_state = 'acknowledged' ORDER BY alert_id, id) t
WHERE t.alert_id = a.id;
UPDATE alerts a SET resolved_at = t.at, resolved_by = t.actor
FROM (SELECT DISTINCT ON (alert_id) alert_id, at, actor FROM alert_transitions
      WHERE to_state = 'resolved' ORDER BY alert_id, id DESC) t
WHERE t.alert_id = a.id AND a.state = 'resolved';

-- Snoozed and shelved alerts are still open: a recurrence folds into them (rules_runner's
-- ON CONFLICT names the same predicate) instead of opening a second alert.
DROP INDEX alerts_one_open;
CREATE UNIQUE INDEX alerts_one_open ON alerts (subject, rule)
    WHERE state IN ('active', 'acknowledged', 'snoozed', 'shelved');
-- The lifecycle tick's work list: what may expire, escalate or be re-notified.
CREATE INDEX alerts_lifecycle_due ON alerts (state)
    WHERE state IN ('active', 'snoozed', 'shelved') OR pending_notice IS NOT NULL;
""",
    ),
    (
        11,
        "ECG waveform snippets from gateways (.../waveform, ingest_service.waveforms, issue 6)",
        """
-- One row per snippet: int16 little-endian samples as sent (value_mV = count * scale).
-- The key makes a snippet re-sent by the edge outbox harmless.
CREATE TABLE waveforms (
    device          text              NOT NULL,
    channel         text              NOT NULL,
    start_time      timestamptz       NOT NULL,
    subject         text              NOT NULL,
    gateway         text              NOT NULL,
    sample_rate_hz  double precision  NOT NULL,
    unit            text              NOT NULL,
    scale           double precision  NOT NULL,
    n_samples       integer           NOT NULL,
    samples         bytea             NOT NULL,
    source          text              NOT NULL,
    incident        text,
    quality         text[]            NOT NULL DEFAULT '{}',
    batch_id        text              NOT NULL,
    received_at     timestamptz       NOT NULL,
    PRIMARY KEY (device, channel, start_time)
);
CREATE INDEX waveforms_subject_start ON waveforms (subject, start_time DESC);
""",
    ),
    (
        12,
        "ECG reading (R7): snippet ids and the readers' reports (ingest_service.web.ecg)",
        """
-- A short id for the reading pages (/ecg/{id}); existing rows are numbered too.
ALTER TABLE waveforms ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE waveforms ADD CONSTRAINT waveforms_id_key UNIQUE (id);
-- One report per snippet: a snippet with a report is read (it leaves the queue).
CREATE TABLE ecg_reports (
    id           bigint       GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    waveform_id  bigint       NOT NULL UNIQUE REFERENCES waveforms (id),
    subject      text         NOT NULL,
    rhythm       text         NOT NULL,
    findings     text[]       NOT NULL DEFAULT '{}',
    note         text         NOT NULL DEFAULT '',
    af_finding   jsonb        NOT NULL,
    reader       text         NOT NULL,
    reader_role  text         NOT NULL,
    reported_at  timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX ecg_reports_subject ON ecg_reports (subject, reported_at DESC);
""",
    ),
    (
        13,
        "API authorisation: incident hospitals and gateway routes, er hospitals, device"
        " clients, scope names, shared login throttle (ingest_service.api, issue 10)",
        """
-- The destination hospital of an incident (an opaque hospital id); NULL = not routed yet.
-- Backfill: incidents stored before this migration have no destination on record, so they
-- stay NULL: admins and ER accounts of no particular hospital see them, an ER account of one
-- hospital does not, until an admin routes them (PUT /api/v1/incidents/{id}/hospital).
ALTER TABLE incidents ADD COLUMN hospital text;
CREATE INDEX incidents_hospital ON incidents (hospital, subject);

-- Default routes: an ambulance gateway's new incidents go to this hospital unless they are
-- opened with one (PUT /api/v1/gateways/{id}/route). The trigger applies it when the row is
-- first inserted, whoever inserts it (the handoff service from crew events, the API, the
-- CLI), so a later change of route does not move incidents already open.
CREATE TABLE gateway_routes (
    gateway   text         PRIMARY KEY,
    hospital  text         NOT NULL,
    set_by    text         NOT NULL,
    set_at    timestamptz  NOT NULL
);
CREATE FUNCTION incidents_default_hospital() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.hospital IS NULL THEN
        NEW.hospital := (SELECT hospital FROM gateway_routes WHERE gateway = NEW.gateway);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER incidents_route BEFORE INSERT ON incidents
    FOR EACH ROW EXECUTE FUNCTION incidents_default_hospital();

-- An er account may belong to one hospital (its token's `hospital` claim); a device client
-- is one gateway (its token's `gateway` claim).
ALTER TABLE users ADD COLUMN hospital text,
    ADD CONSTRAINT users_hospital_er CHECK (hospital IS NULL OR role = 'er');
ALTER TABLE api_clients DROP CONSTRAINT api_clients_role_check,
    ADD CONSTRAINT api_clients_role_check
        CHECK (role IN ('service', 'er', 'admin', 'device')),
    ADD COLUMN hospital text,
    ADD COLUMN gateway text,
    ADD CONSTRAINT api_clients_hospital_er CHECK (hospital IS NULL OR role = 'er'),
    ADD CONSTRAINT api_clients_gateway_device CHECK ((role = 'device') = (gateway IS NOT NULL));

-- Scopes are per resource and action now (ingest_service.api.scopes); the single words of
-- migration 10 become their read scope, unknown words are kept (they grant nothing).
UPDATE api_clients SET scopes = ARRAY(
    SELECT DISTINCT CASE s
        WHEN 'readings' THEN 'readings:read' WHEN 'subjects' THEN 'readings:read'
        WHEN 'alerts' THEN 'alerts:read' WHEN 'incidents' THEN 'incidents:read'
        WHEN 'gateways' THEN 'gateways:read' WHEN 'dead-letters' THEN 'dead-letters:read'
        WHEN 'audit' THEN 'audit:read' ELSE s END
    FROM unnest(scopes) AS s ORDER BY 1);

-- Failed logins, shared by every API process (ingest_service.users.LoginThrottle). key is
-- HMAC-SHA256 of the username or the client address under a key derived from the API
-- signing key: never the typed name, which may be an ID number or a password.
CREATE TABLE login_failures (
    dimension  text         NOT NULL CHECK (dimension IN ('user', 'address')),
    key        bytea        NOT NULL CHECK (octet_length(key) = 32),
    failed_at  timestamptz  NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (dimension, key, failed_at DESC);
CREATE INDEX login_failures_failed_at ON login_failures (failed_at);
""",
    ),
    (
        14,
        "rule inbox: first-time readings wait here for the one rules consumer",
        """
-- Each ingest transaction appends the first-time readings it stored (subject, metric, POSIX
-- time, value) as one row; the rules consumer (ingest_service.rule_consumer) judges them and
-- deletes the row in the transaction that writes the alerts: every stored reading is judged
-- once, by one engine that sees each subject's whole stream, however many ingest workers
-- share the broker subscription (docs/ingest.md, "Parallel workers").
CREATE TABLE rule_inbox (
    id            bigserial    PRIMARY KEY,
    committed_at  timestamptz  NOT NULL,
    observations  json         NOT NULL
);
""",
    ),
)

_READINGS_COLUMNS = """
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
    -- The idempotency key of ARCHITECTURE.md; it includes time, as partitions and
    -- hypertables require of every unique key.
    PRIMARY KEY (device, metric, time),
    CHECK ((value IS NULL) <> (no_value IS NULL))
"""

_ROLLUP_COLUMNS = """
    bucket  timestamptz       NOT NULL,
    subject text              NOT NULL,
    metric  text              NOT NULL,
    n       bigint            NOT NULL,
    sum     double precision  NOT NULL,
    min     double precision  NOT NULL,
    max     double precision  NOT NULL,
    PRIMARY KEY (subject, metric, bucket)
"""

#: Plain PostgreSQL: weekly range partitions, rollup tables kept by the writer.
PLAIN_READINGS = f"""
CREATE TABLE readings ({_READINGS_COLUMNS}) PARTITION BY RANGE (time);
CREATE INDEX readings_subject_metric_time ON readings (subject, metric, time DESC);
CREATE TABLE readings_5min ({_ROLLUP_COLUMNS});
CREATE TABLE readings_1h ({_ROLLUP_COLUMNS});
"""


def _continuous_aggregate(name: str, width: str, start: str, end: str) -> str:
    return f"""
CREATE MATERIALIZED VIEW {name} WITH (timescaledb.continuous) AS
    SELECT time_bucket(INTERVAL '{width}', time) AS bucket, subject, metric,
           count(value) AS n, coalesce(sum(value), 0) AS sum, min(value) AS min,
           max(value) AS max
    FROM readings WHERE value IS NOT NULL
    GROUP BY bucket, subject, metric
    WITH NO DATA;
SELECT add_continuous_aggregate_policy('{name}', start_offset => INTERVAL '{start}',
    end_offset => INTERVAL '{end}', schedule_interval => INTERVAL '{width}');
"""


#: TimescaleDB: hypertable, compression policy, continuous aggregates (docs/storage.md).
TIMESCALE_READINGS = (
    f"""
CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE TABLE readings ({_READINGS_COLUMNS});
CREATE INDEX readings_subject_metric_time ON readings (subject, metric, time DESC);
SELECT create_hypertable('readings', 'time', chunk_time_interval => INTERVAL '7 days');
-- Every column of a unique index must be a segment-by or order-by column of compression.
ALTER TABLE readings SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'subject, metric',
    timescaledb.compress_orderby = 'device, time DESC');
SELECT add_compression_policy('readings', INTERVAL '7 days');
"""
    + _continuous_aggregate("readings_5min", "5 minutes", "1 day", "5 minutes")
    + _continuous_aggregate("readings_1h", "1 hour", "7 days", "1 hour")
)


def retention_sql(kind: DatabaseKind, keep_days: int) -> str:
    """SQL that keeps raw readings for ``keep_days`` (rollups are kept).

    TimescaleDB: a retention policy. Plain PostgreSQL: dropping whole weekly partitions is done
    by :func:`ingest_service.partitions.drop_partitions_before`, not by SQL here.
    """
    if kind != "timescaledb":
        raise ValueError("plain PostgreSQL drops partitions; see partitions.py")
    return f"SELECT add_retention_policy('readings', INTERVAL '{int(keep_days)} days');"


def timescale_available(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """True when the server offers the ``timescaledb`` extension."""
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    return row is not None


def storage_kind(conn: psycopg.Connection[tuple[object, ...]]) -> DatabaseKind:
    """Which path the database actually runs: a hypertable ``readings`` or the plain one."""
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    if row is None:
        return "postgresql"
    hypertable = conn.execute(
        "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'readings'"
    ).fetchone()
    return "timescaledb" if hypertable else "postgresql"


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
        for version, description, sql in sorted(MIGRATIONS):
            if version in done:
                continue
            conn.execute(sql.encode())
            if version == 1:
                conn.execute((TIMESCALE_READINGS if timescale else PLAIN_READINGS).encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                (version, description),
            )
        return storage_kind(conn)
