"""How every vitalstream service reads its settings (one convention, documented in
docs/configuration.md): defaults < TOML file < ``VITALSTREAM_*`` environment variables <
command-line options.

The TOML file is ``$VITALSTREAM_CONFIG`` when set, else ``./vitalstream.toml`` when present.
Keys are flat and shared by the services (``database_url``, ``broker_url``, ...); a service
ignores keys it does not use.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = Path("vitalstream.toml")


def config_file() -> Path | None:
    """The TOML settings file in force, if any."""
    named = os.environ.get("VITALSTREAM_CONFIG")
    if named:
        return Path(named)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


class VitalstreamSettings(BaseSettings):
    """Base class of each service's settings."""

    model_config = SettingsConfigDict(env_prefix="VITALSTREAM_", extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Precedence: init (CLI options) > environment > TOML file > defaults."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def default_data_dir() -> Path:
    """Where vitalstream keeps its files unless ``VITALSTREAM_DATA_DIR`` says otherwise.

    ``/var/lib/vitalstream`` for root: as root the embedded PostgreSQL runs as an unprivileged
    user that must be able to enter every folder above its data directory, which /root (mode
    0700) does not allow. Anyone else: ``$XDG_DATA_HOME/vitalstream``.
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/vitalstream")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vitalstream"
