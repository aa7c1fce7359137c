"""Broker addresses as written in settings: ``mqtt://host:port`` or ``mqtts://host:port``."""

from __future__ import annotations

from collections.abc import Sequence
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


def forget_session(broker: BrokerAddress, client_id: str, *, retained: Sequence[str] = ()) -> None:
    """Delete the broker's session of ``client_id`` and clear the ``retained`` topics.

    Connecting with CleanSession=1 discards a stored session (MQTT 3.1.1 section 3.1.2.4); a
    zero-length retained publish deletes a retained message (section 3.3.1.3). Demos and tests
    call this when they finish so that one-off client ids and gateways do not pile up on the
    broker. Production workers never do: their session keeps messages during a restart.
    """
    import paho.mqtt.client as mqtt  # noqa: PLC0415 - keep the contract package light
    from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=True,
        protocol=mqtt.MQTTv311,
    )
    try:
        client.connect(broker.host, broker.port, keepalive=10)
    except OSError:
        return  # nothing answers: nothing to clean
    client.loop_start()
    try:
        for topic in retained:
            client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()
