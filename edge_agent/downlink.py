"""The config down-link: a retained :class:`vitals.GatewayConfig` on ``vs/v1/gw/{id}/config``.

The platform publishes one retained config per gateway (``vitalstream edge push-config``).
The agent validates it as a whole (the contract model, the gateway id, a version newer than
the one in force, thresholds that compile into a rule set), persists it beside the outbox
(``<outbox>.config.json``, written atomically) and only then switches to it, all in the
agent's thread: whole or nothing. It acknowledges with ``config_version`` on its retained
status; a refused config is reported as ``config_error`` there (and logged), and the old one
stays in force. After a restart the persisted config is in force before the broker answers.
"""

from __future__ import annotations

import json
import logging
import os
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vitals import GatewayConfig, PayloadError, VitalsError, decode, encode

log = logging.getLogger("vitalstream.edge.downlink")


class ConfigRefusedError(VitalsError):
    """A down-link config the gateway will not apply (the reason goes on its status)."""

    kind = "config_refused"


def saved_config_path(outbox: Path) -> Path:
    """Where the config in force is kept: beside the outbox, on the same persistent disk."""
    return outbox.with_name(outbox.name + ".config.json")


def parse_downlink(payload: bytes, gateway: str) -> GatewayConfig:
    """Validate a received payload for ``gateway`` (pure); raises :class:`ConfigRefusedError`."""
    try:
        config = decode(payload, GatewayConfig)
    except PayloadError as exc:
        raise ConfigRefusedError(f"not a valid gateway config: {exc.detail}") from None
    if config.gateway != gateway:
        raise ConfigRefusedError(f"config version {config.version} is for gateway {config.gateway}")
    return config


def check_version(config: GatewayConfig, current: GatewayConfig | None) -> bool:
    """True when ``config`` should be applied; False when it is the one in force (a retained
    copy seen again). An older version is refused: the platform never goes backwards."""
    if current is None or config.version > current.version:
        return True
    if config.version == current.version:
        if config != current:
            raise ConfigRefusedError(
                f"config version {config.version} differs from the one in force; "
                "publish a new version"
            )
        return False
    raise ConfigRefusedError(
        f"config version {config.version} is older than the one in force ({current.version})"
    )


def save_config(path: Path, config: GatewayConfig) -> None:
    """Write atomically: a temporary file, fsync, rename, fsync of the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as out:
        out.write(encode(config))
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def load_saved_config(path: Path, gateway: str) -> GatewayConfig | None:
    """The persisted config, or None when there is none or it cannot be used (logged)."""
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.error("cannot read the saved gateway config %s: %s", path, exc)
        return None
    try:
        return parse_downlink(payload, gateway)
    except ConfigRefusedError as exc:
        log.error("ignoring the saved gateway config %s: %s", path, exc.detail)
        return None


def read_config_file(path: Path, gateway: str, now: datetime) -> GatewayConfig:
    """A config written by a person (TOML or JSON) for ``push-config``.

    ``gateway`` and ``issued_at`` are filled in when the file leaves them out; a file naming
    another gateway is refused.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigRefusedError(f"cannot read {path}: {exc}", kind="not_found") from None
    try:
        data: dict[str, Any] = (
            json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        )
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigRefusedError(f"{path}: not valid {path.suffix[1:] or 'TOML'}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigRefusedError(f"{path}: expected a table/object at the top")
    if data.setdefault("gateway", gateway) != gateway:
        raise ConfigRefusedError(f"{path} is for gateway {data['gateway']}, not {gateway}")
    data.setdefault("issued_at", now.isoformat())
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigRefusedError(f"{path}: {exc}") from None
