"""Broker addresses as written in settings: ``mqtt://host:port`` or ``mqtts://host:port``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from vitals.errors import VitalsError


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the MQTT broker listens."""

    host: str
    port: int
    tls: bool = False

    @property
    def url(self) -> str:
        """The address back as a URL."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://host[:port]`` (default 1883) or ``mqtts://host[:port]`` (default 8883)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise VitalsError(
            f"broker URL {url!r} is not mqtt://host:port or mqtts://host:port "
            "(set VITALSTREAM_BROKER_URL)",
            kind="bad_setting",
        )
    tls = parts.scheme == "mqtts"
    return BrokerAddress(parts.hostname, parts.port or (8883 if tls else 1883), tls)
