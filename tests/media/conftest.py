"""Images made with Pillow for the media specs: each test builds exactly the picture it reasons about."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from PIL import Image


def quadrants(path: Path, width: int = 400, height: int = 300, orientation: int | None = None) -> Path:
    """Red top-left, green top-right, blue bottom-left, white bottom-right; JPEG/PNG by suffix."""
    im = Image.new("RGB", (width, height))
    w2, h2 = width // 2, height // 2
    im.paste((255, 0, 0), (0, 0, w2, h2))
    im.paste((0, 255, 0), (w2, 0, width, h2))
    im.paste((0, 0, 255), (0, h2, w2, height))
    im.paste((255, 255, 255), (w2, h2, width, height))
    kwargs: dict[str, object] = {}
    if orientation is not None:
        exif = im.getexif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif
    if path.suffix in (".jpg", ".jpeg"):
        kwargs["quality"] = 95
    im.save(path, **kwargs)
    return path


def noisy_jpeg(path: Path, width: int = 800, height: int = 600) -> Path:
    """Detailed content, so quality settings change the file size."""
    Image.effect_mandelbrot((width, height), (-2.0, -1.2, 1.0, 1.2), 60).convert("RGB").save(path, quality=95)
    return path


def animated_gif(path: Path, frames: int = 4, size: tuple[int, int] = (60, 40)) -> Path:
    images = [Image.new("RGB", size, (i * 60 % 256, 0, 255 - i * 60 % 256)) for i in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=80, loop=0)
    return path


def png_bomb(path: Path, side: int = 50000) -> Path:
    """A valid PNG header declaring side x side pixels, with a few KB of zlib'd zero rows."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    body = b"".join(z.compress(b"\x00" * (side + 1)) for _ in range(64)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path
