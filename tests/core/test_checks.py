"""Checks (``mediagate.core.checks``): the type comes from the bytes, image size from the header
alone, and every grant limit is enforced with its own error code."""

from __future__ import annotations

import hashlib
import io
import struct
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

from mediagate.core.checks import MediaInfo, check_received, probe_image, sniff
from mediagate.core.errors import ChecksumMismatch, MediagateError, PolicyViolation, UnsupportedMedia
from mediagate.core.grant import UploadGrant
from mediagate.core.ingest import Received


def image_bytes(fmt: str, size: tuple[int, int] = (30, 20), **save: object) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, fmt, **save)
    return buf.getvalue()


def gif_frames(n: int) -> bytes:
    frames = [Image.new("RGB", (16, 8), (i * 80, 255 - i * 80, 0)) for i in range(n)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming width x height, with one tiny IDAT: decoding it would need
    gigabytes; reading its header must not."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "hello")
    return buf.getvalue()


def staged(tmp_path: Path, data: bytes, name: str = "upload.part") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "filename", "mime", "dims"),
    [
        (image_bytes("PNG"), "a.png", "image/png", (30, 20)),
        (image_bytes("JPEG"), "a.jpg", "image/jpeg", (30, 20)),
        (image_bytes("WEBP"), "a.webp", "image/webp", (30, 20)),
        (image_bytes("GIF"), "a.gif", "image/gif", (30, 20)),
        (image_bytes("PNG"), "lies.jpg", "image/png", (30, 20)),  # the name lies; the bytes don't
        (image_bytes("JPEG"), "no-extension", "image/jpeg", (30, 20)),
        (b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", "doc.bin", "application/pdf", None),
        (zip_bytes(), "a.jpg", "application/zip", None),
        (b"hello, world\n", "a.jpg", "text/plain", None),
        ("中文文本".encode(), None, "text/plain", None),
        (b'{"a": 1}', "data.json", "application/json", None),
        (bytes(range(256)) * 4, "a.png", "application/octet-stream", None),
        (b"", "empty.png", "application/octet-stream", None),
    ],
)
def test_sniff_from_bytes(
    tmp_path: Path, data: bytes, filename: str | None, mime: str, dims: tuple[int, int] | None
) -> None:
    info = sniff(staged(tmp_path, data), filename)
    assert info.mime == mime
    if dims is None:
        assert not info.is_image
        assert (info.width, info.height) == (None, None)
    else:
        assert info.is_image
        assert (info.width, info.height) == dims


def test_image_type_and_frames(tmp_path: Path) -> None:
    png = sniff(staged(tmp_path, image_bytes("PNG")))
    assert (png.image_type, png.frames) == ("PNG", 1)
    gif = sniff(staged(tmp_path, gif_frames(3), "anim.gif"))
    assert (gif.mime, gif.image_type, gif.frames, gif.width, gif.height) == ("image/gif", "GIF", 3, 16, 8)


def test_text_cut_inside_a_multibyte_character_is_still_text(tmp_path: Path) -> None:
    data = "文".encode() * 5000  # 15000 bytes: the 8192-byte sniff window cuts a character
    assert sniff(staged(tmp_path, data), "a.txt").mime == "text/plain"


def test_a_truncated_image_is_not_an_image(tmp_path: Path) -> None:
    info = sniff(staged(tmp_path, image_bytes("PNG")[:20]), "a.png")
    assert not info.is_image


def test_a_50000_by_50000_png_is_probed_without_decoding(tmp_path: Path) -> None:
    path = staged(tmp_path, bomb_png(50_000, 50_000), "bomb.png")
    tracemalloc.start()
    started = time.monotonic()
    try:
        info = probe_image(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info is not None
    assert (info.mime, info.width, info.height) == ("image/png", 50_000, 50_000)
    assert peak < 2 * 1024 * 1024  # decoding would need 7.5 GB
    assert time.monotonic() - started < 1
    assert sniff(path, "bomb.png").width == 50_000


# -- check_received ------------------------------------------------------------------------------------


def received(tmp_path: Path, data: bytes) -> Received:
    path = staged(tmp_path, data)
    return Received(
        path, len(data), hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest(), zlib.crc32(data)
    )


def grant(**fields: object) -> UploadGrant:
    return UploadGrant(bucket="b", render_key=lambda _f: "k", **fields)  # type: ignore[arg-type]


IMAGE = MediaInfo(mime="image/png", width=300, height=200, frames=1, image_type="PNG")
TEXT = MediaInfo(mime="text/plain")


def verdict(
    tmp_path: Path, g: UploadGrant, data: bytes = b"x" * 100, info: MediaInfo = IMAGE, name: str = "a.png"
) -> str:
    try:
        check_received(g, received(tmp_path, data), info, name)
    except MediagateError as exc:
        return f"{type(exc).__name__}:{exc.code}"
    return "ok"


def test_no_limits_accepts_anything(tmp_path: Path) -> None:
    assert verdict(tmp_path, grant(), b"", TEXT, None) == "ok"


def test_exact_size(tmp_path: Path) -> None:
    assert verdict(tmp_path, grant(exact_size=100)) == "ok"
    assert verdict(tmp_path, grant(exact_size=99)) == "ChecksumMismatch:checksum_mismatch"
    assert verdict(tmp_path, grant(exact_size=101)) == "ChecksumMismatch:checksum_mismatch"


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 100, "ok"),
        (100, 100, "ok"),
        (101, 200, "PolicyViolation:size_out_of_range"),
        (0, 99, "PolicyViolation:size_out_of_range"),
    ],
)
def test_size_range(tmp_path: Path, low: int, high: int, expected: str) -> None:
    assert verdict(tmp_path, grant(size_range=(low, high))) == expected


