"""Scope names of client-credentials tokens (ingest_service.api.scopes)."""

from __future__ import annotations

import pytest

from ingest_service.api.scopes import LEGACY_SCOPES, SCOPES, UnknownScopeError, canonical


def test_scope_names_are_resource_and_action() -> None:
    for scope in SCOPES:
        resource, action = scope.split(":")
        assert resource and action in {"read", "write"}


def test_canonical_sorts_deduplicates_and_translates_old_names() -> None:
    assert canonical(["alerts:write", "readings", "readings:read"]) == (
        "alerts:write",
        "readings:read",
    )
    assert all(canonical([old]) == (new,) for old, new in LEGACY_SCOPES.items())
    assert canonical([]) == ()


def test_an_unknown_scope_is_refused() -> None:
    with pytest.raises(UnknownScopeError):
        canonical(["readings:delete"])
