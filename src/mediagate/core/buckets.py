"""Creating buckets and their credentials.

A bucket is also the Wantu namespace and the ImageX ServiceId, so its name is constrained by the
one-port routing table: lowercase letters, digits and '-', not a reserved first path segment, and
not starting with the ImageX store prefix ``tos-``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import asdict, dataclass

from mediagate.catalog import Catalog
from mediagate.core.errors import BadRequest
from mediagate.core.secrets import SecretBox, generate_secret

RESERVED = frozenset(
    {
        "api",
        "3.0",
        "3.1",
        "upload",
        "mweb",
        "v1",
        "docs",
        "openapi.json",
        "healthz",
        "livez",
        "metrics",
        "ui",
        "static",
        "redoc",
        "pretreatment",  # UPYUN's pretreatment API (protocols.upyun.pretreatment)
        "status",
        "result",
    }
)
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")

# Credential kinds (see catalog.models.Credential)
UPYUN = "upyun"  # key_id = operator, secret = md5 hex of the operator's password
FORM = "form"  # key_id = "", secret = form API secret (old md5 signature)
AKSK = "aksk"  # key_id = access key id, secret = secret access key (Wantu, ImageX)


def validate_bucket_name(name: str) -> str:
    if not _NAME.match(name) or ("--" in name and name.startswith("xn--")):
        raise BadRequest(
            "bucket names are 3-63 characters of lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    if name in RESERVED or name.startswith("tos-"):
        raise BadRequest(f"{name!r} is reserved by the routing table; choose another bucket name")
    return name


@dataclass(frozen=True)
class BucketCredentials:
    """What `mediagate bucket create` prints once; only hashes/sealed copies are kept."""

    bucket: str
    operator: str
    password: str
    form_api_secret: str
    access_key_id: str
    secret_access_key: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def create_bucket(
    catalog: Catalog,
    box: SecretBox,
    name: str,
    *,
    operator: str | None = None,
    password: str | None = None,
    form_api_secret: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> BucketCredentials:
    validate_bucket_name(name)
    creds = BucketCredentials(
        bucket=name,
        operator=operator or f"{name}-op",
        password=password or generate_secret(18),
        form_api_secret=form_api_secret or generate_secret(21),
        access_key_id=access_key_id or "AK" + secrets.token_hex(10).upper(),
        secret_access_key=secret_access_key or generate_secret(30),
    )
    password_md5 = hashlib.md5(creds.password.encode()).hexdigest()
    catalog.create_bucket(  # one transaction; the schema refuses a taken name or access key id
        name,
        credentials=[
            (UPYUN, creds.operator, box.seal(password_md5)),
            (FORM, "", box.seal(creds.form_api_secret)),
            (AKSK, creds.access_key_id, box.seal(creds.secret_access_key)),
        ],
    )
    return creds
