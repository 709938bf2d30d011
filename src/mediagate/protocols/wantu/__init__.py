"""Alibaba Wantu (顽兔多媒体服务) dialect: upload tokens, block upload, management API.

Source of truth: ``shared/seeds/wantu-media-api.txt``; notes: ``shared/specs/wantu.md``. A bucket
is a Wantu namespace, its AKSK credential the Wantu AK/SK, and a file (dir, name) is the object
``<dir without slashes>/<name>``, served at ``GET /<namespace>/<dir>/<name>`` (that URL is the
``url`` of every answer; base = ``settings.public_url`` or the request's own base URL).

Modules: ``signing`` (tokens, resourceIds), ``policy`` (policy -> UploadGrant, placeholders),
``upload`` (``/api/proxy/upload`` and what the upload endpoints share), ``blocks`` (block upload),
``manage`` (``/3.0``, ``/3.1``), ``errors`` (the one error renderer), ``explain``.

Choices where the seed is silent or contradicts itself (as a server we accept every reading a
real client could have used):

1. Answers are JSON bodies, and their simple values are also sent as response headers (the seed
   prints answers as ``key: value`` lines). Errors: ``{"code", "message", "msg", "requestId"}``
   (``msg`` is the seed's management spelling) plus ``code``/``message``/``requestId`` headers.
   Upload answers carry ``eTag`` and ``ETag`` (same md5 hex); block ETags are upper-case hex.
2. Placeholders: ``${x}`` and ``$(x)`` (spaces inside allowed, as in the seed's ``$( filesize)``),
   names case-insensitive (``${filesize}`` = ``${fileSize}``). Unknown placeholders render as the
   empty string. ``${dir}``/``${name}`` render empty inside dir and name. Precedence on a clash:
   system > ``meta-*`` > ``var-*``. Date/time parts are the upload time in **UTC**, not zero-padded
   (``2015-2-5``). ``${ext}`` is the MIME subtype (``jpeg``), as the seed defines it.
   ``${exif}`` is the whole table as JSON, ``${exif.Make}`` one tag (Pillow's tag names).
   A rendered name containing ``/`` (e.g. from ``${mimeType}``) is refused.
3. ``expiration``: above 10^11 it is milliseconds (the prose), otherwise seconds (the worked
   example); ``-1``, ``0`` or absent mean no expiry (the seed's sample token uses -1).
   Integer fields may be JSON numbers or digit strings (the seed's template writes ``"<int>"``).
4. ``sizeLimit`` 0 or absent = the system limit: 10 MiB for images (the seed), the server's
   ``max_upload_size`` otherwise.
5. Token types ``UPLOAD_AK_TOP`` and ``UPLOADAKTOP``; HMAC key = SK; base64 padded or not.
6. Manage string to sign: any of ``<path>[?<query>]\\n<body>\\n<Date>`` with the path as sent or
   without its leading ``/`` (the seed's example), a bare ``?`` when there is no query, or
   ``uri=<path>[?<query>]\\ndate=<Date>``; the percent-decoded target is tried too. ``Date`` is
   RFC 822/1123 or epoch ms/s digits; further than ``settings.date_skew_seconds`` off (the seed:
   15 minutes) -> 401. A signature seen with one method and replayed with another -> 401.
7. Upload endpoints accept PUT (seed) and POST. ``blockComplete``/``blockCancel`` accept a
   multipart or a urlencoded body.
8. ``namespace`` absent or ``""`` (policy, resourceId, list query) = the AK's namespace; another
   namespace -> 401 AuthenticationFailed.
9. insertOnly=1 and the file exists -> 400 NameDuplicated. sizeLimit, mimeLimit, md5 or size
   mismatch -> 400 InvalidArgument. Errors the seed does not list are 400 InvalidArgument; none
   is a 5xx.
10. ``detectMime: 0``: the type is the content part's Content-Type (unless it is
    ``application/octet-stream``), else guessed from the name; mimeLimit checks that type before
    the file is read. With detection on, the type is sniffed from the bytes.
11. callbackUrl: POST of the rendered callbackBody (or, without one, the answer's fields
    urlencoded), Content-Type = callbackBodyType (default ``application/x-www-form-urlencoded``),
    Host = callbackHost when given, timeout ``settings.notify_timeout_seconds``; its answer text is
    ``customBody``. No answer -> the upload still succeeds with ``customBody: ""``. The SSRF guard
    refuses a private callbackUrl before the file is read (400).
12. returnUrl: 303 to it with the answer's fields appended as a query.
13. Block upload: ``parts`` partNumbers as strings or ints; gaps allowed, duplicates refused;
    ``md5`` optional at blockComplete (then ``parts`` must list every block). The policy applied
    is the one given at blockInit; each later call's own token must be valid, of the same
    namespace and for the same dir/name, and may only narrow it (smaller sizeLimit, insertOnly).
    sizeLimit binds the sum of the blocks as they arrive. No minimum block size.
14. Management: ``GET /3.0/files`` on a missing dir -> 404, on an empty one -> 200 with an empty
    result; ``pageSize`` default 20, 1-100 (101 -> 400); ``currentPage`` default 1; stamps are epoch
    ms. Folders exist explicitly (POST) or implicitly (a file uploaded into them); the root ``/``
    always exists (creating it -> NameDuplicated, deleting it -> InvalidArgument).
15. Media tasks (``/3.0/mediaEncode``, ``/3.0/snapshot`` and their results, the policy's
    ``mediaEncode``): ``media``. ``/3.1/scanPorn`` (synchronous, the offline model) and
    ``/3.0/feedback`` (stored, listable): ``scan``. ``/3.1/scanAdvertising``: scanPorn's shape, each
    file status 100 "no advertising classifier installed" (no score is ever made up).
"""
