"""Broker addresses as written in settings: ``mqtt://host:port`` or ``mqtts://host:port``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from vitals.errors import VitalsError


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the MQTT broker listens, and the (optional) user name and password for it."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The address back as a URL (never with the password)."""
        user = f"{quote(self.username)}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt[s]://[user[:password]@]host[:port]`` (ports 1883 / 8883 by default)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise VitalsError(
            f"broker URL {url!r} is not mqtt://[user:password@]host[:port] or mqtts://... "
            "(set VITALSTREAM_BROKER_URL)",
            kind="bad_setting",
        )
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


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
