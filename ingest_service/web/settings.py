"""Settings of the web pages (``VITALSTREAM_WEB_*``; defaults < TOML < environment)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from vitals.settings import VitalstreamSettings


class WebSettings(VitalstreamSettings):
    """How the pages show times, when a device counts as silent, how dense charts get."""

    web_timezone: str = Field(
        "Asia/Shanghai",
        description="Time zone the pages show times in (the rules engine's day/night zone).",
    )
    web_silent_after_h: float = Field(
        24.0,
        gt=0,
        description="The doctor's panel marks a patient silent after this many hours "
        "without a reading (home devices measure once or twice a day).",
    )
    web_chart_points: int = Field(
        1500,
        ge=50,
        le=20_000,
        description="Most points per chart line; longer ranges use the 5-min or 1-h rollups.",
    )
    web_sse_interval_s: float = Field(
        5.0, gt=0, description="How often the panel's live stream looks for new alerts."
    )

    @field_validator("web_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The display time zone."""
        return ZoneInfo(self.web_timezone)
