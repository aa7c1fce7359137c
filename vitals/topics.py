"""MQTT topic names (ARCHITECTURE.md, "Topics").

``{prefix}/v1/gw/{gateway}/{kind}``; ``prefix`` is ``vs`` in production and a unique value per
test so that tests sharing one broker never see each other's messages.
"""

from __future__ import annotations

from typing import Literal

from vitals.errors import PayloadError
from vitals.models import is_identifier

DEFAULT_PREFIX = "vs"
TOPIC_VERSION = "v1"

TopicKind = Literal["readings", "status", "events", "waveform", "config", "ack"]
_KINDS: frozenset[str] = frozenset(("readings", "status", "events", "waveform", "config", "ack"))


def gateway_topic(gateway: str, kind: TopicKind, prefix: str = DEFAULT_PREFIX) -> str:
    """The topic a gateway publishes ``kind`` on (or, for config/ack, receives it on)."""
    if not is_identifier(gateway):
        raise ValueError(f"gateway id {gateway!r} may not contain '/', '+', '#' or spaces")
    return f"{prefix}/{TOPIC_VERSION}/gw/{gateway}/{kind}"


def subscription(kind: TopicKind, prefix: str = DEFAULT_PREFIX) -> str:
    """The wildcard subscription for ``kind`` from every gateway."""
    return f"{prefix}/{TOPIC_VERSION}/gw/+/{kind}"


def parse_topic(topic: str, prefix: str = DEFAULT_PREFIX) -> tuple[str, str]:
    """Split a gateway topic into (gateway, kind) or raise ``PayloadError``."""
    parts = topic.split("/")
    if (
        len(parts) != 5
        or parts[0] != prefix
        or parts[1] != TOPIC_VERSION
        or parts[2] != "gw"
        or parts[4] not in _KINDS
        or not is_identifier(parts[3])
    ):
        raise PayloadError(
            f"topic {topic!r} is not {prefix}/{TOPIC_VERSION}/gw/<id>/<kind>", kind="bad_topic"
        )
    return parts[3], parts[4]
