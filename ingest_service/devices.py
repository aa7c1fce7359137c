"""The device registry: which devices may send readings, and when each was last heard.

Two policies (``VITALSTREAM_DEVICE_POLICY``):

- ``register`` (default): a device is registered the first time its gateway sends a reading
  from it (``registered_by = 'auto'``) — right for a pilot or a demo;
- ``quarantine``: a reading from a device that nobody registered is dead-lettered as
  ``unknown_device`` with its raw bytes; once an operator registers the device
  (``vitalstream device register``), ``vitalstream deadletters replay --kind unknown_device``
  stores what was held back. Right for production, where a stray or spoofed device must not
  write into a patient's record.

Either way ``last_seen`` is kept per device (one statement per transaction), so "which device
went silent" is a query, not a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Literal

import psycopg

from ingest_service.storage import Delivery
from ingest_service.validate import AcceptedBatch, RejectedReading

DevicePolicy = Literal["register", "quarantine"]
Connection = psycopg.Connection[tuple[object, ...]]

_TOUCH = (
    "INSERT INTO devices (device, gateway, registered_by, registered_at, last_seen) "
    "SELECT d, g, 'auto', t, t FROM unnest(%b::text[], %b::text[], %b::timestamptz[]) "
    "AS u(d, g, t) "
    "ON CONFLICT (device) DO UPDATE SET last_seen = greatest(devices.last_seen, EXCLUDED.last_seen)"
)
_TOUCH_KNOWN = (
    "UPDATE devices SET last_seen = greatest(devices.last_seen, u.t) "
    "FROM unnest(%b::text[], %b::text[], %b::timestamptz[]) AS u(d, g, t) "
    "WHERE devices.device = u.d"
)


class DeviceRegistry:
    """Applies the device policy to deliveries, inside the ingest transaction."""

    def __init__(self, policy: DevicePolicy) -> None:
        self.policy = policy
        self._known: set[str] = set()

    def screen(self, conn: Connection, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Deliveries with readings of unregistered devices held back (quarantine policy).

        Only reads: the ``last_seen`` write is :meth:`touch`, at the end of the transaction.
        """
        if self.policy == "register":
            return list(deliveries)
        unknown = set(_devices_seen(deliveries)) - self._known
        if unknown:
            rows = conn.execute(
                "SELECT device FROM devices WHERE device = ANY(%s)", (list(unknown),)
            ).fetchall()
            self._known.update(str(row[0]) for row in rows)
            unknown -= self._known
        if not unknown:
            return list(deliveries)
        return [_hold_back(delivery, unknown) for delivery in deliveries]

    def touch(self, conn: Connection, deliveries: Sequence[Delivery], now: datetime) -> None:
        """Record when each device was last heard from (registering new ones under the
        ``register`` policy) for the screened ``deliveries``.

        Call it last in the ingest transaction: parallel workers update the same device rows,
        and a row lock taken early would be held through the COPY and the rules, making the
        workers wait for each other's commits (docs/ingest.md, "Parallel workers").
        """
        seen = _devices_seen(deliveries)
        _touch(conn, _TOUCH if self.policy == "register" else _TOUCH_KNOWN, seen, now)

    def forget(self) -> None:
        """Forget the cache (after a rollback or a registration elsewhere)."""
        self._known.clear()


def register(conn: Connection, device: str, gateway: str, actor: str, now: datetime) -> bool:
    """Register a device under its gateway; False when it was registered already."""
    row = conn.execute(
        "INSERT INTO devices (device, gateway, registered_by, registered_at) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (device) DO NOTHING RETURNING device",
        (device, gateway, actor, now),
    ).fetchone()
    return row is not None


def _devices_seen(deliveries: Sequence[Delivery]) -> dict[str, str]:
    """device -> gateway of every reading accepted in ``deliveries``."""
    seen: dict[str, str] = {}
    for delivery in deliveries:
        if isinstance(delivery.outcome, AcceptedBatch):
            for reading in delivery.outcome.readings:
                seen.setdefault(reading.device, delivery.outcome.batch.gateway)
    return seen


def _touch(conn: Connection, sql: str, seen: dict[str, str], now: datetime) -> None:
    if seen:
        devices = sorted(seen)  # a stable order: concurrent workers lock rows alike
        conn.execute(sql, (devices, [seen[d] for d in devices], [now] * len(devices)))


def _hold_back(delivery: Delivery, unknown: set[str]) -> Delivery:
    outcome = delivery.outcome
    if not isinstance(outcome, AcceptedBatch):
        return delivery
    held = [r for r in outcome.readings if r.device in unknown]
    if not held:
        return delivery
    kept = tuple(r for r in outcome.readings if r.device not in unknown)
    rejected = tuple(
        RejectedReading(
            r.to_model(),
            "unknown_device",
            f"device {r.device!r} is not registered; register it with `vitalstream device "
            "register` and replay the dead letters",
        )
        for r in held
    )
    return replace(
        delivery, outcome=replace(outcome, readings=kept, rejected=outcome.rejected + rejected)
    )
