"""Settings of the command line's own work (demo data directory, defaults for services)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from vitals.settings import VitalstreamSettings, default_data_dir


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
        default_factory=default_data_dir,
        description="Where embedded services and demo outboxes keep their files.",
    )


def cli_settings(**options: object) -> CliSettings:
    """Settings with the command line's options on top; an option left at None is not set."""
    given = {key: value for key, value in options.items() if value is not None}
    return CliSettings(**given)  # type: ignore[arg-type]
