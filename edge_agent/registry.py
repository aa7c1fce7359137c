"""The device registry: which patient (subject) a BLE device's readings belong to.

Why a registry: a BLE measurement carries no patient identity, only the device address and,
for devices shared by a family, a user index. Binding is therefore configuration, kept in a
TOML file the installer edits (``[[devices]]`` tables), and it is pure lookup here.

Shared devices: the Blood Pressure (BLS 1.1, 0x2A35 flags bit 2), Weight Scale (WSS 1.0,
0x2A9D flags bit 2) and Body Composition (BCS 1.0) measurements carry a User ID (0-254, 255 =
"unknown user", User Data Service UDS 1.0 3.13). A device with a ``users`` table binds each
user id to a subject; a measurement from an unlisted or unknown user is not guessed onto
anyone: :meth:`DeviceRegistry.subject_for` returns None and the shell keeps it out of the
outbox (and logs it), because a reading on the wrong patient is worse than a missing one.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Final, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from vitals import VitalsError
from vitals.models import IDENTIFIER_PATTERN

Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]

#: UDS 1.0 3.13 User Index: 0xFF means "unknown user".
UNKNOWN_USER: Final = 255


class RegistryError(VitalsError):
    """A device registry that cannot be loaded or is inconsistent."""

    kind = "bad_config"


class DeviceBinding(BaseModel):
    """One BLE device and whose readings it takes.

    ``address`` (a BlueZ MAC such as ``"A4:C1:38:00:11:22"``) or ``name`` (the advertised local
    name) identifies the device; the address wins when both are set. ``device`` is the stable
    device id put on readings (the idempotency key's first part), so it must not change when
    the battery is swapped. Either ``subject`` (one patient) or ``users`` (user id -> subject,
    shared devices) is required; both may be set, then ``subject`` is for readings without a
    user id field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: Identifier
    address: str | None = None
    name: str | None = None
    subject: Identifier | None = None
    users: dict[int, Identifier] = Field(default_factory=dict)
    timezone: str | None = None
    """IANA zone of the device's clock (GATT Date Time has no offset); default UTC, flagged."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.address is None and self.name is None:
            raise ValueError(f"device {self.device}: set address or name")
        if self.subject is None and not self.users:
            raise ValueError(f"device {self.device}: set subject or users")
        for user in self.users:
            if not 0 <= user < UNKNOWN_USER:
                raise ValueError(f"device {self.device}: user id {user} outside 0..254")
        return self

    def subject_for(self, user_id: int | None) -> str | None:
        """The subject of a measurement with this user id (None: cannot be bound safely)."""
        if not self.users:
            return self.subject  # a personal device: every user id is its one patient
        if user_id is None:
            return self.subject  # a reading type without a user id field on a shared device
        return self.users.get(user_id)  # unknown user (255) or unlisted: never guessed


class DeviceRegistry(BaseModel):
    """All devices bound at this gateway."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    devices: tuple[DeviceBinding, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> Self:
        ids = [binding.device for binding in self.devices]
        addresses = [b.address.upper() for b in self.devices if b.address]
        for what, values in (("device id", ids), ("address", addresses)):
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"duplicate {what}: {', '.join(duplicates)}")
        return self

    def find(self, address: str, name: str | None) -> DeviceBinding | None:
        """The binding of a discovered device: by address first, then by advertised name."""
        wanted = address.upper()
        for binding in self.devices:
            if binding.address and binding.address.upper() == wanted:
                return binding
        if name:
            for binding in self.devices:
                if binding.address is None and binding.name == name:
                    return binding
        return None

    @classmethod
    def from_bindings(cls, bindings: Sequence[DeviceBinding]) -> DeviceRegistry:
        """A registry of these bindings (validated)."""
        return cls(devices=tuple(bindings))


def load_registry(path: Path) -> DeviceRegistry:
    """Read a registry TOML file (``[[devices]]`` tables); errors name the file and field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RegistryError(f"cannot read device registry {path}: {exc}") from None
    try:
        return DeviceRegistry.model_validate(data)
    except ValidationError as exc:
        raise RegistryError(f"device registry {path}: {exc}") from None
