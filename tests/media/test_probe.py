"""The header probes: ``probe`` (libvips; what uploads are checked against) and ``probe_for_decode``
(Pillow's marker read for JPEGs, used right before a decode), which must agree on every JPEG a
decoder accepts, while what only the decode can refuse is still refused cleanly."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from mediagate.core.errors import UnsupportedMedia
from mediagate.media.limits import ImageLimits
from mediagate.media.probe import probe, probe_for_decode
from mediagate.media.process import process_file
from mediagate.media.spec import parse_thumb


def jpeg(mode: str, orientation: int, *, progressive: bool = False) -> bytes:
    im = Image.new(mode, (37, 23))
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif.tobytes(), progressive=progressive)
    return out.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
@pytest.mark.parametrize("orientation", [0, 1, 3, 5, 6, 8, 9])
def test_both_probes_agree_on_jpegs(tmp_path: Path, mode: str, orientation: int) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg(mode, orientation, progressive=orientation % 2 == 1))
    found = probe_for_decode(path)
    assert found is not None and found == probe(path)
    assert (found.raw_width, found.raw_height) == (37, 23)


def test_mpo_and_truncated_headers_agree(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("RGB", (50, 40)).save(out, "MPO", save_all=True, append_images=[Image.new("RGB", (50, 40))])
    whole = jpeg("RGB", 6)
    for name, data in [("mpo", out.getvalue())] + [(f"cut{n}", whole[:n]) for n in (3, 20, 100, 200)]:
        path = tmp_path / f"{name}.jpg"
        path.write_bytes(data)
        assert probe_for_decode(path) == probe(path), name


def test_corrupt_huffman_tables_pass_the_quick_probe_but_not_the_decode(tmp_path: Path) -> None:
    data = bytearray(jpeg("RGB", 1))
    dht = data.index(b"\xff\xc4")
    data[dht + 5 : dht + 21] = b"\xff" * 16  # code counts summing past 256: a bogus table
    path = tmp_path / "bogus.jpg"
    path.write_bytes(bytes(data))
    assert probe(path) is None  # libvips reads the tables with the header
    assert probe_for_decode(path) is not None  # Pillow's marker read does not
    with pytest.raises(UnsupportedMedia):
        process_file(path, parse_thumb("/fw/16"), tmp_path / "out.jpg", limits=ImageLimits())
    assert not (tmp_path / "out.jpg").exists()
