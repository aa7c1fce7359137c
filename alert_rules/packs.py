"""The shipped rule packs (``alert_rules/packs/*.yaml``): loading and validation.

``load_pack(name)`` reads a shipped pack; ``parse_pack(text)`` validates any pack text (a
clinic's own pack). Both raise ``PackError`` (a ``VitalsError``, kind ``invalid_pack``) with
the pydantic detail, so a typo in a threshold never becomes a silently missing rule.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml
from pydantic import ValidationError

from alert_rules.pack_schema import Pack
from vitals import VitalsError

#: Packs that make sense for everyone and run when no pack is selected: the foundation's
#: three rules (``spo2_low``, ``bp_crisis_systolic``, ``glucose_level2_hypo``).
DEFAULT_PACKS: tuple[str, ...] = ("core",)


class PackError(VitalsError):
    """A rule pack that does not exist or does not validate."""

    kind = "invalid_pack"


def parse_pack(text: str, *, origin: str = "<text>") -> Pack:
    """Validate one pack's YAML text."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PackError(f"{origin}: not YAML: {exc}") from None
    try:
        return Pack.model_validate(raw)
    except ValidationError as exc:
        raise PackError(f"{origin}: {exc}") from None


def pack_names() -> tuple[str, ...]:
    """Names of the shipped packs, sorted."""
    folder = resources.files("alert_rules") / "packs"
    return tuple(
        sorted(
            entry.name.removesuffix(".yaml")
            for entry in folder.iterdir()
            if entry.name.endswith(".yaml")
        )
    )


@cache
def load_pack(name: str) -> Pack:
    """A shipped pack by name, validated (cached: packs are immutable)."""
    if name not in pack_names():
        raise PackError(f"no rule pack {name!r}; shipped packs: {', '.join(pack_names())}")
    text = (resources.files("alert_rules") / "packs" / f"{name}.yaml").read_text("utf-8")
    pack = parse_pack(text, origin=f"{name}.yaml")
    if pack.pack != name:
        raise PackError(f"{name}.yaml declares pack {pack.pack!r}; the file name must match")
    return pack
