"""The provider API key as a value that cannot leak by accident.

`ApiKey` hides its content from `repr`, `str`, f-strings, logging and pickling; code that really
needs the key (an HTTP header, the offline-QR hash) calls `reveal()` at the last moment.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

CREDENTIAL_NAME = "provider-api-key"


class CredentialError(Exception):
    """The API key file is missing, empty or readable by others."""


class ApiKey:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = value.strip()
        if not value:
            raise CredentialError("the provider API key is empty")
        if not value.isprintable() or any(ch.isspace() for ch in value):
            # It goes into an HTTP header: httpx would refuse it on every call, and its error
            # quotes the value. Say so once, at start, without the value.
            raise CredentialError(
                "the provider API key contains spaces, line breaks or control characters"
            )
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "ApiKey(***)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __reduce__(self) -> str:
        raise TypeError("ApiKey cannot be pickled")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def load_api_key(configured_path: Path | None) -> ApiKey:
    """Read the key from systemd's credential directory, else from a 0600 file named in config."""
    credentials_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials_dir:
        candidate = Path(credentials_dir) / CREDENTIAL_NAME
        if candidate.exists():
            return ApiKey(candidate.read_text(encoding="utf-8"))
    if configured_path is None:
        raise CredentialError(
            f"no API key: set provider.api_key_file in the config or pass the credential "
            f"'{CREDENTIAL_NAME}' with systemd LoadCredential="
        )
    check_private_file(configured_path)
    return ApiKey(configured_path.read_text(encoding="utf-8"))


def check_private_file(path: Path, what: str = "API key file") -> None:
    """Refuse a secret file that group or others can read: fix with `chmod 600 FILE`."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise CredentialError(f"{what} {path} does not exist") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialError(
            f"{what} {path} has mode {stat.S_IMODE(mode):o}; it must be 0600 "
            f"(run: chmod 600 {path})"
        )
