"""Settings are documented in one place: docs/configuration.md lists every one of them."""

from __future__ import annotations

from pathlib import Path

from vitalstream.commands.config import SETTINGS_CLASSES, settings_rows

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


def test_every_setting_of_every_service_is_in_the_configuration_doc() -> None:
    text = DOC.read_text()
    rows = settings_rows()
    missing = [row["env"] for row in rows if f"`{row['env']}`" not in text]
    assert rows and not missing, f"run `vitalstream config --markdown`; missing: {missing}"


def test_every_settings_class_is_found() -> None:
    used_by = ", ".join(row["used_by"] for row in settings_rows())
    assert all(class_name in used_by for _, class_name in SETTINGS_CLASSES)
