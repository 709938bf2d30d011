"""Image work: header probe and bomb guard, the UPYUN processing grammar, and the engine.

pyvips (with the ``pyvips-binary`` wheel, no system libvips) does the breadth: WebP, AVIF, HEIF,
animation, watermarks; Pillow's JPEG ``draft()`` does plain JPEG downscales where it is faster.
Every failure leaves this package as a :mod:`mediagate.core.errors` 4xx, never a bare exception.
"""

from __future__ import annotations

from mediagate.media.limits import ImageLimits
from mediagate.media.probe import ImageProbe, check_limits, probe
from mediagate.media.spec import ProcessingSpec, parse_legacy, parse_thumb

__all__ = [
    "ImageLimits",
    "ImageProbe",
    "ProcessingSpec",
    "check_limits",
    "parse_legacy",
    "parse_thumb",
    "probe",
]
