"""A tiny runner for the pure-Python ``amqtt`` broker: the fallback when neither an MQTT broker
answers nor the ``mosquitto`` binary is installed.

It runs as its own process (``python -m vitalstream.embedded_broker --port N``) rather than
inside the demo's event loop, so the demo can watch it, kill it and restart it exactly like a
real broker, and so a broker crash cannot take the demo down with it.

Why a custom auth plugin: amqtt's ``AnonymousAuthPlugin`` marks every session it admits as
*anonymous*, and amqtt (0.12) neither queues QoS 1/2 messages for disconnected anonymous
sessions nor keeps their subscriptions (``Broker._session_monitor`` drops them). MQTT 3.1.1
§3.1.2.4 ties session state to the client id and the clean-session flag, not to credentials,
and Mosquitto with ``allow_anonymous true`` behaves that way. ``OpenAuthPlugin`` admits every
client without marking it anonymous, so persistent sessions work as they do on Mosquitto.

Limits (see docs/embedded-services.md): MQTT 3.1.1 only (no MQTT 5 features), sessions live in
memory only (amqtt's SQLite persistence plugin needs SQLAlchemy, which we do not depend on), so
a restart forgets sessions, queued messages and retained messages; no TLS, no ACLs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from dataclasses import dataclass
from typing import Any

from amqtt.broker import Broker
from amqtt.plugins.base import BaseAuthPlugin

_log = logging.getLogger("vitalstream.embedded_broker")


class OpenAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt ships no type hints
    """Admit every client and keep its session like any other (see the module docstring)."""

    @dataclass
    class Config:
        """No options: the embedded broker listens on 127.0.0.1 only."""

    async def authenticate(self, *, session: Any) -> bool:
        """Accept the CONNECT; the broker is bound to the loopback interface."""
        del session
        return True


def broker_config(host: str, port: int) -> dict[str, Any]:
    """The amqtt configuration: one TCP listener, open auth, and ``$SYS`` topics so that
    ``vitalstream.services`` can read ``$SYS/broker/version`` like it does on Mosquitto."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            f"{__name__}.OpenAuthPlugin": {},
            "amqtt.plugins.sys.broker.BrokerSysPlugin": {"sys_interval": 20},
        },
    }


async def serve(host: str, port: int) -> None:
    """Run the broker until SIGTERM or SIGINT, then shut it down cleanly."""
    broker = Broker(broker_config(host, port))
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    _log.info("amqtt broker listening on %s:%d", host, port)
    await stop.wait()
    await broker.shutdown()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point used by ``vitalstream.services``."""
    parser = argparse.ArgumentParser(description="Run the embedded amqtt MQTT broker.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("vitalstream.embedded_broker").setLevel(logging.INFO)
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
