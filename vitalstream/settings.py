"""Settings of the command line's own work (demo data directory, defaults for services)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field

from vitals.settings import VitalstreamSettings


def _default_data_dir() -> Path:
    """XDG data dir for a user; /var/lib/vitalstream for root.

    As root, the embedded PostgreSQL runs as an unprivileged user that must be able to enter
    every folder above its data directory, which /root (mode 0700) does not allow.
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/vitalstream")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vitalstream"


class CliSettings(VitalstreamSettings):
    """Defaults the CLI passes to the services it starts (see docs/configuration.md)."""

    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/vitalstream",
        description="PostgreSQL URL; when nothing answers there, `demo` starts an embedded one.",
    )
    broker_url: str = Field(
        "mqtt://127.0.0.1:1883",
        description="MQTT broker URL; when nothing answers there, `demo` starts one.",
    )
    topic_prefix: str = Field("vs", description="First MQTT topic level.")
    embedded_broker: Literal["auto", "mosquitto", "amqtt"] = Field(
        "auto",
        description="Broker `demo` starts when none answers: mosquitto when installed, else "
        "the pure-Python amqtt.",
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where embedded services and demo outboxes keep their files.",
    )


def cli_settings(**options: object) -> CliSettings:
    """Settings with the command line's options on top; an option left at None is not set."""
    given = {key: value for key, value in options.items() if value is not None}
    return CliSettings(**given)  # type: ignore[arg-type]
