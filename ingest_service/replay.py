"""Replaying dead letters after a fix (a catalogue change, a registered device, a bug fixed).

Every dead letter keeps its raw bytes, so it can be judged again by today's code:

- a whole message (``device`` is NULL) is validated again exactly as if it had just arrived
  on its topic;
- a single reading (the rest of its batch was stored) is wrapped in a one-reading batch of
  its gateway and validated again.

What now passes is stored through the normal writer (same unique key, so a replay can never
store a reading twice) and the dead letter gets ``replayed_at``; what still fails stays a
dead letter and is reported with today's reason. Replayed readings are historical: they are
not judged by the rules engine (its late-data policy would skip them anyway, docs/rules.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from ingest_service.schema import storage_kind
from ingest_service.storage import Delivery, ReadingWriter
from ingest_service.validate import AcceptedBatch, RejectedMessage, validate_message
from vitals import Batch, PayloadError, Reading, decode, encode

Connection = psycopg.Connection[tuple[object, ...]]


@dataclass
class ReplayOutcome:
    """What a replay did, row by row."""

    examined: int = 0
    stored: int = 0
    duplicates: int = 0
    still_rejected: list[dict[str, object]] = field(default_factory=list)


def replay(
    conn: Connection,
    now: datetime,
    *,
    kinds: Sequence[str] = (),
    ids: Sequence[int] = (),
    limit: int = 10_000,
) -> ReplayOutcome:
    """Re-judge dead letters not replayed yet (optionally only some kinds or ids)."""
    query = "SELECT id, topic, gateway, payload, device FROM dead_letters WHERE replayed_at IS NULL"
    params: list[object] = []
    if kinds:
        query += " AND reason_kind = ANY(%s)"
        params.append(list(kinds))
    if ids:
        query += " AND id = ANY(%s)"
        params.append(list(ids))
    query += " ORDER BY id LIMIT %s"
    params.append(limit)
    rows = conn.execute(query.encode(), params).fetchall()
    writer = ReadingWriter(storage_kind(conn))
    outcome = ReplayOutcome()
    for raw_id, raw_topic, raw_gateway, raw_payload, raw_device in rows:
        row_id, topic = int(str(raw_id)), str(raw_topic)
        payload = (
            raw_payload if isinstance(raw_payload, bytes) else bytes(str(raw_payload), "utf-8")
        )
        gateway = str(raw_gateway) if raw_gateway is not None else None
        outcome.examined += 1
        judged = _judge(row_id, topic, gateway, payload, raw_device is not None, now)
        if isinstance(judged, RejectedMessage):
            outcome.still_rejected.append(
                {"id": row_id, "kind": judged.kind, "detail": judged.detail}
            )
            continue
        if judged.rejected:
            first = judged.rejected[0]
            outcome.still_rejected.append(
                {"id": row_id, "kind": first.kind, "detail": first.detail}
            )
            continue
        with conn.transaction():
            result = writer.write(conn, [Delivery(topic, payload, now, judged)], now)
            conn.execute("UPDATE dead_letters SET replayed_at = %s WHERE id = %s", (now, row_id))
        outcome.stored += len(result.inserted)
        outcome.duplicates += result.duplicates
    return outcome


def _judge(
    row_id: int,
    topic: str,
    gateway: str | None,
    payload: bytes,
    single_reading: bool,
    now: datetime,
) -> AcceptedBatch | RejectedMessage:
    prefix = topic.split("/", 1)[0]
    if not single_reading:
        return validate_message(topic, payload, prefix=prefix, now=now)
    try:
        reading = decode(payload, Reading)
    except PayloadError as exc:
        return RejectedMessage(gateway, exc.kind, exc.detail)
    batch = Batch(
        batch_id=f"replay-{row_id}", gateway=str(gateway), sent_at=now, readings=(reading,)
    )
    return validate_message(topic, encode(batch), prefix=prefix, now=now)
