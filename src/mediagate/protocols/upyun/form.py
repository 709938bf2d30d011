"""UPYUN FORM API: ``POST /<bucket>[/]`` with a multipart/form-data body.

Steps, each a small function below: read the form fields -> authorise (policy + ``authorization``
or ``signature``) -> grant -> upload (Gateway) -> tell (JSON, return-url, notify-url, callback-url).

Field order is free. Any part not named ``file`` is a text field, even when it carries a filename
(the upyun SDK sends ``policy`` and ``authorization`` as file parts). As soon as ``policy`` and a
signature are known the request is authorised, before the file part is read; a file part that
arrives before them is spooled to staging with a cap (``settings.form_prebuffer_limit``) and checked
once the fields have arrived. Exactly one ``file`` part is accepted.

Answers:

* success, no return-url: JSON ``{"code": 200, "message": "ok", "url": "/<key>", "time": …,
  image-width/-height/-frames/-type (images), "mimetype", "file_size", "ext-param", "sign"}``
  (see the signatures below);
  with ``x-gmkerl-*`` processing these describe the stored (processed) image, and
  ``x-gmkerl-type: get_meta`` / ``get_theme_color`` add ``"meta": {…}`` / ``"theme_color": […]``
  (JSON-encoded in return-url queries and notify/callback bodies);
* return-url: ``303 See Other`` to it with those fields appended as a query; errors found after
  the policy was validated are redirected there too (their code and message);
* callback-url: the same fields are POSTed (form-urlencoded) synchronously; the callee's answer
  (status, Content-Type, body) is relayed to the uploader. When it gives no answer the file stays
  saved and the uploader gets 502 with the usual fields and a message saying so;
* notify-url: the same fields are queued for durable, retried delivery (``core.notify``);
* errors: the FORM error JSON (``errors.form_error``) with HTTP status = ``code``.

Signatures on what we send, one scheme per upload as the seed has it:

* old (the upload was authorised with ``signature``): the fields end with ``sign`` =
  md5(code&message&url&time&form_api_secret[&ext-param]) (``no-sign`` without a form secret);
* new (authorised with ``authorization``): no ``sign`` field anywhere ("使用回调签名(新)时,
  不存在"); the notify/callback POST carries ``Date``, ``Content-MD5`` (hex md5 of the body) and
  ``Authorization: UPYUN <operator>:<sig>``, sig = base64(hmac-sha1(md5(password),
  ``POST&<path?query>&<Date>&<Content-MD5>``)).

``b64encoded=on`` with ``content-md5``: the real service (and the node SDK's own test) takes the
digest of the base64 text as sent; the digest of the decoded file is accepted too.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from mediagate.core import notify
from mediagate.core.buckets import FORM, UPYUN
from mediagate.core.errors import (
    BadRequest,
    MediagateError,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from mediagate.core.formdata import MultipartReader, boundary_from_content_type
from mediagate.core.gateway import Gateway, Notifier, Stored
from mediagate.core.grant import UploadGrant
from mediagate.core.ingest import Received, discard
from mediagate.core.outbox import Notification, Outgoing
from mediagate.core.secrets import constant_time_equal
from mediagate.core.values import Bucket
from mediagate.http import body_stream, drain_body, gateway
from mediagate.protocols.upyun import apps, signing
from mediagate.protocols.upyun.errors import form_error
from mediagate.protocols.upyun.policy import (
    FormPolicy,
    build_grant,
    decode_policy,
    prebuffer_grant,
    refuse_unsupported,
)

FILE_FIELD = "file"
DRAIN_SECONDS = 1.0
"""How long an early error waits on the rest of the body (see ``http.drain_body``)."""


class CallbackFailed(MediagateError):
    """callback-url gave no answer; the file is saved, the uploader is told (502)."""

    code = "callback_failed"
    status = 502


@dataclass(frozen=True)
class Signer:
    """The operator who signed with ``authorization``; notifications are signed with its key."""

    operator: str
    password_md5: str


@dataclass
class FormUpload:
    """What one request has told us so far."""

    bucket: Bucket
    fields: dict[str, str] = field(default_factory=dict)
    grant: UploadGrant | None = None
    """Set once the policy is authorised and validated; from then on errors go to return-url."""
    signer: Signer | None = None
    file_seen: bool = False
    filename: str | None = None
    staged: Received | None = None
    prebuffered: bool = False
    sent_md5: str | None = None
    """MD5 of the file part as sent, when it differs from the stored bytes' (``b64encoded``)."""
    task_ids: list[str] = field(default_factory=list)
    """One per ``apps`` element (protocols.upyun.apps), told in the answer and notify-url body."""

    def take_staged(self) -> Received:
        staged, self.staged = self.staged, None
        assert staged is not None
        return staged

    def take_staged_if_any(self) -> Received | None:
        """The staged file part, if any, for the caller to discard (core.ingest ``discard``)."""
        staged, self.staged = self.staged, None
        return staged


