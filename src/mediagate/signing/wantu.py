"""Wantu's two tokens, computed (parsing and verifying a request's token, which raises the
dialect's errors, is in ``mediagate.protocols.wantu.signing``).

Upload token (``Authorization: UPLOAD_AK_TOP <token>``)::

    encodedPolicy = urlsafe_b64(policy_json)
    sign          = hex(hmac_sha1(key=SK, msg=encodedPolicy))
    token         = urlsafe_b64(AK + ":" + encodedPolicy + ":" + sign)

Manage token (``Authorization: ACL_TOP <token>`` + ``Date``)::

    sign  = hex(hmac_sha1(key=SK, msg=<string to sign>))
    token = urlsafe_b64(AK + ":" + sign)

URL-safe base64 is decoded with or without ``=`` padding; we always encode without it, like the
seed's examples.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any

_B64URL = re.compile(r"^[A-Za-z0-9_\-]*={0,2}$")


def b64encode(data: bytes | str) -> str:
    """URL-safe base64 without padding (the seed's form)."""
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def b64decode(text: str) -> bytes:
    """URL-safe base64, padded or not (standard ``+/`` tolerated); ValueError when it is not."""
    text = text.strip().replace("+", "-").replace("/", "_")
    if not _B64URL.match(text) or len(text.rstrip("=")) % 4 == 1:
        raise ValueError("not URL-safe base64")
    stripped = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not URL-safe base64") from exc


def hmac_sha1_hex(secret: str, message: str | bytes) -> str:
    data = message.encode() if isinstance(message, str) else message
    return hmac.new(secret.encode(), data, hashlib.sha1).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode(), b.encode())


def encode_policy(policy: dict[str, Any]) -> str:
    return b64encode(json.dumps(policy, separators=(",", ":"), ensure_ascii=False))


def upload_token(access_key: str, secret: str, policy: dict[str, Any] | str) -> str:
    """The bare token (without the ``UPLOAD_AK_TOP`` prefix) for a policy dict or encoded policy."""
    encoded = policy if isinstance(policy, str) else encode_policy(policy)
    return b64encode(f"{access_key}:{encoded}:{hmac_sha1_hex(secret, encoded)}")


def manage_token(access_key: str, secret: str, string_to_sign: str) -> str:
    return b64encode(f"{access_key}:{hmac_sha1_hex(secret, string_to_sign)}")
