"""Typed errors of the contract.

Every rejection carries a machine-readable ``kind`` (used for the dead-letter reason and the
CLI's ``{"error": {"kind", "detail"}}`` exit-3 object) and a human ``detail`` that says what
was wrong and, where possible, what to do.
"""

from __future__ import annotations


class VitalsError(Exception):
    """Base class of every typed rejection in vitalstream."""

    kind: str = "invalid"

    def __init__(self, detail: str, *, kind: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if kind is not None:
            self.kind = kind

    def as_dict(self) -> dict[str, str]:
        """The contract's error object: ``{"kind": ..., "detail": ...}``."""
        return {"kind": self.kind, "detail": self.detail}


class UnknownMetricError(VitalsError):
    """A metric name that is not in the catalogue."""

    kind = "unknown_metric"


class PayloadError(VitalsError):
    """An MQTT payload that cannot be decoded into the contract's models."""

    kind = "malformed"


class ImplausibleValueError(VitalsError):
    """A value outside the catalogue's plausible range for its metric (a device fault)."""

    kind = "implausible"
