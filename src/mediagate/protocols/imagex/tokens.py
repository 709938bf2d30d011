"""Tokens the ImageX dialect hands out, all verifiable without a database lookup.

* :func:`seal` / :func:`unseal`: ``<base64url(json)>.<base64url(HMAC-SHA256)>`` under a key the
  server derives from its secret box (one key per purpose: upload ``Auth``, ``SessionKey``, web
  ``sessionid``). The payload is not secret (ids and expiries), only unforgeable.
* STS2 (:func:`mint_sts2` / :func:`open_sts2`): the volcengine SDK's own temporary-credential format
  (``Service.sign_sts2``, used by ``ImageXService.get_upload_auth``): ``"STS2" + base64(json)`` of
  ``LTAccessKeyId`` (the long-term key that vouches), ``AccessKeyId`` (``AKTP…``), ``ExpiredTime``,
  ``SignedSecretAccessKey`` (the temporary secret, AES-128-CBC with key = iv = md5(long-term
  secret), zero padded, base64), ``PolicyString`` and ``Signature`` = hex HMAC-SHA256 under the
  same md5 key over ``LT|AK|expiry|signed secret|policy``. So credentials a customer's backend
  mints offline with the SDK work here, and ours work with any client; rotating (revoking) the
  long-term key refuses every token it vouched for.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mediagate.core import jsonin

ACTION_APPLY = "ImageX:ApplyImageUpload"
ACTION_COMMIT = "ImageX:CommitImageUpload"
SERVICE_TRN = "trn:ImageX:*:*:ServiceId/"
STOREKEY_TRN = "trn:ImageX:*:*:StoreKeys/"
SESSION_ACTION = "mediagate:Session"
"""Policy tag naming the web sessionid that minted the credentials (so revoking it revokes them)."""

MAX_TOKEN_LENGTH = 8192


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(key: bytes, payload: dict[str, Any]) -> str:
    body = _b64e(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = _b64e(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{body}.{mac}"


def unseal(key: bytes | Sequence[bytes], token: str) -> dict[str, Any] | None:
    """The payload of a token this server sealed with ``key`` (or any of several: the derived keys
    of every configured sealing key, so a key rotation leaves issued tokens valid); None for
    anything else."""
    if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        return None
    body, mac = token.split(".")
    keys = [key] if isinstance(key, bytes) else key
    if not any(
        hmac.compare_digest(_b64e(hmac.new(k, body.encode(), hashlib.sha256).digest()).encode(), mac.encode())
        for k in keys
    ):
        return None
    try:
        payload = jsonin.loads(_b64d(body))
    except (ValueError, binascii.Error):
        return None
    return payload if isinstance(payload, dict) else None


# -- STS2 -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What a temporary credential may do, read from its policy (empty policy: everything)."""

    actions: frozenset[str] | None = None
    service_ids: frozenset[str] | None = None
    key_patterns: tuple[str, ...] = ()
    overwrite: bool = False
    upload_policy: dict[str, Any] = field(default_factory=dict)
    session_id: str | None = None

    def allows_action(self, action: str) -> bool:
        return self.actions is None or f"ImageX:{action}" in self.actions or "ImageX:*" in self.actions

    def allows_service(self, service_id: str) -> bool:
        return self.service_ids is None or "*" in self.service_ids or service_id in self.service_ids

    def allows_key(self, key: str) -> bool:
        patterns = [p for p in self.key_patterns if p]
        return not patterns or any(fnmatch.fnmatchcase(key, p) for p in patterns)

    def as_policy(self) -> dict[str, Any]:
        """The SDK-shaped policy document for this scope."""
        actions = sorted(self.actions or {ACTION_APPLY, ACTION_COMMIT})
        services = sorted(self.service_ids or {"*"})
        statements: list[dict[str, Any]] = [
            {
                "Effect": "Allow",
                "Action": actions,
                "Resource": [SERVICE_TRN + s for s in services]
                + [STOREKEY_TRN + p for p in (self.key_patterns or ("",))],
            }
        ]
        if self.overwrite:
            statements.append({"Effect": "Allow", "Action": ["UploadOverwrite"], "Resource": ["true"]})
        if self.upload_policy:
            statements.append(
                {"Effect": "Allow", "Action": ["UploadPolicy"], "Resource": [json.dumps(self.upload_policy)]}
            )
        if self.session_id:
            statements.append({"Effect": "Allow", "Action": [SESSION_ACTION], "Resource": [self.session_id]})
        return {"Statement": statements}


