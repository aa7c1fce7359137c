"""ECG snippets from gateways (``.../waveform``, issue 6): stored once each in ``waveforms``.

A :class:`vitals.WaveformBatch` is handled like an event batch: stored in the caller's
transaction, acknowledged with a :class:`vitals.BatchAck` after the commit so the edge outbox
can delete it. The samples are kept as the wire's int16 little-endian bytes (``bytea``, 2 bytes
a sample) with their ``scale`` in mV per count: 10 s at 360 Hz is 7.2 kB a row. The key
(device, channel, start) makes a re-sent snippet harmless. The table is migration 11
(:mod:`ingest_service.schema`).
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import psycopg

from ingest_service.storage import dead_letter_message
from vitals import PayloadError, WaveformBatch, decode, parse_topic


def store_waveforms(
    conn: psycopg.Connection[tuple[object, ...]],
    messages: Sequence[tuple[str, bytes]],
    received_at: datetime,
    prefix: str,
) -> tuple[dict[str, list[str]], int, int]:
    """Store (topic, payload) waveform batches in the caller's transaction.

    Returns the batch ids to acknowledge per gateway, how many snippets were new, and how many
    messages were dead-lettered (malformed, or a gateway publishing under another's topic).
    """
    acks: dict[str, list[str]] = defaultdict(list)
    stored = 0
    bad = 0
    for topic, payload in messages:
        try:
            gateway: str | None = parse_topic(topic, prefix)[0]
        except PayloadError:
            gateway = None
        try:
            batch = decode(payload, WaveformBatch)
        except PayloadError as exc:
            dead_letter_message(conn, topic, payload, received_at, gateway, exc.kind, exc.detail)
            bad += 1
            continue
        if batch.gateway != gateway:
            dead_letter_message(
                conn,
                topic,
                payload,
                received_at,
                gateway,
                "gateway_mismatch",
                f"waveforms of gateway {batch.gateway} on the topic of {gateway}",
            )
            bad += 1
            continue
        for snippet in batch.snippets:
            row = conn.execute(
                "INSERT INTO waveforms (device, channel, start_time, subject, gateway,"
                " sample_rate_hz, unit, scale, n_samples, samples, source, incident, quality,"
                " batch_id, received_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (device, channel, start_time) DO NOTHING RETURNING 1",
                (
                    snippet.device,
                    snippet.channel,
                    snippet.start,
                    snippet.subject,
                    batch.gateway,
                    snippet.sample_rate_hz,
                    snippet.unit,
                    snippet.scale,
                    snippet.n_samples,
                    base64.b64decode(snippet.samples),
                    snippet.source,
                    snippet.incident,
                    list(snippet.quality),
                    batch.batch_id,
                    received_at,
                ),
            ).fetchone()
            stored += row is not None
        acks[batch.gateway].append(batch.batch_id)
    return acks, stored, bad
