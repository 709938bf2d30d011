"""Request-signing primitives of the three dialects, shared by the server and the Python SDK.

Pure functions over strings and bytes (hashlib, hmac, base64): nothing here imports the server
(core, catalog, protocols, storage) or raises its errors, so ``mediagate.client`` can sign with
the very code the server verifies with. Server-side parsing of requests (headers, dates, tokens
that must fail with a dialect's error) stays in ``mediagate.protocols.<dialect>.signing``.

* :mod:`mediagate.signing.upyun`: REST/FORM HMAC-SHA1, old FORM and callback md5 signatures.
* :mod:`mediagate.signing.wantu`: the upload and manage tokens (HMAC-SHA1, URL-safe base64).
* :mod:`mediagate.signing.sigv4`: ImageX's AWS4-HMAC-SHA256 / volcengine HMAC-SHA256 schemes.
"""
