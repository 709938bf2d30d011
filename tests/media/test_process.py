"""The engine, golden: output format, dimensions, orientation and crop position by pixel samples."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from mediagate.core.errors import BadRequest, PayloadTooLarge, UnsupportedMedia
from mediagate.media.limits import ImageLimits
from mediagate.media.meta import image_meta, theme_colors
from mediagate.media.probe import check_limits, probe
from mediagate.media.process import process_file
from mediagate.media.spec import parse_legacy, parse_thumb
from tests.media.conftest import animated_gif, noisy_jpeg, png_bomb, quadrants

LIMITS = ImageLimits()


def near(pixel: tuple[int, ...] | float | None, colour: tuple[int, int, int], tol: int = 40) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tol for a, b in zip(pixel[:3], colour, strict=True))


def run(src: Path, spec: str, tmp_path: Path) -> tuple[Image.Image, object]:
    dest = tmp_path / "out"
    result = process_file(src, parse_thumb(spec), dest, limits=LIMITS)
    im = Image.open(dest)
    assert (im.width, im.height) == (result.width, result.height)
    assert im.format == result.format
    assert result.size == dest.stat().st_size
    return im, result


@pytest.mark.parametrize(
    ("spec", "size"),
    [
        ("/fw/200", (200, 150)),
        ("/fh/150", (200, 150)),
        ("/fwfh/100x100", (100, 75)),
        ("/fwfh/1000x1000", (400, 300)),  # never enlarged
        ("/fwfh2/800x800", (800, 600)),
        ("/fxfn/100x100", (133, 100)),
        ("/both/50x70", (50, 70)),
        ("/sq/64", (64, 64)),
        ("/max/100", (100, 75)),
        ("/min/100", (133, 100)),
        ("/scale/50", (200, 150)),
        ("/wscale/50", (200, 300)),
        ("/hscale/50", (400, 150)),
        ("/crop/100x50a0a0", (100, 50)),
        ("/rotate/90", (300, 400)),
        ("/border/5x7", (410, 314)),
        ("/canvas/500x400a0a0", (500, 400)),
    ],
)
@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_dimensions(spec: str, size: tuple[int, int], suffix: str, tmp_path: Path) -> None:
    src = quadrants(tmp_path / f"src{suffix}")
    im, _ = run(src, spec, tmp_path)
    assert im.size == size
    assert im.format == ("JPEG" if suffix == ".jpg" else "PNG")


@pytest.mark.parametrize(
    ("fmt", "pil"), [("jpg", "JPEG"), ("png", "PNG"), ("webp", "WEBP"), ("gif", "GIF"), ("avif", "AVIF")]
)
def test_output_formats(fmt: str, pil: str, tmp_path: Path) -> None:
    im, _ = run(quadrants(tmp_path / "src.jpg"), f"/fw/100/format/{fmt}", tmp_path)
    assert im.format == pil and im.size == (100, 75)
    assert near(im.convert("RGB").getpixel((10, 10)), (255, 0, 0))


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_exif_orientation_applied_first(suffix: str, tmp_path: Path) -> None:
    # raw 400x300 with orientation 6 (rotate 90 clockwise to view): viewed 300x400, raw top-left
    # red ends up top-right, raw bottom-left blue ends up top-left.
    src = quadrants(tmp_path / f"phone{suffix}", orientation=6)
    assert probe(src) is not None and (probe(src).width, probe(src).height) == (300, 400)  # type: ignore[union-attr]
    im, _ = run(src, "/fw/150", tmp_path)
    assert im.size == (150, 200)
    assert near(im.convert("RGB").getpixel((10, 10)), (0, 0, 255))
    assert near(im.convert("RGB").getpixel((140, 10)), (255, 0, 0))
    assert near(im.convert("RGB").getpixel((140, 190)), (0, 255, 0))
    assert "exif" not in im.info or 0x0112 not in im.getexif()


def test_crop_position_by_gravity(tmp_path: Path) -> None:
    src = quadrants(tmp_path / "q.png")
    im, _ = run(src, "/crop/100x100a0a0/gravity/southeast", tmp_path)
    assert near(im.getpixel((50, 50)), (255, 255, 255), 0)
    im, _ = run(src, "/crop/100x100a210a0", tmp_path)  # northwest, 210 in: inside green
    assert near(im.getpixel((50, 50)), (0, 255, 0), 0)
    im, _ = run(src, "/crop/20x20a0a0/gravity/center", tmp_path)  # straddles the middle
    assert near(im.getpixel((2, 2)), (255, 0, 0), 0) and near(im.getpixel((17, 17)), (255, 255, 255), 0)
    with pytest.raises(BadRequest, match="outside"):
        run(src, "/crop/10x10a500a0", tmp_path)


def test_clip_after_resize_and_rotate_degrees(tmp_path: Path) -> None:
    src = quadrants(tmp_path / "q.png")
    im, _ = run(src, "/fw/200/clip/50x50a0a0/gravity/southwest", tmp_path)
    assert im.size == (50, 50) and near(im.getpixel((25, 25)), (0, 0, 255), 0)
    im, _ = run(src, "/rotate/90", tmp_path)  # clockwise: top-left red goes to top-right
    assert near(im.getpixel((290, 10)), (255, 0, 0), 0) and near(im.getpixel((10, 10)), (0, 0, 255), 0)
    im, _ = run(src, "/rotate/45", tmp_path)
    assert im.width > 400 and im.height > 300


def test_quality_bounds(tmp_path: Path) -> None:
    src = noisy_jpeg(tmp_path / "m.jpg")
    sizes = {}
    for q in (10, 50, 95):
        for fmt in ("jpg", "webp"):
            _, result = run(src, f"/fw/600/quality/{q}/format/{fmt}", tmp_path)
            sizes[fmt, q] = result.size  # type: ignore[attr-defined]
    for fmt in ("jpg", "webp"):
        assert sizes[fmt, 10] < sizes[fmt, 50] < sizes[fmt, 95]


def test_progressive_strip_watermark_unsharp(tmp_path: Path) -> None:
    src = quadrants(tmp_path / "q.jpg", orientation=1)
    im, _ = run(src, "/fw/200/progressive/true/format/jpg/unsharp/true", tmp_path)
    assert im.info.get("progressive") or im.info.get("progression")
    im, _ = run(src, "/strip/false/rotate/180", tmp_path)
    assert im.size == (400, 300)
    plain, _ = run(quadrants(tmp_path / "w.png", 400, 300), "/format/png", tmp_path)
    plain_pixels = plain.convert("RGB").crop((20, 20, 200, 80)).getcolors(100000)
    im, _ = run(
        tmp_path / "w.png", "/watermark/text/SGVsbG8/size/40/color/FFFFFF/margin/20x20/format/png", tmp_path
    )
    marked = im.convert("RGB").crop((20, 20, 200, 80)).getcolors(100000)
    assert plain_pixels is not None and marked is not None and len(marked) > len(plain_pixels)


def test_animated_gif_keeps_frames(tmp_path: Path) -> None:
    src = animated_gif(tmp_path / "a.gif")
    for spec, fmt, size in (("/fw/30", "GIF", (30, 20)), ("/sq/16/format/webp", "WEBP", (16, 16))):
        im, result = run(src, spec, tmp_path)
        assert im.format == fmt and im.size == size
        assert getattr(im, "n_frames", 1) == 4 == result.frames  # type: ignore[attr-defined]
    im, result = run(src, "/fw/30/format/png", tmp_path)
    assert result.frames == 1  # type: ignore[attr-defined]


def test_legacy_rows_process(tmp_path: Path) -> None:
    src = quadrants(tmp_path / "q.jpg")
    expected = {
        ("fix_width", "100"): (100, 75),
        ("fix_height", "100"): (133, 100),
        ("fix_width_or_height", "100x100"): (100, 75),
        ("fix_both", "100x100"): (100, 100),
        ("fix_max", "200"): (200, 150),
        ("fix_min", "150"): (200, 150),
        ("fix_scale", "25"): (100, 75),
    }
    for (kind, value), size in expected.items():
        spec = parse_legacy({"x-gmkerl-type": kind, "x-gmkerl-value": value})
        assert spec is not None
        result = process_file(src, spec, tmp_path / "o.jpg", limits=LIMITS)
        assert (result.width, result.height) == size, kind
        assert Image.open(tmp_path / "o.jpg").size == size


def test_bomb_refused_fast(tmp_path: Path) -> None:
    bomb = png_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 200_000
    start = time.perf_counter()
    with pytest.raises(PayloadTooLarge) as err:
        process_file(bomb, parse_thumb("/fw/100"), tmp_path / "o", limits=LIMITS)
    assert time.perf_counter() - start < 0.5
    assert err.value.code == "image_too_large" and 400 <= err.value.status < 500
    small = png_bomb(tmp_path / "b2.png", side=12000)
    info = probe(small)
    assert info is not None
    with pytest.raises(PayloadTooLarge):
        check_limits(info, LIMITS)  # 144 Mpx > 100 Mpx, though each side is allowed
    with pytest.raises(PayloadTooLarge):
        check_limits(probe(animated_gif(tmp_path / "g.gif")), ImageLimits(max_frames=3))  # type: ignore[arg-type]
    with pytest.raises(PayloadTooLarge, match="3000"):
        process_file(
            quadrants(tmp_path / "q.png"),
            parse_thumb("/scale/1000/format/png"),
            tmp_path / "o",
            limits=ImageLimits(max_output_side=3000),
        )
    assert not (tmp_path / "o").exists()


def test_malformed_inputs_are_4xx(tmp_path: Path) -> None:
    whole = noisy_jpeg(tmp_path / "whole.jpg").read_bytes()
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(whole[: len(whole) // 2])
    half_png = tmp_path / "cut.png"
    half_png.write_bytes(quadrants(tmp_path / "n.png").read_bytes()[:300])
    for src in (truncated, half_png):
        for spec in ("/fw/100", "/fw/100/format/png", "/crop/10x10a0a0"):
            with pytest.raises(UnsupportedMedia) as err:
                process_file(src, parse_thumb(spec), tmp_path / "o", limits=LIMITS)
            assert err.value.status == 415
    renamed = tmp_path / "really-a-png.jpg"
    quadrants(tmp_path / "q.png").rename(renamed)
    result = process_file(renamed, parse_thumb("/fw/100"), tmp_path / "o", limits=LIMITS)
    assert result.format == "PNG"  # sniffed from the bytes, not the name
    text = tmp_path / "photo.jpg"
    text.write_text("this is not an image at all\n")
    with pytest.raises(UnsupportedMedia, match="not an image"):
        process_file(text, parse_thumb("/fw/100"), tmp_path / "o", limits=LIMITS)
    header_only = tmp_path / "header.png"
    header_only.write_bytes(quadrants(tmp_path / "h.png").read_bytes()[:40])
    with pytest.raises(UnsupportedMedia):
        process_file(header_only, parse_thumb("/fw/100"), tmp_path / "o", limits=LIMITS)


def test_meta_and_theme_colours(tmp_path: Path) -> None:
    src = quadrants(tmp_path / "p.jpg", orientation=6)
    meta = image_meta(src)
    assert meta["width"] == 300 and meta["height"] == 400 and meta["frames"] == 1 and meta["type"] == "JPEG"
    assert meta["orientation"] == 6
    assert image_meta(animated_gif(tmp_path / "a.gif"))["frames"] == 4
    colours = theme_colors(quadrants(tmp_path / "q.png"), 4, "hex")
    assert len(colours) == 4 and all(isinstance(c, str) and c.startswith("#") for c in colours)
    got = {tuple(int(str(c)[i : i + 2], 16) for i in (1, 3, 5)) for c in colours}
    for want in ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)):
        assert any(near(g, want, 8) for g in got), want
    dec = theme_colors(quadrants(tmp_path / "q.png"), 4)
    assert all(isinstance(c, int) for c in dec)
    assert any(near((int(c) >> 16, (int(c) >> 8) & 255, int(c) & 255), (255, 0, 0), 8) for c in dec)
    with pytest.raises(UnsupportedMedia):
        image_meta(Path(__file__))


@pytest.mark.parametrize(
    "spec", ["/fw/900/fh/900/force/true", "/both/900x900/force/true", "/crop/2x2a0a0/fw/900"]
)
def test_an_upscaled_animation_is_bounded_by_its_pixels_over_all_frames(spec: str, tmp_path: Path) -> None:
    """Each frame's sides are allowed, but 4 frames of 900x900 are 3.2 Mpx, over a 3 Mpx limit:
    refused before any pixel is made (before, only the sides were checked, so a 1000-frame GIF
    of a few bytes could ask for 1000 frames of 10000x10000)."""
    src = animated_gif(tmp_path / "tiny.gif", frames=4, size=(4, 4))
    limits = ImageLimits(max_pixels=3_000_000)
    with pytest.raises(PayloadTooLarge, match="frame"):
        process_file(src, parse_thumb(spec + "/format/gif"), tmp_path / "o", limits=limits)
    assert not (tmp_path / "o").exists()
    small = process_file(
        src, parse_thumb("/fw/800/fh/800/force/true/format/gif"), tmp_path / "o", limits=limits
    )
    assert small.frames == 4 and (small.width, small.height) == (800, 800)


@pytest.mark.parametrize("fmt", ["webp", "jpg", "gif"])
def test_a_full_disk_while_writing_the_result_is_our_failure_not_a_corrupt_image(
    fmt: str, tmp_path: Path
) -> None:
    """libvips reports a failed write as text; before, it read as 415 'the image is corrupt or
    truncated' for a good image. Now it is the OSError it was (the front door makes it a 507).
    The disk is 'full' by a soft file-size limit on this process (Python ignores SIGXFSZ)."""
    import errno
    import resource

    src = tmp_path / "noise.png"
    Image.effect_noise((400, 400), 80).convert("RGB").save(src)
    dest = tmp_path / f"o.{fmt}"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, hard))
    try:
        with pytest.raises(OSError) as err:
            process_file(src, parse_thumb(f"/quality/100/format/{fmt}"), dest, limits=LIMITS)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert err.value.errno == errno.EFBIG
    assert not dest.exists()