async def handle(request: Request, bucket: str) -> Response:
    """``POST /<bucket>[/]``: the whole FORM API exchange."""
    gw = gateway(request)
    body = body_stream(request)
    upload: FormUpload | None = None
    try:
        upload = FormUpload(await _find_bucket(gw, bucket))
        await _read_form(request, gw, upload, body)
        upload.task_ids = apps.new_task_ids(_grant(upload).apps)
        notifier = await _notifier(gw, upload)
        stored = await gw.commit(
            _grant(upload), upload.take_staged(), filename=upload.filename, notify=notifier
        )
    except MediagateError as exc:
        if upload is not None:
            await discard(upload.take_staged_if_any())
        await drain_body(body, seconds=DRAIN_SECONDS)
        return await _refuse(gw, upload, exc)
    except BaseException:
        if upload is not None:
            await discard(upload.take_staged_if_any())
        raise
    return await _tell(gw, upload, stored)


# -- 1. read the form ----------------------------------------------------------------------------------


async def _find_bucket(gw: Gateway, name: str) -> Bucket:
    found = await gw.find_bucket(name)
    if found is None:
        raise NotFound("bucket not found", code="bucket_not_found")
    return found


async def _read_form(request: Request, gw: Gateway, upload: FormUpload, body: AsyncIterator[bytes]) -> None:
    """Read every part; authorise as early as the fields allow; stage the one file part."""
    settings = gw.settings
    boundary = boundary_from_content_type(request.headers.get("content-type"))
    reader = MultipartReader(body, boundary, max_header_size=settings.max_header_size)
    while (part := await reader.next_part()) is not None:
        if part.name != FILE_FIELD:
            if part.name in upload.fields:
                raise BadRequest(f"the form field {part.name!r} is given twice", code="duplicate_field")
            upload.fields[part.name] = await reader.read_text(limit=settings.max_form_field_size)
            await _authorise_when_ready(request, gw, upload)
            continue
        if upload.file_seen:
            raise BadRequest("exactly one 'file' field is allowed", code="too_many_files")
        upload.file_seen = True
        upload.filename = part.filename
        if upload.grant is not None:
            upload.staged = await _receive(gw, upload, upload.grant, reader.stream())
        else:
            upload.staged = await _prebuffer(gw, upload, reader)
    if upload.grant is None:
        await _authorise(request, gw, upload)
    if not upload.file_seen:
        raise BadRequest("the 'file' field is missing", code="missing_file")
    grant = _grant(upload)
    if upload.prebuffered and grant.base64_encoded:
        upload.sent_md5 = upload.staged.md5 if upload.staged is not None else None
        upload.staged = await gw.restage(grant, upload.take_staged())
    if grant.base64_encoded and grant.content_md5 and upload.sent_md5 == grant.content_md5:
        # content-md5 named the base64 text as sent (UPYUN's reading): checked here, so the
        # core's check of the decoded bytes is not wanted
        upload.grant = replace(grant, content_md5=None)


async def _receive(
    gw: Gateway, upload: FormUpload, grant: UploadGrant, chunks: AsyncIterator[bytes]
) -> Received:
    """Stage the file part; for ``b64encoded`` with a ``content-md5`` the text as sent is hashed
    on the way (the staged file holds the decoded bytes)."""
    if not (grant.base64_encoded and grant.content_md5):
        return await gw.receive(grant, chunks)
    digest = hashlib.md5()

    async def hashed() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            digest.update(chunk)
            yield chunk

    staged = await gw.receive(grant, hashed())
    upload.sent_md5 = digest.hexdigest()
    return staged


async def _prebuffer(gw: Gateway, upload: FormUpload, reader: MultipartReader) -> Received:
    """A file part before the policy: spool it (capped) and decide once the fields arrive."""
    limit = gw.settings.form_prebuffer_limit
    upload.prebuffered = True
    try:
        return await gw.receive(prebuffer_grant(upload.bucket.name, limit), reader.stream())
    except PayloadTooLarge as exc:
        raise PayloadTooLarge(
            f"a file sent before the policy fields may be at most {limit} bytes; "
            "send policy and authorization (or signature) before the file"
        ) from exc


def _grant(upload: FormUpload) -> UploadGrant:
    assert upload.grant is not None
    return upload.grant


# -- 2. authorise --------------------------------------------------------------------------------------


async def _authorise_when_ready(request: Request, gw: Gateway, upload: FormUpload) -> None:
    fields = upload.fields
    if (
        upload.grant is None
        and fields.get("policy")
        and (fields.get("authorization") or fields.get("signature"))
    ):
        await _authorise(request, gw, upload)


