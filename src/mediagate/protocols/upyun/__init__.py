"""UPYUN: the FORM API (``POST /<bucket>``) and the REST API (``/<bucket>/<path>``)."""
