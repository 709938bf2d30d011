"""``CommitImageUpload``: publish what was uploaded under a SessionKey, exactly once, all or none.

Every open session of the SessionKey is claimed (``open`` → ``lease:<deadline>``) in a fixed
order before anything is published, so of two racing or replayed commits only one proceeds; the
other gets ``SessionKeyCommitted``. A claim left by a process that died mid-commit lapses after
``COMMIT_LEASE_SECONDS`` and a retry takes it over. Then every target is checked (uploaded,
merged, FileSize) before the first is published. If anything fails, every session not yet
published is given back (``open``) and the error is the answer, so the commit can be retried;
sessions a failed attempt did publish stay ``completed`` and a retry reports them without
publishing again. StoreUris not in ``SuccessOids`` (when given) are dropped once the rest
succeeded. Facts in ``PluginResult`` come from the stored object (sniffed type, probed size, MD5
of the bytes).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import anyio

from mediagate.core import jsonin
from mediagate.core.errors import BadRequest, Conflict, Expired, Forbidden, NotFound
from mediagate.core.gateway import Gateway
from mediagate.core.grant import UploadGrant
from mediagate.core.savekey import FileFacts
from mediagate.core.values import Object, UploadSession
from mediagate.protocols.imagex.apply import SESSION_KEY_PURPOSE, split_store_uri
from mediagate.protocols.imagex.auth import Principal
from mediagate.protocols.imagex.tokens import unseal

MAX_BODY = 256 * 1024
URI_OK = 2000
MAX_SIZE = 2**63 - 1

log = logging.getLogger("mediagate")


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
        size_range=(low or 0, high if high is not None else MAX_SIZE) if low or high is not None else None,
        allowed_mime=tuple(str(m) for m in whitelist) if isinstance(whitelist, list) and whitelist else None,
    )


def _int(value: Any, default: int | None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def plugin_result(uri: str, obj: Object) -> dict[str, Any]:
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
    sealed = unseal(gw.secrets.derived(SESSION_KEY_PURPOSE), raw_key)
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

    entries = await _claim_all(gw, principal, list(zip(uris, session_ids, strict=False)))
    try:
        for entry in entries:
            if entry.uri in targets and not entry.done:
                await _check_ready(gw, principal, entry.uri, entry.session)
        results: list[dict[str, Any]] = []
        plugins: list[dict[str, Any]] = []
        for entry in entries:
            if entry.uri not in targets:
                continue
            if entry.done:
                obj = await gw.get_object(principal.bucket, entry.session.key)
            else:
                stored = await gw.complete_session(
                    entry.session,
                    _grant(principal.bucket.name, entry.session),
                    part_numbers=(entry.session.data or {})["merged"],
                    keep_record=True,
                )
                entry.done = True
                obj = stored.object
            results.append({"Uri": entry.uri, "UriStatus": URI_OK})
            plugins.append(plugin_result(entry.uri, obj))
        for entry in entries:
            if entry.uri not in targets and not entry.done:
                await gw.abort_session(entry.session)
                entry.done = True
    except BaseException:
        await _release(gw, [e for e in entries if not e.done])
        raise
    return {"Results": results, "PluginResult": plugins}


@dataclass
class _Entry:
    uri: str
    session: UploadSession
    done: bool
    """Published (``completed``) or dropped: no longer this commit's to release."""
    lease: str = ""
    """The state this commit claimed the session with (see :func:`_lease`)."""


COMMIT_LEASE_SECONDS = 600
LEASE_PREFIX = "lease:"


def _lease() -> str:
    """A claim is the state ``lease:<unix deadline>`` (16 characters, the column's width): a
    commit whose process died leaves it behind, and once the deadline has passed another commit
    may take it over (compare-and-set on that exact state, so only one does)."""
    return f"{LEASE_PREFIX}{int(time.time()) + COMMIT_LEASE_SECONDS}"


def _claimable(state: str) -> bool:
    if state == "open":
        return True
    deadline = state.removeprefix(LEASE_PREFIX)
    return state.startswith(LEASE_PREFIX) and deadline.isdigit() and int(deadline) < time.time()


async def _claim_all(gw: Gateway, principal: Principal, pairs: list[tuple[str, str]]) -> list[_Entry]:
    """Claim every open session of the SessionKey (``open`` -> a lease) in a fixed order, or
    none: a claim that fails releases the ones before it. Sessions an earlier, failed attempt
    already published (``completed``) are kept as done, so a retry finishes the rest; a SessionKey
    with nothing left to claim was committed."""
    entries: list[_Entry] = []
    try:
        for uri, sid in pairs:
            try:
                session = await gw.session(sid, bucket=principal.bucket)
            except NotFound:
                raise _committed() from None
            if session.state == "completed":
                entries.append(_Entry(uri, session, done=True))
                continue
            lease = _lease()
            if not _claimable(session.state) or not await gw.claim_session(
                session, expect=session.state, state=lease
            ):
                raise _committed()
            entries.append(_Entry(uri, session, done=False, lease=lease))
        if all(e.done for e in entries):
            raise _committed()
    except BaseException:
        await _release(gw, [e for e in entries if not e.done])
        raise
    return entries


def _committed() -> Conflict:
    return Conflict("this SessionKey was already committed", code="SessionKeyCommitted")


async def _check_ready(gw: Gateway, principal: Principal, uri: str, session: UploadSession) -> None:
    """What can be known before publishing anything, so that a commit of several StoreUris does not
    stop halfway for it: the bytes were uploaded (and, if chunked, merged), they hold the applied
    FileSize and the upload policy's size range, and a StoreUri that may not overwrite is still
    free. The grant checks all of it again on the assembled object."""
    split_store_uri(uri)
    order = (session.data or {}).get("merged")
    if not order:
        raise BadRequest(f"{uri} was not uploaded (or its chunks were not merged)", code="InvalidParameter")
    grant = _grant(principal.bucket.name, session)
    sizes = {p.part_number: p.size for p in await gw.parts(session)}
    total = sum(sizes.get(n, 0) for n in order)
    if grant.exact_size is not None and total != grant.exact_size:
        raise BadRequest(
            f"the upload holds {total} bytes but FileSize was {grant.exact_size}", code="InvalidFileSize"
        )
    if grant.size_range is not None and not grant.size_range[0] <= total <= grant.size_range[1]:
        low, high = grant.size_range
        raise BadRequest(
            f"{uri} holds {total} bytes, outside the upload policy's {low}-{high}", code="InvalidFileSize"
        )
    if grant.insert_only:
        try:
            await gw.get_object(principal.bucket, session.key)
        except NotFound:
            return
        raise Conflict(
            f"{uri} already exists (apply with Overwrite=True to replace it)", code="ResourceAlreadyExists"
        )


async def _release(gw: Gateway, entries: list[_Entry]) -> None:
    """Give claimed sessions back (lease -> ``open``) so the commit can be retried;
    shielded, so a cancelled request still releases what it claimed."""
    with anyio.CancelScope(shield=True):
        for entry in entries:
            try:
                await gw.claim_session(entry.session, expect=entry.lease, state="open")
            except Exception:
                log.exception("could not release upload session %s after a failed commit", entry.session.id)
