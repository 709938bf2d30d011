"""Rotating and revoking a bucket's credentials (``mediagate bucket key …``).

A rotation adds a fresh credential of each kind asked for, then, unless the old ones are kept
for an overlap, revokes the ones it replaces (new first: a crash in between leaves both working,
never neither). A revocation is immediate on every node, because credentials are never cached
(``Gateway.secrets_of``). Revoked rows are kept, so temporary credentials minted from a revoked
access key are refused too.

UPYUN signs with the operator's name, so two active passwords of one operator cannot overlap: an
overlapping UPYUN rotation needs a new operator name.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from mediagate.catalog import Catalog
from mediagate.core.buckets import AKSK, FORM, UPYUN
from mediagate.core.errors import BadRequest, NotFound
from mediagate.core.secrets import SecretBox, generate_secret
from mediagate.core.values import Bucket

KINDS = (UPYUN, FORM, AKSK)
"""Every kind a bucket is created with, in the order `bucket create` prints them."""


@dataclass(frozen=True)
class KeyInfo:
    """A credential as listed: never its secret."""

    id: int
    kind: str
    key_id: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def list_keys(catalog: Catalog, bucket: Bucket) -> list[KeyInfo]:
    """Every credential of the bucket, revoked ones included, by kind then newest first."""
    return [
        KeyInfo(c.id, c.kind, c.key_id, c.created_at, c.revoked_at)
        for kind in KINDS
        for c in catalog.credentials(bucket.id, kind, include_revoked=True)
    ]


def rotate(
    catalog: Catalog,
    box: SecretBox,
    bucket: Bucket,
    kinds: tuple[str, ...] = KINDS,
    *,
    keep_old: bool = False,
    operator: str | None = None,
) -> dict[str, str]:
    """New credentials of ``kinds`` (printed once by the caller); the old ones of those kinds are
    revoked unless ``keep_old``. Returns the new values as `bucket create` names them."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise BadRequest(f"unknown credential kind {unknown[0]!r} (upyun, form, aksk)")
    if operator is not None and not operator.strip():
        raise BadRequest("the operator name must not be empty")
    old = {kind: catalog.credentials(bucket.id, kind) for kind in kinds}
    new_operator = operator or (old[UPYUN][0].key_id if old.get(UPYUN) else f"{bucket.name}-op")
    if UPYUN in kinds and keep_old and any(c.key_id == new_operator for c in old[UPYUN]):
        raise BadRequest(
            "UPYUN signs by operator name: to keep the old password working, give a new --operator"
        )
    made: dict[str, str] = {"bucket": bucket.name}
    if UPYUN in kinds:
        password = generate_secret(18)
        md5 = hashlib.md5(password.encode()).hexdigest()
        catalog.add_credential(bucket.id, UPYUN, new_operator, box.seal(md5))
        made |= {"operator": new_operator, "password": password}
    if FORM in kinds:
        made["form_api_secret"] = generate_secret(21)
        catalog.add_credential(bucket.id, FORM, "", box.seal(made["form_api_secret"]))
    if AKSK in kinds:
        access_key_id = "AK" + secrets.token_hex(10).upper()
        made |= {"access_key_id": access_key_id, "secret_access_key": generate_secret(30)}
        catalog.add_credential(bucket.id, AKSK, access_key_id, box.seal(made["secret_access_key"]))
    if not keep_old:
        for creds in old.values():
            for cred in creds:
                catalog.revoke_credential(cred.id)
    return made


def revoke(catalog: Catalog, bucket: Bucket, credential_id: int) -> KeyInfo:
    """Revoke one active credential of the bucket by its listed id."""
    found = next((k for k in list_keys(catalog, bucket) if k.id == credential_id), None)
    if found is None:
        raise NotFound(f"bucket {bucket.name!r} has no credential #{credential_id}")
    if not found.active:
        raise BadRequest(f"credential #{credential_id} is already revoked")
    catalog.revoke_credential(credential_id)
    return KeyInfo(found.id, found.kind, found.key_id, found.created_at, datetime.now(UTC))
