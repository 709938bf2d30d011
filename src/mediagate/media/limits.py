"""How big an image we agree to decode and produce, and how many decodes run at once."""

from __future__ import annotations

from dataclasses import dataclass

from mediagate.config import Settings
from mediagate.core.errors import PayloadTooLarge


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

    def check(self, width: int, height: int, frames: int = 1) -> None:
        """Refuse an image too large to decode, from its header's dimensions (the
        decompression-bomb guard, also applied at upload to files checked as images)."""
        if width > self.max_width or height > self.max_height:
            raise PayloadTooLarge(
                f"image {width}x{height} exceeds the limit of {self.max_width}x{self.max_height} pixels",
                code="image_too_large",
            )
        if width * height > self.max_pixels:
            raise PayloadTooLarge(
                f"image of {width * height} pixels exceeds the limit of {self.max_pixels}",
                code="image_too_large",
            )
        if frames > self.max_frames:
            raise PayloadTooLarge(
                f"image has {frames} frames; the limit is {self.max_frames}", code="image_too_large"
            )
        if width * height * frames > self.max_pixels:
            raise PayloadTooLarge(
                f"animation of {frames} frames of {width}x{height} exceeds the limit of "
                f"{self.max_pixels} pixels in all",
                code="image_too_large",
            )