async def _authorise(request: Request, gw: Gateway, upload: FormUpload) -> None:
    """Signature first (an unauthenticated caller learns nothing about policy rules), then the
    policy's fields; from the moment the grant exists errors are reported to its return-url."""
    raw = upload.fields.get("policy")
    if not raw:
        raise BadRequest("the 'policy' field is missing", code="missing_field")
    policy = decode_policy(raw)
    upload.signer = await _verify(request, gw, upload.bucket, policy, upload.fields)
    upload.grant = build_grant(policy, upload.bucket.name, date_skew_seconds=gw.settings.date_skew_seconds)
    refuse_unsupported(upload.grant)
    task_urls = [str(app["notify_url"]) for app in upload.grant.apps if app.get("notify_url")]
    for url in (upload.grant.notify_url, upload.grant.callback_url, *task_urls):
        if url:
            await notify.check_url(url, allow_private=gw.settings.allow_private_callbacks)


async def _verify(
    request: Request, gw: Gateway, bucket: Bucket, policy: FormPolicy, fields: dict[str, str]
) -> Signer | None:
    """Check ``authorization`` (HMAC, an UPYUN operator of this bucket) or the old ``signature``
    (md5 with the bucket's form secret). Returns the signer for the HMAC form."""
    header = fields.get("authorization", "").strip()
    if header:
        operator, signature = signing.parse_authorization(header)
        keys = dict(await gw.secrets_of(bucket, UPYUN))
        password_md5 = keys.get(operator)
        if password_md5 is None:
            raise Unauthorized("the operator is not authorised for this bucket", code="unknown_operator")
        if not signing.signature_matches(password_md5, signature, _signed_strings(request, bucket, policy)):
            raise Unauthorized("the authorization does not match the policy", code="signature_mismatch")
        return Signer(operator, password_md5)
    signature = fields.get("signature", "").strip().lower()
    if not signature:
        raise Unauthorized("an 'authorization' or 'signature' field is required", code="bad_authorization")
    ok = False
    for _, secret in await gw.secrets_of(bucket, FORM):
        ok |= constant_time_equal(signing.old_form_signature(policy.raw, secret), signature)
    if not ok:
        raise Unauthorized("the signature does not match the policy", code="signature_mismatch")
    return None


def _signed_strings(request: Request, bucket: Bucket, policy: FormPolicy) -> list[str]:
    """Every string a genuine client may have signed: the URI as posted or its slash twin, with or
    without the policy's content-md5 (the SDK never appends it)."""
    path = urlsplit(request.scope.get("raw_path", b"").decode("latin-1") or request.url.path).path
    uris = dict.fromkeys((path, f"/{bucket.name}", f"/{bucket.name}/"))
    date = policy.text("date") or ""
    md5s = dict.fromkeys(("", policy.text("content-md5") or ""))
    return [signing.string_to_sign("POST", uri, date, policy.raw, md5) for uri in uris for md5 in md5s]


# -- 3. tell -------------------------------------------------------------------------------------------


async def _form_secret(gw: Gateway, upload: FormUpload) -> str | None:
    """The key of the old ``sign`` ('' gives ``no-sign``); None when the upload was authorised
    with ``authorization``: results then use the new callback signature and carry no ``sign``
    (seed: "使用回调签名(新)时,不存在")."""
    if upload.signer is not None:
        return None
    secrets = await gw.secrets_of(upload.bucket, FORM)
    return secrets[0][1] if secrets else ""


def _signed(
    fields: dict[str, Any],
    *,
    code: int,
    message: str,
    url: str,
    moment: int,
    secret: str | None,
    ext: str | None,
) -> dict[str, Any]:
    """Adds ``ext-param`` and ``sign`` (or ``no-sign``) in the seed's order, last. ``secret`` None:
    the new callback signature is in use (an ``Authorization`` header), so there is no ``sign``."""
    if ext:
        fields["ext-param"] = ext
    if secret is None:
        return fields
    name = "sign" if secret else "no-sign"
    fields[name] = signing.callback_sign(code, message, url, moment, secret, ext)
    return fields


def _result(
    stored: Stored, grant: UploadGrant, secret: str | None, task_ids: list[str] | None = None
) -> dict[str, Any]:
    obj, info = stored.object, stored.info
    moment, url = int(time.time()), "/" + obj.key
    fields: dict[str, Any] = {"code": 200, "message": "ok", "url": url, "time": moment}
    if info.is_image:
        fields |= {
            "image-width": info.width,
            "image-height": info.height,
            "image-frames": info.frames,
            "image-type": info.image_type,
        }
    fields |= {"mimetype": obj.mime, "file_size": obj.size}
    fields |= stored.extra  # x-gmkerl-type get_meta -> "meta", get_theme_color -> "theme_color"
    if task_ids:  # not signed (seed: "它也不参与签名计算")
        fields["task_ids"] = list(task_ids)
    return _signed(fields, code=200, message="ok", url=url, moment=moment, secret=secret, ext=grant.ext_param)


