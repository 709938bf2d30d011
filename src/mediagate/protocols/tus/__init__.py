"""tus 1.0 resumable uploads at ``/v1/tus/`` (https://tus.io/protocols/resumable-upload).

Core protocol plus the creation, creation-with-upload, creation-defer-length, termination,
checksum (md5, sha1, sha256, crc32) and expiration extensions, authorised by a ``/v1`` upload
token (``Authorization: Bearer mgt_…``, see :mod:`mediagate.core.uploadtokens`).

* ``POST /v1/tus/<bucket>/`` creates an upload (one use of the token; ``Upload-Length`` over the
  token's ``max_size`` is 413 before anything exists). The object key is the token's fixed key, or
  its prefix + the ``filename`` metadata; a token without ``overwrite`` is refused 409
  ``key_exists`` here when that key is taken (and again, insert-only, at completion, so of two
  racing uploads one is stored). ``HEAD``/``PATCH``/``DELETE /v1/tus/<bucket>/<id>`` need
  the token that created the upload, but not its expiry or uses: an upload resumes after its
  token's ttl, until the upload itself expires.
* An upload is a core session (dialect ``tus``) in the catalog; every ``PATCH`` body is one part in
  the object store (``Gateway.put_part``), streamed through staging, so an upload started on one
  node resumes on any other, and the offset is the sum of the recorded parts.
* **Interrupted PATCH** (tusd's behaviour): the bytes received before the connection dropped (or
  went idle for ``IDLE_SECONDS``) are stored as a part and the offset advances by them. With
  ``Upload-Checksum`` an interrupted part cannot be verified and is discarded whole.
* **One writer at a time**: a ``PATCH`` (or ``DELETE``) takes a lease on the session (its state
  becomes a holder id, a compare-and-set in the catalog, kept alive while the body streams); a
  second request waits up to ``LOCK_WAIT`` seconds and is then refused 423. A part is recorded
  only while its writer still holds the lease (checked in the recording transaction), so two
  writers never interleave bytes. A lease not renewed for ``LEASE_STALE`` seconds (a node died)
  is taken over.
* **Completion** happens in the ``PATCH`` that reaches ``Upload-Length``, under the lease: the
  parts are assembled and go through the core commit like any dialect's upload (size, sniffed
  type against the token's types, image limits, notifications). The session is then kept as
  ``completed`` (a repeated final ``PATCH`` or a ``HEAD`` answers the full offset) until the
  collector removes it. A commit refused by a check ends the upload (nothing stays, the token's
  use is given back); a dependency outage leaves it open, so the client's retry completes it.
* **Expiration**: ``Upload-Expires`` is the session's last activity + ``session_max_age_seconds``;
  the collector (``Gateway.collect_garbage``) removes expired sessions and their parts.
* Termination of a completed upload forgets the session only; the object stays (delete it through
  ``/v1``).
"""
