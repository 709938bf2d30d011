"""Secrets at rest: HMAC keys are encrypted with a key that lives outside the catalog.

A stolen catalog alone therefore reveals no credential. Fernet (AES-128-CBC + HMAC) from
``cryptography`` does the sealing. The sealing key comes from ``MEDIAGATE_SECRET_KEY`` (every node
of a cluster sets the same one), else from the home's ``secret.key`` file (created once, mode 0600).

Rotation: either source may hold several keys, separated by commas or whitespace. The first seals
every new secret and derives every new token key; all of them open what is stored (MultiFernet),
so secrets sealed with an older key keep working until ``mediagate secrets rotate`` re-seals them
with the first key, after which the old key can be dropped.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

_SEPARATORS = re.compile(r"[\s,]+")


class WrongSecretKey(RuntimeError):
    """A stored secret does not open with any configured sealing key: this node's key is not the
    one the catalog's secrets were sealed with."""


class BadSecretKey(ValueError):
    """A configured sealing key is not a Fernet key (32 url-safe base64-encoded bytes)."""


OPENED_CACHE = 4096
"""Opened secrets a box remembers (the credentials in use; cleared when full)."""


class SecretBox:
    def __init__(self, key: bytes | Sequence[bytes]) -> None:
        keys = [key] if isinstance(key, bytes) else list(key)
        if not keys:
            raise BadSecretKey("no sealing key given")
        fernets = []
        for n, k in enumerate(keys, 1):
            try:
                fernets.append(Fernet(k))
            except (ValueError, TypeError):
                raise BadSecretKey(
                    f"sealing key #{n} is not a Fernet key (32 url-safe base64 bytes, "
                    "as `mediagate secrets new-key` prints)"
                ) from None
        self._keys = keys
        self._fernet = MultiFernet(fernets)
        self._opened: dict[str, str] = {}
        """Sealed text -> plaintext, for :meth:`open`: every authorised request opens its
        credential's secret, and a Fernet decrypt (HMAC check + AES) cost more than the rest of
        the signature check. A sealed text always opens to the same plaintext under the same
        keys, and the keys of a box never change, so remembering it changes nothing else."""

    @property
    def key_count(self) -> int:
        return len(self._keys)

    def derive(self, purpose: str) -> bytes:
        """A 32-byte sub-key for one purpose (e.g. sealing a kind of token), so that tokens the
        server issues are verifiable without storing them and no two uses share a key. Made
        from the current (first) sealing key: use it to issue."""
        return _derive(self._keys[0], purpose)

    def derived(self, purpose: str) -> list[bytes]:
        """The sub-keys for ``purpose`` of every configured key, current first: use them to verify,
        so that tokens issued before a rotation stay valid until they expire."""
        return [_derive(k, purpose) for k in self._keys]

    @classmethod
    def from_text(cls, text: str) -> SecretBox:
        """Keys separated by commas or whitespace, the current one first."""
        return cls([k.encode() for k in _SEPARATORS.split(text.strip()) if k])

    @classmethod
    def from_file(cls, path: Path) -> SecretBox:
        return cls.from_text(path.read_text())

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
        found = self._opened.get(sealed)
        if found is not None:
            return found
        try:
            plaintext = self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise WrongSecretKey(
                "cannot open a stored secret: the sealing key (MEDIAGATE_SECRET_KEY or the home's "
                "secret.key) is not the one this catalog's secrets were sealed with"
            ) from exc
        if len(self._opened) >= OPENED_CACHE:
            self._opened.clear()
        self._opened[sealed] = plaintext
        return plaintext

    def rotate(self, sealed: str) -> str:
        """``sealed`` re-sealed with the current key (the same secret; WrongSecretKey if no
        configured key opens it)."""
        try:
            return self._fernet.rotate(sealed.encode()).decode()
        except InvalidToken as exc:
            raise WrongSecretKey("cannot open a stored secret with any configured sealing key") from exc

    def is_current(self, sealed: str) -> bool:
        """Whether ``sealed`` opens with the current key (rotating it would change nothing)."""
        try:
            Fernet(self._keys[0]).decrypt(sealed.encode())
        except InvalidToken:
            return False
        return True


def _derive(key: bytes, purpose: str) -> bytes:
    return hmac.new(key, b"mediagate-derive:" + purpose.encode(), "sha256").digest()


def new_key() -> str:
    """A fresh sealing key, as ``MEDIAGATE_SECRET_KEY`` takes it."""
    return Fernet.generate_key().decode()


def generate_secret(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


def constant_time_equal(a: str | bytes, b: str | bytes) -> bool:
    a_b = a.encode() if isinstance(a, str) else a
    b_b = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_b, b_b)
