"""mediagate's own face in a browser: the landing page at ``/`` and the page at ``/ui/``.

The page is static files shipped in the package (``static/``, no build step) that talk to the
``/v1`` API and upload through tus; Uppy is vendored under ``static/vendor/`` with its licence.
"""
