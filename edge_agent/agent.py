"""The edge agent: sources -> outbox (disk) -> MQTT batches -> confirmed by ingest -> deleted.

One agent = one gateway = one thread that owns the outbox. Each turn of its loop it takes due
readings from its sources into the outbox, applies the ingest service's acks, re-arms
everything after a reconnect, publishes due rows in batches, and every few seconds refreshes
its retained status. Retry timing is a pure function (:func:`retry_delay`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.link import GatewayLink
from edge_agent.outbox import Outbox
from vitals import Batch, BrokerAddress, GatewayStatus, Reading, encode, now_utc

log = logging.getLogger("vitalstream.edge")

#: A source returns the readings that became available since it was last asked.
Source = Callable[[], Sequence[Reading]]


def retry_delay(attempts: int, *, first_s: float = 10.0, cap_s: float = 120.0) -> float:
    """Seconds to wait for the ingest ack before re-sending, doubling per attempt, capped."""
    return float(min(cap_s, first_s * 2 ** max(0, attempts)))


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """How an agent batches and paces its uplink."""

    batch_size: int = 250
    max_unconfirmed_batches: int = 32
    status_interval_s: float = 5.0
    idle_sleep_s: float = 0.02


@dataclass
class AgentCounters:
    """What the agent did, for status and the demo summary."""

    accepted: int = 0
    batches_sent: int = 0
    confirmed: int = 0
    resent: int = 0
    accepted_keys: set[tuple[str, str, str]] = field(default_factory=set)


class EdgeAgent:
    """One gateway's agent. ``run`` blocks; ``start``/``stop`` run it in a thread."""

    def __init__(
        self,
        gateway: str,
        outbox_path: Path,
        broker: BrokerAddress,
        *,
        prefix: str,
        sources: Sequence[Source] = (),
        settings: AgentSettings | None = None,
    ) -> None:
        self.gateway = gateway
        self._outbox_path = outbox_path
        self._broker = broker
        self._prefix = prefix
        self._sources = list(sources)
        self._settings = settings or AgentSettings()
        self.counters = AgentCounters()
        # batch id -> (outbox row ids, retry time): batches published but not yet confirmed.
        self._unconfirmed: dict[str, tuple[list[int], float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._depth = 0
        self._sources_done = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Run the agent in a background thread."""
        self._thread = threading.Thread(target=self.run, name=f"edge-{self.gateway}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and close the link (the outbox keeps whatever is unconfirmed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def stop_sources(self) -> None:
        """Stop taking new readings; keep draining the outbox."""
        self._sources_done.set()

    @property
    def depth(self) -> int:
        """Readings in the outbox as of the last loop turn."""
        return self._depth

    def run(self) -> None:
        """The agent loop (blocks until :meth:`stop`); a crash is logged, never silent."""
        try:
            self._loop()
        except Exception:
            log.exception(
                "edge agent %s stopped on an error; its outbox keeps the data", self.gateway
            )
            raise

    def _loop(self) -> None:
        with (
            Outbox(self._outbox_path) as outbox,
            GatewayLink(self.gateway, self._broker, self._prefix) as link,
        ):
            next_status = 0.0
            while not self._stop.is_set():
                if not self._sources_done.is_set():
                    self._collect(outbox)
                self._apply_acks(outbox, link)
                if link.take_reconnected():
                    self._unconfirmed.clear()
                    outbox.make_all_due()
                    next_status = 0.0
                sent = self._drain(outbox, link) if link.connected else 0
                self._depth = outbox.depth()
                now = time.monotonic()
                if link.connected and now >= next_status:
                    self._publish_status(link)
                    next_status = now + self._settings.status_interval_s
                if not sent:
                    self._stop.wait(self._settings.idle_sleep_s)

    # -- steps -------------------------------------------------------------------------------
    def _collect(self, outbox: Outbox) -> None:
        for source in self._sources:
            readings = source()
            if readings:
                for reading in outbox.put(readings):
                    self.counters.accepted += 1
                    self.counters.accepted_keys.add(
                        (reading.device, reading.metric, reading.time.isoformat())
                    )

    def _apply_acks(self, outbox: Outbox, link: GatewayLink) -> None:
        while not link.acks.empty():
            ack = link.acks.get_nowait()
            for batch_id in ack.batch_ids:
                entry = self._unconfirmed.pop(batch_id, None)
                if entry:
                    self.counters.confirmed += outbox.confirm(entry[0])

    def _drain(self, outbox: Outbox, link: GatewayLink) -> int:
        now = time.time()
        # A batch whose retry time passed is forgotten: its rows are due again in the outbox
        # and will be confirmed through the batch that re-sends them.
        for batch_id in [b for b, (_, retry_at) in self._unconfirmed.items() if retry_at <= now]:
            del self._unconfirmed[batch_id]
        room = self._settings.max_unconfirmed_batches - len(self._unconfirmed)
        if room <= 0:
            return 0
        # Rows already in an unconfirmed batch have a future retry time, so `due` skips them.
        rows = outbox.due(now, room * self._settings.batch_size)
        sent = 0
        size = self._settings.batch_size
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            batch = Batch(
                batch_id=uuid.uuid4().hex,
                gateway=self.gateway,
                sent_at=now_utc(),
                readings=tuple(row.reading for row in chunk),
            )
            if not link.publish("readings", encode(batch)):
                break
            ids = [row.row_id for row in chunk]
            attempts = max(row.attempts for row in chunk)
            self.counters.resent += sum(1 for row in chunk if row.attempts)
            retry_at = now + retry_delay(attempts)
            outbox.mark_sent(ids, retry_at)
            self._unconfirmed[batch.batch_id] = (ids, retry_at)
            self.counters.batches_sent += 1
            sent += len(chunk)
        return sent

    def _publish_status(self, link: GatewayLink) -> None:
        status = GatewayStatus(
            gateway=self.gateway,
            state="online",
            time=now_utc(),
            queue_depth=self._depth,
            software="vitalstream-edge",
        )
        link.publish("status", encode(status), retain=True)
