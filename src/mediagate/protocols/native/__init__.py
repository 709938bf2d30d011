"""mediagate's own face: the ``/v1`` JSON API (FastAPI), with OpenAPI at ``/openapi.json`` and
offline docs at ``/docs`` and ``/redoc``. Authorised by API keys (core.apikeys) and, for object
uploads, upload tokens (core.uploadtokens); every error is one JSON shape (``errors``)."""
