"""Secrets at rest: HMAC keys are encrypted with a key that lives in the home, not the catalog.

A stolen catalog alone therefore reveals no credential. Fernet (AES-128-CBC + HMAC) from
``cryptography`` does the sealing; the key file is created once with mode 0600.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    def derive(self, purpose: str) -> bytes:
        """A 32-byte sub-key for one purpose (e.g. sealing a kind of token), so that tokens the
        server issues are verifiable without storing them and no two uses share a key."""
        return hmac.new(self._key, b"mediagate-derive:" + purpose.encode(), "sha256").digest()

    @classmethod
    def from_file(cls, path: Path) -> SecretBox:
        return cls(path.read_bytes().strip())

    @staticmethod
    def create_key_file(path: Path) -> None:
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:  # wrong key file for this catalog
            raise RuntimeError("cannot decrypt a stored secret: wrong secret.key for this catalog") from exc


def generate_secret(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


def constant_time_equal(a: str | bytes, b: str | bytes) -> bool:
    a_b = a.encode() if isinstance(a, str) else a
    b_b = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_b, b_b)
