"""Master patient index: pseudonyms per key version, and merging temporary subjects (issue 10).

The MPI is the enrolment side's memory, and it never holds a clear ID (GB 11643-1999 numbers
stay in the enrolment process): only the pseudonyms enrolment derived from it.

- ``subjects_mpi`` (subject, key_version, created_at): one row per resident. ``subject`` is the
  **canonical** subject: the pseudonym under which the resident was first registered. Stored
  readings and alerts are keyed by it and are never re-keyed by a key rotation.
- ``subject_pseudonyms`` (pseudonym, key_version, subject): the resident's pseudonym under every
  key version (:func:`ingest_service.identity.pseudonyms_for`), so a pseudonym made after a
  rotation, or an old one printed on a form, still resolves to the canonical subject.
- ``subject_merges``: an unidentified (ambulance) patient's temporary ``tmp-…`` subject merged
  into the real one once identified; :func:`merge` re-keys the temporary's readings and alerts
  in one transaction and appends an audit row (``ingest_service.audit``) in the same one.

All functions are thin SQL shells; the caller passes ``now``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from ingest_service import audit
from ingest_service.identity import SUBJECT_PATTERN, TEMPORARY_PREFIX, is_temporary_subject
from ingest_service.security_report import contains_resident_id
from vitals import VitalsError
from vitals.models import is_identifier

Connection = psycopg.Connection[Any]

#: Advisory-lock keys: MPI registration ("vsmp") and merges ("vsmr", then the temporary).
MPI_LOCK = 0x76_73_6D_70
MERGE_LOCK = 0x76_73_6D_72

#: Alert states that count as open (the ``alerts_one_open`` index of migration 3).
OPEN_STATES = ("active", "acknowledged", "snoozed", "shelved")
#: Rollup tables the plain-PostgreSQL writer keeps (TimescaleDB: continuous aggregates).
ROLLUP_TABLES = ("readings_5min", "readings_1h")
MAX_REASON_CHARS = 500
MERGE_ACTION = "subject_merge"


class SubjectError(VitalsError):
    """A subject the MPI does not know, or a merge it refuses (the kind says which)."""

    kind = "unknown_subject"


@dataclass(frozen=True)
class MergeResult:
    """What :func:`merge` did (the ``vitalstream subject merge`` output)."""

    temporary: str
    subject: str
    readings: int
    alerts: int
    alerts_closed: tuple[int, ...]
    rollup_rows: int
    merged_at: datetime
    audit_id: int
    repeat: bool

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "temporary": self.temporary,
            "subject": self.subject,
            "readings": self.readings,
            "alerts": self.alerts,
            "alerts_closed": list(self.alerts_closed),
            "rollup_rows": self.rollup_rows,
            "merged_at": self.merged_at.isoformat(),
            "audit_id": self.audit_id,
            "repeat": self.repeat,
        }


# --------------------------------------------------------------------------- index


def register(conn: Connection, pseudonyms: Mapping[int, str]) -> str:
    """Record a resident's pseudonyms (key version -> pseudonym) and return the canonical one.

    When any of them is already known, the resident's existing canonical subject is kept and
    the new versions are added to it. A new resident's canonical subject is the pseudonym under
    the newest key version (the one ``vitalstream enrol`` prints). Idempotent.
    """
    if not pseudonyms:
        raise ValueError("register needs at least one pseudonym")
    for subject in pseudonyms.values():
        if not SUBJECT_PATTERN.match(subject):
            raise SubjectError("a pseudonym is p + 26 base32 characters", kind="invalid_subject")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MPI_LOCK,))
        rows = conn.execute(
            "SELECT DISTINCT subject FROM subject_pseudonyms WHERE pseudonym = ANY(%s)",
            (list(pseudonyms.values()),),
        ).fetchall()
        if len(rows) > 1:
            raise SubjectError(
                "these pseudonyms belong to different residents in the index; refusing to join "
                "them (check the key directory)",
                kind="mpi_conflict",
            )
        if rows:
            canonical = str(rows[0][0])
        else:
            newest = max(pseudonyms)
            canonical = pseudonyms[newest]
            conn.execute(
                "INSERT INTO subjects_mpi (subject, key_version) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING",
                (canonical, newest),
            )
        for version, subject in sorted(pseudonyms.items()):
            conn.execute(
                "INSERT INTO subject_pseudonyms (pseudonym, key_version, subject)"
                " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (subject, version, canonical),
            )
    return canonical


def _canonical(conn: Connection, pseudonym: str) -> str | None:
    row = conn.execute(
        "SELECT subject FROM subject_pseudonyms WHERE pseudonym = %s", (pseudonym,)
    ).fetchone()
    if row is not None:
        return str(row[0])
    row = conn.execute(
        "SELECT subject FROM subjects_mpi WHERE subject = %s", (pseudonym,)
    ).fetchone()
    return str(row[0]) if row is not None else None


def resolve(conn: Connection, pseudonym: str) -> str:
    """The canonical subject of ``pseudonym``: any key version's pseudonym, or a merged
    temporary subject. Raises :class:`SubjectError` (``unknown_subject``) otherwise."""
    canonical = _canonical(conn, pseudonym)
    if canonical is not None:
        return canonical
    row = conn.execute(
        "SELECT subject FROM subject_merges WHERE temporary = %s", (pseudonym,)
    ).fetchone()
    if row is not None:
        target = str(row[0])
        return _canonical(conn, target) or target
    raise SubjectError("the master patient index does not know this subject")


def is_known(conn: Connection, subject: str) -> bool:
    """Whether ``subject`` resolves, or has readings or alerts stored under it."""
    try:
        resolve(conn, subject)
    except SubjectError:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM readings WHERE subject = %s)"
            " OR EXISTS (SELECT 1 FROM alerts WHERE subject = %s)",
            (subject, subject),
        ).fetchone()
        return bool(row and row[0])
    return True


# --------------------------------------------------------------------------- merge


def check_merge_request(temporary: str, real: str, actor: str, reason: str) -> str:
    """Validate a merge request (pure); returns the reason stripped.

    The reason is free text typed by a clerk and goes into the audit log, so one that contains
    something passing the GB 11643-1999 checks (a clear ID) is refused.
    """
    if not is_temporary_subject(temporary) or not is_identifier(temporary):
        raise SubjectError(
            f"--temporary must be a temporary subject ({TEMPORARY_PREFIX}...)",
            kind="invalid_subject",
        )
    if is_temporary_subject(real) or not is_identifier(real):
        raise SubjectError(
            "the subject to merge into must be a real (enrolled) subject, not a temporary one",
            kind="invalid_subject",
        )
    if not actor.strip():
        raise SubjectError("a merge needs an actor", kind="invalid_actor")
    text = reason.strip()
    if not text:
        raise SubjectError("a merge needs a reason (it is audited)", kind="invalid_reason")
    if len(text) > MAX_REASON_CHARS:
        raise SubjectError(
            f"the reason has {len(text)} characters; at most {MAX_REASON_CHARS}",
            kind="invalid_reason",
        )
    if contains_resident_id(text):
        raise SubjectError(
            "the reason contains what looks like a resident ID number; the audit log must "
            "never hold one: describe how the patient was identified without the number",
            kind="invalid_reason",
        )
    return text


def _rollups_are_tables(conn: Connection) -> bool:
    row = conn.execute(
        "SELECT relkind FROM pg_class WHERE oid = to_regclass('readings_5min')"
    ).fetchone()
    return row is not None and str(row[0]) in {"r", "p"}


def _fold_rollups(conn: Connection, temporary: str, real: str) -> int:
    """Move the temporary's rollup rows into the real subject's (plain PostgreSQL only)."""
    moved = 0
    for name in ROLLUP_TABLES:
        table = sql.Identifier(name)
        cursor = conn.execute(
            sql.SQL(
                "INSERT INTO {t} AS r (bucket, subject, metric, n, sum, min, max)"
                " SELECT bucket, %(real)s, metric, n, sum, min, max FROM {t}"
                " WHERE subject = %(temporary)s"
                " ON CONFLICT (subject, metric, bucket) DO UPDATE SET n = r.n + EXCLUDED.n,"
                " sum = r.sum + EXCLUDED.sum, min = least(r.min, EXCLUDED.min),"
                " max = greatest(r.max, EXCLUDED.max)"
            ).format(t=table),
            {"real": real, "temporary": temporary},
        )
        moved += max(cursor.rowcount, 0)
        conn.execute(sql.SQL("DELETE FROM {t} WHERE subject = %s").format(t=table), (temporary,))
    return moved


def merge(
    conn: Connection,
    temporary: str,
    real: str,
    actor: str,
    reason: str,
    *,
    now: datetime,
) -> MergeResult:
    """Merge the temporary subject ``temporary`` into ``real``, in one transaction.

    - ``real`` is first resolved through the MPI (an older or newer pseudonym of the same
      resident merges into the canonical subject);
    - where both subjects have an open alert for the same rule, the newer one stays open and
      the older one is resolved (there is one open alert per subject and rule);
    - readings (primary key device, metric, time: the subject is not part of it), alerts and,
      on plain PostgreSQL, the rollup rows are re-keyed; TimescaleDB's continuous aggregates
      pick the change up at their next refresh;
    - ``subject_merges`` and the audit log (action ``subject_merge``) record it, committed
      together with the re-keying.

    Merging again into the same subject sweeps readings that arrived under the temporary
    subject after the first merge (``repeat`` = true); into another subject is refused
    (``merge_conflict``). A temporary subject with no data and no earlier merge is refused
    (``unknown_subject``: most likely a typo).
    """
    text = check_merge_request(temporary, real, actor, reason)
    with conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s::int4, hashtext(%s))", (MERGE_LOCK, temporary)
        )
        target = _canonical(conn, real) or real
        if target == temporary:
            raise SubjectError("a subject cannot be merged into itself", kind="invalid_subject")
        previous = conn.execute(
            "SELECT subject FROM subject_merges WHERE temporary = %s", (temporary,)
        ).fetchone()
        if previous is not None and str(previous[0]) != target:
            raise SubjectError(
                f"{temporary} was already merged into another subject; a merge is not undone "
                "by merging again (ask the data protection officer)",
                kind="merge_conflict",
            )
        params = {"temporary": temporary, "real": target, "open": list(OPEN_STATES)}
        closed = tuple(
            int(row[0])
            for row in conn.execute(
                "UPDATE alerts SET state = 'resolved' WHERE id IN ("
                " SELECT least(t.id, r.id) FROM alerts t JOIN alerts r ON r.rule = t.rule"
                " WHERE t.subject = %(temporary)s AND r.subject = %(real)s"
                " AND t.state = ANY(%(open)s) AND r.state = ANY(%(open)s)) RETURNING id",
                params,
            ).fetchall()
        )
        alerts = conn.execute(
            "UPDATE alerts SET subject = %(real)s WHERE subject = %(temporary)s", params
        ).rowcount
        readings = conn.execute(
            "UPDATE readings SET subject = %(real)s WHERE subject = %(temporary)s", params
        ).rowcount
        rollups = _fold_rollups(conn, temporary, target) if _rollups_are_tables(conn) else 0
        if previous is None and readings == 0 and alerts == 0:
            raise SubjectError(f"no readings or alerts are stored under {temporary}")
        entry = audit.AuditEntry(
            time=now,
            actor=actor,
            action=MERGE_ACTION,
            resource=f"subject/{target}",
            detail={
                "temporary": temporary,
                "into": target,
                "requested_into": real,
                "reason": text,
                "readings": readings,
                "alerts": alerts,
                "alerts_closed": list(closed),
                "repeat": previous is not None,
            },
        )
        audit_row = audit.append(conn, entry)
        if previous is None:
            conn.execute(
                "INSERT INTO subject_merges (temporary, subject, merged_at, actor, reason,"
                " readings, alerts, alerts_closed, audit_id)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (temporary, target, now, actor, text, readings, alerts, len(closed), audit_row.id),
            )
        else:
            conn.execute(
                "UPDATE subject_merges SET readings = readings + %s, alerts = alerts + %s,"
                " alerts_closed = alerts_closed + %s WHERE temporary = %s",
                (readings, alerts, len(closed), temporary),
            )
    return MergeResult(
        temporary=temporary,
        subject=target,
        readings=readings,
        alerts=alerts,
        alerts_closed=closed,
        rollup_rows=rollups,
        merged_at=now,
        audit_id=audit_row.id,
        repeat=previous is not None,
    )