def _error_result(
    exc: MediagateError, grant: UploadGrant, secret: str | None, url: str = ""
) -> dict[str, Any]:
    moment = int(time.time())
    fields: dict[str, Any] = {"code": exc.status, "message": exc.message, "url": url, "time": moment}
    return _signed(
        fields,
        code=exc.status,
        message=exc.message,
        url=url,
        moment=moment,
        secret=secret,
        ext=grant.ext_param,
    )


def _flat(value: Any, name: str = "") -> str:
    """A result field as a form/query value: nested ones (meta, theme colours) as JSON;
    ``task_ids`` comma-joined, as UPYUN's /status/ query takes them (spec upyun-apps §6.3)."""
    if name == "task_ids" and isinstance(value, list):
        return ",".join(str(v) for v in value)
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)


def _with_query(url: str, fields: dict[str, Any]) -> str:
    """``url`` with ``fields`` appended to its query (an existing query is kept)."""
    parts = urlsplit(url)
    extra = urlencode({k: _flat(v, k) for k, v in fields.items()})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _outgoing(url: str, body: str, signer: Signer | None) -> dict[str, str]:
    """Headers of a notify/callback POST; signed like a REST request when the uploader used
    ``authorization`` (URI = the target's path and query as sent)."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signer is not None:
        date = signing.format_http_date()
        md5 = signing.md5hex(body)
        import httpx  # only signed notify calls need it (its import costs ~3 MB of RSS)

        uri = httpx.URL(url).raw_path.decode("ascii")
        message = signing.string_to_sign("POST", uri, date, "", md5)
        headers |= {
            "Date": date,
            "Content-MD5": md5,
            "Authorization": signing.authorization(signer.operator, signer.password_md5, message),
        }
    return headers


async def _notifier(gw: Gateway, upload: FormUpload) -> Notifier | None:
    """notify-url's POST and the ``apps`` tasks, committed with the object (core.outbox), so a
    crash cannot lose them and they never exist for an object that was not stored."""
    grant = _grant(upload)
    url = grant.notify_url
    if not url and not grant.apps:
        return None
    secret = await _form_secret(gw, upload)

    def outgoing(stored: Stored) -> list[Outgoing]:
        items: list[Outgoing] = []
        if url:
            result = _result(stored, grant, secret, upload.task_ids)
            body = urlencode({k: _flat(v, k) for k, v in result.items()})
            items.append(
                Notification(url, body, _outgoing(url, body, upload.signer), bucket_id=upload.bucket.id)
            )
        items += apps.new_tasks(
            grant.apps,
            upload.task_ids,
            bucket_id=upload.bucket.id,
            source=stored.object.key,
            operator=upload.signer.operator if upload.signer else None,
            notify_url=url,
            max_attempts=gw.settings.task_max_attempts,
        )
        return items

    return outgoing


async def _tell(gw: Gateway, upload: FormUpload, stored: Stored) -> Response:
    grant = _grant(upload)
    secret = await _form_secret(gw, upload)
    result = _result(stored, grant, secret, upload.task_ids)
    body = urlencode({k: _flat(v, k) for k, v in result.items()})
    relayed: Response | None = None
    if grant.callback_url:
        try:
            reply = await notify.post_now(
                grant.callback_url,
                body,
                _outgoing(grant.callback_url, body, upload.signer),
                timeout=gw.settings.notify_timeout_seconds,
                allow_private=gw.settings.allow_private_callbacks,
            )
        except notify.DeliveryFailed as exc:
            failure = CallbackFailed(f"the file was saved but callback-url failed: {exc}")
            result = _error_result(failure, grant, secret, url=result["url"])
        else:
            headers = {"content-type": reply.content_type} if reply.content_type else None
            relayed = Response(reply.body, status_code=reply.status, headers=headers)
    if grant.return_url:
        return RedirectResponse(_with_query(grant.return_url, result), status_code=303)
    if relayed is not None:
        return relayed
    return JSONResponse(result, status_code=int(result["code"]))


async def _refuse(gw: Gateway, upload: FormUpload | None, exc: MediagateError) -> Response:
    """The error in the FORM format, or as a redirect once a validated policy named a return-url."""
    if upload is not None and upload.grant is not None and upload.grant.return_url:
        secret = await _form_secret(gw, upload)
        fields = _error_result(exc, upload.grant, secret)
        return RedirectResponse(_with_query(upload.grant.return_url, fields), status_code=303)
    return form_error(exc)
