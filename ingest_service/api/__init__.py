"""The HTTP API (``vitalstream serve``): FastAPI over the ingest database (docs/api.md).

Package-internal: the CLI builds the app with :func:`create_app`; tokens are minted with
:func:`mint_token` (``vitalstream token``) and checked by the app with :func:`decode_token`.
"""

from __future__ import annotations

from ingest_service.api.app import API_PREFIX, create_app
from ingest_service.api.settings import ApiSettings
from ingest_service.api.tokens import (
    ROLES,
    KeyFileError,
    Principal,
    Role,
    TokenError,
    decode_token,
    load_signing_key,
    mint_token,
)

__all__ = [
    "API_PREFIX",
    "ROLES",
    "ApiSettings",
    "KeyFileError",
    "Principal",
    "Role",
    "TokenError",
    "create_app",
    "decode_token",
    "load_signing_key",
    "mint_token",
]
