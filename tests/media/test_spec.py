"""The UPYUN processing grammar: what parses, what it means, and the errors that name the culprit."""

from __future__ import annotations

import pytest

from mediagate.core.errors import BadRequest
from mediagate.media.spec import Box, Resize, parse_legacy, parse_thumb


def test_leading_slash_optional_and_canonical_is_order_free() -> None:
    a = parse_thumb("/fw/300/format/webp/quality/80")
    b = parse_thumb("quality/80/format/WEBP/fw/300")
    assert a == b
    assert a.canonical() == b.canonical() == "/fw/300/format/webp/quality/80"
    assert a.output_format == "webp"
    assert parse_thumb("/fw/300").canonical() != parse_thumb("/fw/301").canonical()


def test_every_resize_mode_parses() -> None:
    assert parse_thumb("/fwfh/300x200").resize == Resize("fwfh", 300, 200)
    assert parse_thumb("/both/30x20").resize == Resize("both", 30, 20)
    assert parse_thumb("/fxfn/30x20").resize == Resize("fxfn", 30, 20)
    for mode in ("fw", "fh", "sq", "max", "min", "scale", "wscale", "hscale"):
        assert parse_thumb(f"/{mode}/50").resize == Resize(mode, 50)


def test_crop_gravity_rotate_and_flags() -> None:
    spec = parse_thumb("/crop/100x50a10a-5/gravity/center/rotate/-90/strip/false/progressive/true")
    assert spec.crop == Box(100, 50, 10, -5)
    assert spec.gravity == "center"
    assert spec.rotate == 270
    assert not spec.strip and spec.progressive
    assert parse_thumb("/rotate/auto").auto_orient


def test_watermark_text_is_base64() -> None:
    spec = parse_thumb("/watermark/text/SGVsbG8/size/20/color/FF0000/align/southeast")
    assert spec.watermark is not None
    assert spec.watermark.text == "Hello"
    assert spec.watermark.align == "southeast"
    assert parse_thumb(spec.canonical()) == spec


@pytest.mark.parametrize(
    ("text", "culprit"),
    [
        ("/fw/abc", "fw"),
        ("/fw/0", "fw"),
        ("/fw/99999", "fw"),
        ("/fwfh/300", "fwfh"),
        ("/fwfh/20000x20000", "fwfh"),
        ("/scale/5000", "scale"),
        ("/quality/101", "quality"),
        ("/format/bmp", "bmp"),
        ("/gravity/up", "gravity"),
        ("/crop/10y10", "crop"),
        ("/rotate/left", "rotate"),
        ("/progressive/maybe", "progressive"),
        ("/bogus/1", "bogus"),
        ("/fw", "fw"),
        ("/watermark/text/!!!", "base64"),
        ("", "empty"),
    ],
)
def test_errors_name_the_bad_parameter(text: str, culprit: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse_thumb(text)
    assert err.value.status == 400
    assert culprit in err.value.message


def test_legacy_table_row_by_row() -> None:
    rows = {
        "fix_width": ("100", Resize("fw", 100)),
        "fix_height": ("100", Resize("fh", 100)),
        "fix_width_or_height": ("480x576", Resize("fwfh", 480, 576)),
        "fix_both": ("480x576", Resize("both", 480, 576)),
        "fix_max": ("100", Resize("max", 100)),
        "fix_min": ("100", Resize("min", 100)),
        "fix_scale": ("50", Resize("scale", 50)),
    }
    for kind, (value, resize) in rows.items():
        spec = parse_legacy({"x-gmkerl-type": kind, "x-gmkerl-value": value})
        assert spec is not None and spec.resize == resize, kind
        assert spec.quality == 95 and spec.unsharp and spec.strip  # the table's defaults


def test_legacy_other_fields() -> None:
    spec = parse_legacy(
        {
            "x-gmkerl-crop": "10x20a1a2",
            "x-gmkerl-rotate": "90",
            "x-gmkerl-quality": "70",
            "x-gmkerl-unsharp": "false",
            "x-gmkerl-exif-switch": "true",
        }
    )
    assert spec is not None
    assert spec.crop == Box(10, 20, 1, 2) and spec.rotate == 90 and spec.quality == 70
    assert not spec.unsharp and not spec.strip
    assert parse_legacy({"x-gmkerl-type": "get_meta"}) is None
    assert parse_legacy({"x-gmkerl-thumbnail": "small"}) is None
    with pytest.raises(BadRequest, match="x-gmkerl-value"):
        parse_legacy({"x-gmkerl-type": "fix_width"})
    with pytest.raises(BadRequest, match="fix_nothing"):
        parse_legacy({"x-gmkerl-type": "fix_nothing", "x-gmkerl-value": "1"})
