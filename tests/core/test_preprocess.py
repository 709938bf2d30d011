"""core.preprocess: which processing a grant and a bucket ask for, and running it on staged files."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import anyio
import pytest
from PIL import Image

from mediagate.config import Settings
from mediagate.core.errors import BadRequest, MediagateError, UnsupportedMedia
from mediagate.core.ingest import Received, hash_file
from mediagate.core.preprocess import Normalise, grant_spec, preprocess, versions_of
from mediagate.media.limits import ImageLimits
from mediagate.media.process import Processor


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width``x``height`` with a few bytes of data: a header probe
    sees the size; a decoder would try to allocate it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def staged(tmp_path: Path, data: bytes, name: str = "in") -> Received:
    path = tmp_path / "staging" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return Received(path, *hash_file(path))


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 10)).save(out, format="PNG")
    return out.getvalue()


def run(tmp_path: Path, data: bytes, processing: dict[str, str], bucket: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    settings = Settings(home=tmp_path)
    processor = Processor(ImageLimits.from_settings(settings))
    received = staged(tmp_path, data)
    return anyio.run(lambda: preprocess(settings, processor, processing, bucket, received)), received


def test_normalise_reads_settings_leniently() -> None:
    assert Normalise.of(None) is None
    assert Normalise.of({"strip": False}) is None  # nothing to do
    conf = Normalise.of({"strip": True, "max_side": 2048, "format": "gif", "quality": 500})
    assert conf == Normalise(strip=True, max_side=2048)
    assert Normalise.of({"strip": True, "enabled": False}) is None


def test_normalise_spec_text() -> None:
    conf = Normalise(strip=True, max_side=100, heic_to="jpg", quality=80)
    assert conf.spec_text("JPEG") == "/fwfh/100x100/auto-orient/true/strip/true/quality/80"
    assert conf.spec_text("HEIF") == "/fwfh/100x100/auto-orient/true/strip/true/format/jpg/quality/80"
    assert Normalise(heic_to="avif").spec_text("JPEG") is None
    assert Normalise(heic_to="avif").spec_text("HEIF") == "/auto-orient/true/strip/false/format/avif"


def test_grant_spec_readings() -> None:
    assert grant_spec({}, None) is None
    assert grant_spec({"x-gmkerl-type": "get_meta"}, None) is None
    thumb = grant_spec({"x-gmkerl-thumb": "/fw/300/format/webp"}, None)
    assert thumb is not None and thumb.output_format == "webp"
    version = grant_spec({"x-gmkerl-thumbnail": "small"}, {"versions": {"small": "/sq/64"}})
    assert (
        version is not None
        and version.canonical() == grant_spec({"x-gmkerl-thumb": "/sq/64"}, None).canonical()
    )  # type: ignore[union-attr]
    with pytest.raises(BadRequest, match="no thumbnail version"):
        grant_spec({"x-gmkerl-thumbnail": "big"}, {"versions": {"small": "/sq/64"}})
    with pytest.raises(BadRequest, match="x-gmkerl-rocket"):
        grant_spec({"x-gmkerl-rocket": "1"}, None)
    with pytest.raises(BadRequest):
        grant_spec({"x-gmkerl-type": "get_meta", "x-gmkerl-value": "3"}, None)


def test_grant_spec_applies_old_fields_on_top_of_a_version_or_thumb() -> None:
    versions = {"versions": {"small": "/fw/64/quality/80/rotate/180"}}
    combined = grant_spec(
        {
            "x-gmkerl-thumbnail": "small",
            "x-gmkerl-rotate": "90",
            "x-gmkerl-crop": "10x20a1a2",
            "x-gmkerl-quality": "40",
            "x-gmkerl-exif-switch": "true",
        },
        versions,
    )
    assert combined is not None
    assert combined.resize is not None and combined.resize.text() == "fw/64"  # the version's size
    assert (combined.rotate, combined.quality, combined.strip) == (90, 40, False)
    assert combined.crop is not None and combined.crop.text() == "10x20a1a2"
    only_version = grant_spec({"x-gmkerl-thumbnail": "small", "x-gmkerl-type": "get_meta"}, versions)
    assert only_version is not None and (only_version.rotate, only_version.quality) == (180, 80)
    resized = grant_spec(
        {"x-gmkerl-thumb": "/rotate/90", "x-gmkerl-type": "fix_width", "x-gmkerl-value": "32"}, None
    )
    assert resized is not None and resized.rotate == 90
    assert resized.resize is not None and resized.resize.text() == "fw/32"
    with pytest.raises(BadRequest, match="x-gmkerl-rotate"):
        grant_spec({"x-gmkerl-thumbnail": "small", "x-gmkerl-rotate": "720"}, versions)


def test_versions_of_ignores_malformed_entries() -> None:
    assert versions_of({"versions": {"ok": "/fw/1", "/bad": "/fw/2", "n": 3}}) == {"ok": "/fw/1"}
    assert versions_of({"versions": "nope"}) == {}


def test_preprocess_replaces_the_file_and_rehashes(tmp_path: Path) -> None:
    out, original = run(tmp_path, png(400, 200), {"x-gmkerl-thumb": "/fw/100/format/webp"})
    assert out.processed and out.received.path != original.path
    assert original.path.exists()  # the caller discards it after publishing
    assert (out.received.size, out.received.md5) == hash_file(out.received.path)[:2]
    with Image.open(out.received.path) as im:
        assert (im.format, im.size) == ("WEBP", (100, 50))


def test_preprocess_leaves_non_images_alone_unless_asked(tmp_path: Path) -> None:
    out, original = run(tmp_path, b"text\n", {}, {"normalise": {"strip": True}})
    assert not out.processed and out.received is original
    with pytest.raises(UnsupportedMedia, match="not an image"):
        run(tmp_path, b"text\n", {"x-gmkerl-thumb": "/fw/10"})


@pytest.mark.parametrize(
    "data",
    [bomb_png(50000, 50000), png(300, 300)[:200], b"\x89PNG\r\n\x1a\n" + b"\x00" * 100],
    ids=["bomb", "truncated", "garbage"],
)
def test_preprocess_bad_images_are_4xx_and_leave_no_files(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(MediagateError) as err:
        run(tmp_path, data, {"x-gmkerl-thumb": "/fw/10"})
    assert 400 <= err.value.status < 500
    assert sorted(p.name for p in (tmp_path / "staging").iterdir()) == ["in"]
