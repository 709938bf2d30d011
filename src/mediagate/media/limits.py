"""How big an image we agree to decode and produce, and how many decodes run at once."""

from __future__ import annotations

from dataclasses import dataclass

from mediagate.config import Settings


@dataclass(frozen=True)
class ImageLimits:
    """Checked against the header before any pixel is decoded (see :func:`probe.check_limits`).

    ``max_pixels`` bounds one frame and also the sum over an animation's frames, so a 1000-frame
    GIF cannot smuggle in a gigapixel of work.
    """

    max_pixels: int = 100_000_000
    max_width: int = 30000
    max_height: int = 30000
    max_frames: int = 1000
    max_output_side: int = 10000
    max_concurrent: int = 2

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageLimits:
        return cls(
            max_pixels=settings.media_max_pixels,
            max_width=settings.media_max_width,
            max_height=settings.media_max_height,
            max_frames=settings.media_max_frames,
            max_concurrent=max(1, settings.media_max_concurrent),
        )