def scope_from_policy(policy_string: str) -> Scope:
    """Read the SDK's inline policy. Deny statements and unknown tags are ignored; an Allow list
    of actions/resources narrows what the credentials may do."""
    if not policy_string:
        return Scope()
    try:
        doc = jsonin.loads(policy_string)
    except ValueError as exc:
        raise ValueError("the session token's policy is not JSON") from exc
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    if not isinstance(statements, list):
        raise ValueError("the session token's policy has no Statement list")
    actions: set[str] = set()
    services: set[str] = set()
    patterns: list[str] = []
    overwrite = False
    upload_policy: dict[str, Any] = {}
    session_id = None
    for st in statements:
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        acts = [a for a in st.get("Action") or [] if isinstance(a, str)]
        res = [r for r in st.get("Resource") or [] if isinstance(r, str)]
        if acts == ["UploadOverwrite"]:
            overwrite = any(r.lower() == "true" for r in res)
        elif acts == ["UploadPolicy"]:
            for r in res:
                try:
                    loaded = jsonin.loads(r)
                except ValueError:
                    continue
                if isinstance(loaded, dict):
                    upload_policy.update(loaded)
        elif acts == [SESSION_ACTION]:
            session_id = res[0] if res else None
        elif any(a.startswith("ImageX:") for a in acts):
            actions.update(acts)
            for r in res:
                if r.startswith(SERVICE_TRN):
                    services.add(r[len(SERVICE_TRN) :])
                elif r.startswith(STOREKEY_TRN):
                    patterns.append(r[len(STOREKEY_TRN) :])
    return Scope(
        actions=frozenset(actions),
        service_ids=frozenset(services) if services else None,
        key_patterns=tuple(patterns),
        overwrite=overwrite,
        upload_policy=upload_policy,
        session_id=session_id,
    )


@dataclass(frozen=True)
class TemporaryCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expires_at: int
    current_time: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "session_token": self.session_token,
            "expired_time": rfc3339(self.expires_at),
            "current_time": rfc3339(self.current_time),
        }


@dataclass(frozen=True)
class InnerToken:
    lt_access_key_id: str
    access_key_id: str
    expired_time: int
    signed_secret_access_key: str
    policy_string: str
    signature: str

    def sign_string(self) -> str:
        return (
            f"{self.lt_access_key_id}|{self.access_key_id}|{self.expired_time}|"
            f"{self.signed_secret_access_key}|{self.policy_string}"
        )


def rfc3339(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cipher(lt_secret: str) -> Cipher[modes.CBC]:
    key = hashlib.md5(lt_secret.encode()).digest()
    return Cipher(algorithms.AES(key), modes.CBC(key))


def _policy_string(policy: dict[str, Any] | None) -> str:
    return "" if policy is None else json.dumps(policy, sort_keys=True).replace(" ", "")


def mint_sts2(
    lt_access_key_id: str, lt_secret: str, *, ttl_seconds: int, policy: dict[str, Any] | None = None
) -> TemporaryCredentials:
    now = int(time.time())
    expires = now + max(60, ttl_seconds)
    access_key_id = "AKTP" + base64.b64encode(uuid.uuid4().hex.encode()).decode()
    secret = secrets.token_urlsafe(30)
    padded = secret.encode() + b"\0" * (16 - len(secret.encode()) % 16)
    enc = _cipher(lt_secret).encryptor()
    signed_secret = base64.b64encode(enc.update(padded) + enc.finalize()).decode()
    policy_string = _policy_string(policy)
    unsigned = InnerToken(lt_access_key_id, access_key_id, expires, signed_secret, policy_string, "")
    key = hashlib.md5(lt_secret.encode()).digest()
    signature = hmac.new(key, unsigned.sign_string().encode(), hashlib.sha256).hexdigest()
    inner = {
        "LTAccessKeyId": lt_access_key_id,
        "AccessKeyId": access_key_id,
        "SignedSecretAccessKey": signed_secret,
        "ExpiredTime": expires,
        "PolicyString": policy_string,
        "Signature": signature,
    }
    token = "STS2" + base64.b64encode(json.dumps(inner, sort_keys=True).replace(" ", "").encode()).decode()
    return TemporaryCredentials(access_key_id, secret, token, expires, now)


def parse_sts2(token: str) -> InnerToken | None:
    """The structure of an STS2 session token (nothing verified yet); None if it is not one."""
    if not token.startswith("STS2") or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        doc = jsonin.loads(base64.b64decode(token[4:], validate=True))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(doc, dict):
        return None
    fields = ("LTAccessKeyId", "AccessKeyId", "SignedSecretAccessKey", "PolicyString", "Signature")
    if not all(isinstance(doc.get(f), str) for f in fields) or not isinstance(doc.get("ExpiredTime"), int):
        return None
    return InnerToken(
        lt_access_key_id=doc["LTAccessKeyId"],
        access_key_id=doc["AccessKeyId"],
        expired_time=doc["ExpiredTime"],
        signed_secret_access_key=doc["SignedSecretAccessKey"],
        policy_string=doc["PolicyString"],
        signature=doc["Signature"],
    )


def open_sts2(inner: InnerToken, lt_secret: str) -> str | None:
    """The temporary secret, if the token was really minted with this long-term secret."""
    key = hashlib.md5(lt_secret.encode()).digest()
    expected = hmac.new(key, inner.sign_string().encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), inner.signature.lower().encode()):
        return None
    try:
        data = base64.b64decode(inner.signed_secret_access_key, validate=True)
    except (ValueError, binascii.Error):
        return None
    if not data or len(data) % 16:
        return None
    dec = _cipher(lt_secret).decryptor()
    plain = (dec.update(data) + dec.finalize()).rstrip(b"\0")
    try:
        return plain.decode()
    except UnicodeDecodeError:
        return None