def test_content_md5(tmp_path: Path) -> None:
    md5 = hashlib.md5(b"x" * 100).hexdigest()
    assert verdict(tmp_path, grant(content_md5=md5)) == "ok"
    assert verdict(tmp_path, grant(content_md5=md5.upper())) == "ok"
    assert verdict(tmp_path, grant(content_md5="0" * 32)) == "ChecksumMismatch:checksum_mismatch"
    assert verdict(tmp_path, grant(content_md5="short")) == "ChecksumMismatch:checksum_mismatch"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.png", "ok"),
        ("A.PNG", "ok"),
        ("x/y.jpg", "ok"),
        ("a.gif", "PolicyViolation:file_type_not_allowed"),
        ("noext", "PolicyViolation:file_type_not_allowed"),
        (None, "PolicyViolation:file_type_not_allowed"),
    ],
)
def test_allowed_extensions(tmp_path: Path, name: str | None, expected: str) -> None:
    g = grant(allowed_extensions=frozenset({"png", "jpg"}))
    assert verdict(tmp_path, g, name=name) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("patterns", "info", "expected"),
    [
        (("image/*",), IMAGE, "ok"),
        (("image/png",), IMAGE, "ok"),
        (("IMAGE/PNG",), IMAGE, "ok"),
        (("*/*",), TEXT, "ok"),
        (("*",), TEXT, "ok"),
        (("image/jpeg", "text/*"), TEXT, "ok"),
        (("image/*",), TEXT, "PolicyViolation:mime_not_allowed"),
        (("image/jpeg",), IMAGE, "PolicyViolation:mime_not_allowed"),
        (("image",), IMAGE, "PolicyViolation:mime_not_allowed"),
    ],
)
def test_allowed_mime_uses_the_sniffed_type(
    tmp_path: Path, patterns: tuple[str, ...], info: MediaInfo, expected: str
) -> None:
    assert verdict(tmp_path, grant(allowed_mime=patterns), info=info) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"width_range": (300, 300)}, "ok"),
        ({"width_range": (1, 299)}, "PolicyViolation:image_width_out_of_range"),
        ({"width_range": (301, 1000)}, "PolicyViolation:image_width_out_of_range"),
        ({"height_range": (100, 200)}, "ok"),
        ({"height_range": (201, 1000)}, "PolicyViolation:image_height_out_of_range"),
        ({"width_range": (0, 1000), "height_range": (0, 199)}, "PolicyViolation:image_height_out_of_range"),
    ],
)
def test_image_dimensions(tmp_path: Path, fields: dict[str, object], expected: str) -> None:
    assert verdict(tmp_path, grant(**fields)) == expected


def test_dimension_limits_refuse_a_non_image(tmp_path: Path) -> None:
    assert verdict(tmp_path, grant(width_range=(0, 10_000)), info=TEXT) == "UnsupportedMedia:not_an_image"
    assert verdict(tmp_path, grant(height_range=(0, 10_000)), info=TEXT) == "UnsupportedMedia:not_an_image"


def test_errors_carry_statuses_for_the_dialects(tmp_path: Path) -> None:
    with pytest.raises(PolicyViolation) as too_big:
        check_received(grant(size_range=(0, 1)), received(tmp_path, b"xx"), TEXT, None)
    assert too_big.value.status == 403
    with pytest.raises(ChecksumMismatch) as bad_md5:
        check_received(grant(content_md5="0" * 32), received(tmp_path, b"xx"), TEXT, None)
    assert bad_md5.value.status == 400
    with pytest.raises(UnsupportedMedia) as not_image:
        check_received(grant(width_range=(1, 2)), received(tmp_path, b"xx"), TEXT, None)
    assert not_image.value.status == 415
