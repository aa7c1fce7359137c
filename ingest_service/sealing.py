"""The ingest side of the SM4 payload layer: open what gateways sealed, seal what we answer.

:class:`PayloadOpener` is the one object a consumer of gateway topics needs (the ingest
service; the handoff service the same way). It wraps :mod:`vitals.sealed` with the key store
(``VITALSTREAM_SEALING_KEY_DIR``, default ``<data dir>/sm4-keys``, written by
``vitalstream pki sm4-key``) and the deployment's policy (``VITALSTREAM_SEALING_POLICY``):

``off``
    Nothing is opened or sealed; a payload that is sealed anyway is refused with
    ``sealed_invalid`` (its detail says sealing is off here), not left to fail as bad JSON.
``optional``
    Sealed payloads (first byte 0x01, which never starts JSON) are opened; clear ones pass
    unchanged. For moving a fleet to sealing one gateway at a time.
``required``
    Every non-empty payload must be sealed: a clear one is refused with ``sealed_required``.

A sealed payload that does not open (altered, truncated, unknown key, sealed for another
topic, or under another gateway's key) is refused with ``sealed_invalid``. Refused payloads are
dead-lettered as received (the sealed bytes); see :meth:`PayloadOpener.rejection`. A
zero-length payload (a cleared retained status) always passes: it carries nothing.

Keys are bound to gateways: the key id ``<gateway>.k<version>`` must name the gateway of the
topic, so a leaked key of one gateway cannot vouch for another's topic (the broker ACL already
keeps gateways to their own topics; this is the second lock). Keys are read when first needed
and again when a gateway uses a key id not seen yet (a rotation), so rotating needs no restart;
a key id that was looked for and is not on disk is looked for again at most once a second.

Answers (``BatchAck`` on ``.../ack``) are sealed with the key the gateway last sealed with,
so a gateway that seals gets sealed acks and one that does not (``optional``) gets clear ones.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

from ingest_service.storage import Delivery
from ingest_service.validate import RejectedMessage
from vitals import PayloadError, parse_topic
from vitals.sealed import (
    SEALED_INVALID,
    SealedKeyError,
    SealKeyStore,
    is_sealed,
    open_sealed,
    parse_gateway_key_id,
    parse_header,
    seal,
)

log = logging.getLogger("vitalstream.ingest.sealing")

SealingPolicy = Literal["off", "optional", "required"]
#: Dead-letter kind of a clear payload where the policy requires a sealed one.
SEALED_REQUIRED = "sealed_required"
#: The key store's folder under the data directory when no key directory is configured.
DEFAULT_KEY_DIR_NAME = "sm4-keys"
#: Least time between two reads of one gateway's keys from disk (unknown key id seen).
RELOAD_INTERVAL_S = 1.0


class SealingSettings(Protocol):
    """What :meth:`PayloadOpener.from_settings` reads (IngestSettings has all of it)."""

    @property
    def sealing_policy(self) -> SealingPolicy:
        """off | optional | required."""
        ...

    @property
    def sealing_key_dir(self) -> Path | None:
        """The key store; None = ``<data_dir>/sm4-keys``."""
        ...

    @property
    def data_dir(self) -> Path:
        """Where vitalstream keeps its files."""
        ...

    @property
    def topic_prefix(self) -> str:
        """First topic level."""
        ...


def key_dir_of(settings: SealingSettings) -> Path:
    """The SM4 key store directory the settings name."""
    return settings.sealing_key_dir or settings.data_dir / DEFAULT_KEY_DIR_NAME


@dataclass
class _GatewayKeys:
    keys: dict[str, bytes] = field(default_factory=dict)
    #: Key ids looked for on disk and not found, with when (monotonic seconds).
    missed: dict[str, float] = field(default_factory=dict)
    #: The key id the gateway sealed its latest message with; None: its latest was clear.
    reply_key_id: str | None = None


@dataclass
class SealingCounters:
    """What the opener did since start (for logs, metrics and tests)."""

    opened: int = 0
    passed_clear: int = 0
    refused: int = 0
    sealed_replies: int = 0


class PayloadOpener:
    """Opens sealed gateway payloads and seals the answers, per the deployment's policy.

    Thread-safe (one lock): paho's thread or the service loop may call it.
    """

    def __init__(self, policy: SealingPolicy, key_dir: Path, *, prefix: str) -> None:
        self.policy: SealingPolicy = policy
        self.store = SealKeyStore(key_dir)
        self._prefix = prefix
        self._gateways: dict[str, _GatewayKeys] = {}
        self._lock = threading.Lock()
        self.counters = SealingCounters()

    @classmethod
    def from_settings(cls, settings: SealingSettings) -> PayloadOpener:
        """The opener the settings describe (``VITALSTREAM_SEALING_*``)."""
        return cls(settings.sealing_policy, key_dir_of(settings), prefix=settings.topic_prefix)

    @property
    def enabled(self) -> bool:
        """False when the policy is ``off``."""
        return self.policy != "off"

    # -- receiving -------------------------------------------------------------------------
    def open(self, topic: str, payload: bytes) -> bytes:
        """The clear payload of a message received on ``topic``, or PayloadError.

        Raises ``PayloadError`` with kind ``sealed_invalid`` (does not open, or sealed where
        sealing is off) or ``sealed_required`` (clear where the policy requires sealing).
        """
        if not payload:
            return payload
        sealed = is_sealed(payload)
        if self.policy == "off":
            if sealed:
                self._refused()
                raise PayloadError(
                    "the payload is sealed (SM4) but sealing is off at this ingest: set "
                    "VITALSTREAM_SEALING_POLICY=optional or required and install the keys",
                    kind=SEALED_INVALID,
                )
            return payload
        gateway = self._gateway_of(topic)
        if not sealed:
            if self.policy == "required":
                self._refused()
                raise PayloadError(
                    f"a clear payload on {topic}: this deployment requires SM4-sealed payloads "
                    "(VITALSTREAM_SEALING_POLICY=required); enable seal_payloads on the gateway",
                    kind=SEALED_REQUIRED,
                )
            with self._lock:
                if gateway is not None:
                    self._state(gateway).reply_key_id = None
                self.counters.passed_clear += 1
            return payload
        if gateway is None:
            self._refused()
            raise PayloadError(
                f"a sealed payload on {topic}, not a gateway topic", kind=SEALED_INVALID
            )
        key_id = parse_header(payload).key_id  # PayloadError(sealed_invalid) when malformed
        owner = parse_gateway_key_id(key_id)
        if owner is None or owner[0] != gateway:
            self._refused()
            raise PayloadError(
                f"sealed under key {key_id!r}, which is not a key of gateway {gateway!r} whose "
                "topic it came on",
                kind=SEALED_INVALID,
            )
        keys = self._keys(gateway, key_id)
        try:
            clear = open_sealed(payload, keys, topic)
        except PayloadError:
            self._refused()
            raise
        with self._lock:
            self._state(gateway).reply_key_id = key_id
            self.counters.opened += 1
        return clear

    def rejection(
        self, topic: str, payload: bytes, received_at: datetime, error: PayloadError
    ) -> Delivery:
        """A refused message as a delivery the reading writer dead-letters (raw bytes kept)."""
        return Delivery(
            topic,
            payload,
            received_at,
            RejectedMessage(self._gateway_of(topic), error.kind, error.detail),
        )

    # -- answering -------------------------------------------------------------------------
    def seal_for(self, gateway_id: str, topic: str, payload: bytes) -> bytes:
        """``payload`` sealed for ``gateway_id`` on ``topic`` when that gateway seals.

        With the key the gateway last sealed with; when nothing was heard from it since start
        and the policy is ``required``, with its newest key in the store. Otherwise (policy
        ``off``, a gateway that sends clear payloads, no key at all) the payload unchanged.
        Never raises for a missing key: the gateway then gets a clear ack (logged).
        """
        if self.policy == "off":
            return payload
        with self._lock:
            state = self._gateways.get(gateway_id)
            key_id = state.reply_key_id if state is not None else None
            key = state.keys.get(key_id) if state is not None and key_id else None
        if key_id is None and self.policy == "required":
            try:
                key_id, key = self.store.current(gateway_id)
            except (SealedKeyError, ValueError) as error:
                log.warning(
                    "answering %s in clear: %s", gateway_id, getattr(error, "detail", error)
                )
                return payload
        if key_id is None or key is None:
            return payload
        sealed = seal(payload, key, key_id, topic)
        with self._lock:
            self.counters.sealed_replies += 1
        return sealed

    # -- internals -------------------------------------------------------------------------
    def _gateway_of(self, topic: str) -> str | None:
        try:
            return parse_topic(topic, self._prefix)[0]
        except PayloadError:
            return None

    def _state(self, gateway: str) -> _GatewayKeys:
        state = self._gateways.get(gateway)
        if state is None:
            state = self._gateways[gateway] = _GatewayKeys()
        return state

    def _refused(self) -> None:
        with self._lock:
            self.counters.refused += 1

    def _keys(self, gateway: str, key_id: str) -> dict[str, bytes]:
        """The gateway's keys, read again from disk when ``key_id`` is not among them."""
        with self._lock:
            state = self._state(gateway)
            now = time.monotonic()
            missed_at = state.missed.get(key_id)
            if key_id not in state.keys and (
                missed_at is None or now - missed_at >= RELOAD_INTERVAL_S
            ):
                try:
                    state.keys = self.store.keys(gateway)
                except SealedKeyError as error:
                    log.error("cannot read the SM4 keys of %s: %s", gateway, error.detail)
                    self.counters.refused += 1
                    raise PayloadError(
                        f"the ingest cannot read the keys of gateway {gateway!r} "
                        f"({error.kind}); see the ingest log",
                        kind=SEALED_INVALID,
                    ) from None
                if key_id in state.keys:
                    state.missed.pop(key_id, None)
                else:
                    state.missed[key_id] = now
                    if len(state.missed) > 64:  # a gateway sending junk ids: keep the newest
                        del state.missed[next(iter(state.missed))]
            return dict(state.keys)
