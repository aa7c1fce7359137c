"""``vitalstream config``: every setting of every service, in one place (docs/configuration.md)."""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from vitals.settings import VitalstreamSettings, config_file
from vitalstream.output import emit_json

#: (module, class) of each service's settings; one row per field in the table.
SETTINGS_CLASSES: tuple[tuple[str, str], ...] = (
    ("vitalstream.settings", "CliSettings"),
    ("ingest_service.settings", "IngestSettings"),
    ("ingest_service.api.settings", "ApiSettings"),
    ("ingest_service.web.settings", "WebSettings"),
    ("ingest_service.handoff", "HandoffSettings"),
    ("ingest_service.identity", "EnrolmentSettings"),
    ("ingest_service.health_card", "HealthCardSettings"),
    ("vitalstream.commands.pki", "PkiSettings"),
)


def settings_rows() -> list[dict[str, Any]]:
    """One row per setting: env var, default, description, the services that read it."""
    rows: dict[str, dict[str, Any]] = {}
    for module_name, class_name in SETTINGS_CLASSES:
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            continue  # a part not installed in this build
        if not (isinstance(cls, type) and issubclass(cls, VitalstreamSettings)):
            continue
        for name, info in cls.model_fields.items():
            env = f"VITALSTREAM_{name.upper()}"
            if env in rows:
                rows[env]["used_by"] += f", {class_name}"
                continue
            rows[env] = {
                "env": env,
                "default": _default(info),
                "used_by": class_name,
                "description": info.description or "",
            }
    return list(rows.values())


def _default(info: FieldInfo) -> str:
    if info.default is not PydanticUndefined:
        return repr(info.default) if info.default is not None else "—"
    if info.default_factory is not None:
        return "(computed)"
    return "(required)"


def config_command(
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    markdown: Annotated[
        bool,
        typer.Option("--markdown", help="A Markdown table (how docs/configuration.md is made)."),
    ] = False,
) -> None:
    """List every setting (``VITALSTREAM_*`` variables or keys of the TOML file).

    Example: ``vitalstream config`` — and ``vitalstream config --markdown`` regenerates the
    table in docs/configuration.md.
    """
    rows = settings_rows()
    if json_output:
        emit_json({"config_file": str(config_file()) if config_file() else None, "settings": rows})
        return
    if markdown:
        typer.echo("| variable | default | used by | meaning |")
        typer.echo("|---|---|---|---|")
        for row in rows:
            typer.echo(
                f"| `{row['env']}` | `{row['default']}` | {row['used_by']} | "
                f"{row['description'].replace('|', '/')} |"
            )
        return
    for row in rows:
        typer.echo(f"{row['env']:<40} {row['default']:<30} {row['used_by']}")
