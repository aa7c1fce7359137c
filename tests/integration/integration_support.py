"""Small helpers shared by the integration tests (imported as a top-level module)."""

from __future__ import annotations

import os
import socket

#: Maintenance connection of the test server; the broker the tests publish through.
PG_URL = os.environ.get(
    "VITALSTREAM_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BROKER_URL = os.environ.get("VITALSTREAM_TEST_BROKER_URL", "mqtt://127.0.0.1:1883")


def free_port() -> int:
    """A loopback TCP port where nothing listens right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
