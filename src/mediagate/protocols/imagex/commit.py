"""``CommitImageUpload``: publish what was uploaded under a SessionKey, exactly once.

Every session of the SessionKey is claimed (``open`` → ``committing``) in a fixed order before
anything is published, so of two racing or replayed commits only one proceeds; the other gets
``SessionKeyCommitted``. StoreUris not in ``SuccessOids`` (when given) are dropped. Facts in
``PluginResult`` come from the stored object (sniffed type, probed size, MD5 of the bytes).
"""

from __future__ import annotations

import time
from typing import Any

from mediagate.catalog.models import UploadSession
from mediagate.core import jsonin
from mediagate.core.errors import BadRequest, Conflict, Expired, Forbidden, MediagateError, NotFound
from mediagate.core.gateway import Gateway, Stored
from mediagate.core.grant import UploadGrant
from mediagate.core.savekey import FileFacts
from mediagate.protocols.imagex.apply import SESSION_KEY_PURPOSE, split_store_uri
from mediagate.protocols.imagex.auth import Principal
from mediagate.protocols.imagex.tokens import unseal

MAX_BODY = 256 * 1024
URI_OK = 2000
URI_FAILED = 2001


def parse_body(body: bytes) -> dict[str, Any]:
    try:
        doc = jsonin.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest('the body must be JSON like {"SessionKey": "…"}', code="InvalidParameter") from None
    if not isinstance(doc, dict):
        raise BadRequest("the body must be a JSON object", code="InvalidParameter")
    return doc


def _grant(bucket: str, session: UploadSession) -> UploadGrant:
    data = session.data or {}
    policy = data.get("upload_policy") or {}
    low, high = _int(policy.get("FileSizeBottomLimit"), 0), _int(policy.get("FileSizeUpLimit"), None)
    whitelist = policy.get("ContentTypeWhiteList")
    key = session.key

    def render(_facts: FileFacts) -> str:
        return key

    return UploadGrant(
        bucket=bucket,
        render_key=render,
        insert_only=not data.get("overwrite", False),
        exact_size=session.total_size,
        size_range=(low or 0, high) if high is not None else None,
        allowed_mime=tuple(str(m) for m in whitelist) if isinstance(whitelist, list) and whitelist else None,
    )


async def _check_size(gw: Gateway, session: UploadSession, order: list[int]) -> None:
    """The applied FileSize binds what is published (the grant's ``exact_size`` checks the
    assembled object again)."""
    if session.total_size is None:
        return
    sizes = {p.part_number: p.size for p in await gw.parts(session)}
    total = sum(sizes.get(n, 0) for n in order)
    if total != session.total_size:
        raise BadRequest(
            f"the upload holds {total} bytes but FileSize was {session.total_size}", code="InvalidFileSize"
        )


def _int(value: Any, default: int | None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def plugin_result(uri: str, stored: Stored) -> dict[str, Any]:
    obj = stored.object
    fmt = (obj.image_type or obj.mime.rpartition("/")[2] or "").lower()
    return {
        "FileName": obj.key.rpartition("/")[2],
        "SourceUri": uri,
        "ImageUri": uri,
        "ImageWidth": obj.width or 0,
        "ImageHeight": obj.height or 0,
        "ImageMd5": obj.md5,
        "ImageFormat": fmt,
        "ImageSize": obj.size,
        "FrameCnt": obj.frames or 1,
    }


async def commit_image_upload(gw: Gateway, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    raw_key = body.get("SessionKey")
    if not isinstance(raw_key, str) or not raw_key:
        raise BadRequest("SessionKey is required", code="MissingParameter")
    sealed = unseal(gw.secrets.derive(SESSION_KEY_PURPOSE), raw_key)
    if sealed is None:
        raise BadRequest("SessionKey is not one this service issued", code="InvalidSessionKey")
    if sealed.get("b") != principal.bucket.name:
        raise Forbidden("this SessionKey belongs to another ServiceId", code="AccessDenied")
    if int(sealed.get("e", 0)) <= time.time():
        raise Expired("this SessionKey has expired; apply again", code="InvalidSessionKey")
    uris: list[str] = [str(u) for u in sealed.get("u", [])]
    session_ids: list[str] = [str(s) for s in sealed.get("s", [])]
    wanted = body.get("SuccessOids")
    if wanted is None:
        targets = set(uris)
    elif isinstance(wanted, list) and all(isinstance(u, str) for u in wanted):
        strange = [u for u in wanted if u not in uris]
        if strange:
            raise BadRequest(
                f"{strange[0][:200]!r} was not issued with this SessionKey", code="InvalidParameter"
            )
        targets = set(wanted)
    else:
        raise BadRequest("SuccessOids must be a list of StoreUris", code="InvalidParameter")

    sessions: list[UploadSession] = []
    for sid in session_ids:
        try:
            session = await gw.session(sid, bucket=principal.bucket)
        except NotFound:
            session = None
        if session is None or not await gw.claim_session(session, expect="open", state="committing"):
            raise Conflict("this SessionKey was already committed", code="SessionKeyCommitted")
        sessions.append(session)

    results: list[dict[str, Any]] = []
    plugins: list[dict[str, Any]] = []
    first_error: MediagateError | None = None
    for uri, session in zip(uris, sessions, strict=False):
        if uri not in targets:
            await gw.abort_session(session)
            continue
        order = (session.data or {}).get("merged")
        try:
            split_store_uri(uri)
            if not order:
                raise BadRequest(
                    f"{uri} was not uploaded (or its chunks were not merged)", code="InvalidParameter"
                )
            await _check_size(gw, session, order)
            stored = await gw.complete_session(
                session, _grant(principal.bucket.name, session), part_numbers=order
            )
        except MediagateError as exc:
            await gw.abort_session(session)
            first_error = first_error or exc
            results.append({"Uri": uri, "UriStatus": URI_FAILED})
            continue
        results.append({"Uri": uri, "UriStatus": URI_OK})
        plugins.append(plugin_result(uri, stored))
    if not plugins and first_error is not None:
        raise first_error
    return {"Results": results, "PluginResult": plugins}
