"""Settings of the HTTP API (``VITALSTREAM_*``; docs/api.md, docs/configuration.md).

The API is part of the ingest service's package because it reads the same database with the
same schema; its settings extend the shared convention (defaults < TOML < environment < CLI).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from vitals.settings import VitalstreamSettings, default_data_dir

#: Edge agents publish a retained status every 5 s (edge_agent.agent.status_interval_s).
DEFAULT_GATEWAY_CADENCE_S = 5.0


class ApiSettings(VitalstreamSettings):
    """Where the API reads from, how it signs tokens, and its operational limits."""

    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/vitalstream",
        description="PostgreSQL (optionally with TimescaleDB) conninfo or URI.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir, description="Where vitalstream keeps its files."
    )
    api_key_file: Path | None = Field(
        None,
        description="HS256 signing key of the API's bearer tokens (64 random bytes, mode 0600, "
        "generated on first use); default <data_dir>/api-token.key. Anyone who reads it can "
        "mint an admin token.",
    )
    api_token_ttl_s: int = Field(
        900, ge=1, description="Lifetime of a minted token (short on purpose: 15 min)."
    )
    api_token_max_ttl_s: int = Field(
        43_200, ge=1, description="Longest lifetime `vitalstream token --ttl` may ask for."
    )
    api_metrics_token: str | None = Field(
        None,
        description="When set, /metrics requires `Authorization: Bearer <this value>` "
        "(a static scrape secret, not a JWT). Unset: /metrics is open (aggregates only).",
    )
    api_migrate_on_start: bool = Field(
        True, description="Apply missing migrations when the API starts."
    )
    api_pool_min_size: int = Field(1, ge=0, description="Connections kept open.")
    api_pool_max_size: int = Field(8, ge=1, description="Most connections the API opens.")
    api_statement_timeout_ms: int = Field(
        15_000, ge=0, description="A query running longer is cancelled (0 = no limit)."
    )
    api_max_points: int = Field(
        2000, ge=10, description="resolution=auto keeps a range response under this many points."
    )
    gateway_cadence_s: float = Field(
        DEFAULT_GATEWAY_CADENCE_S,
        gt=0,
        description="Expected interval between a gateway's status messages (the edge default).",
    )
    gateway_silent_factor: float = Field(
        3.0,
        gt=0,
        description="A gateway is silent when its last status is older than this many "
        "cadences (overridable per request with ?silent_factor=).",
    )

    @property
    def key_file(self) -> Path:
        """The signing-key file in force."""
        return self.api_key_file or self.data_dir / "api-token.key"
