"""Small helpers shared by the integration tests (imported as a top-level module)."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

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


def make_data_dir() -> Path:
    """A fresh directory for servers. Not pytest's tmp_path: that lives under a 0700
    directory, which the unprivileged users the servers run as under root cannot enter."""
    path = Path(tempfile.mkdtemp(prefix="vs-services-"))
    path.chmod(0o755)
    return path
