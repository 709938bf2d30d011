"""Upload-time image processing and normalise-on-ingest, against a live server.

UPYUN FORM (``x-gmkerl-thumb``, the old ``x-gmkerl-type`` table, ``x-gmkerl-thumbnail`` versions,
``get_meta``, ``get_theme_color``), UPYUN REST (``x-gmkerl-thumb`` header) and a bucket's normalise
policy through UPYUN and Wantu uploads: the stored object is the processed image, and the answer
describes it (dimensions, type, size, MD5 of the stored bytes).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from mediagate.bucketconf import update_settings
from mediagate.catalog.models import Object
from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer
from tests.protocols.upyun.forms import staging_is_empty, upload, wait_until
from tests.protocols.upyun.rest_client import object_uri, signed
from tests.protocols.wantu.client import WantuClient


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def png(width: int, height: int, colour: tuple[int, int, int] = (200, 10, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def rotated_jpeg(width: int = 400, height: int = 200) -> bytes:
    """Stored ``width``x``height``, left half red, right half blue, EXIF orientation 6 (displayed
    rotated 90° clockwise: red on top) and a GPS position."""
    im = Image.new("RGB", (width, height), (220, 20, 20))
    im.paste((20, 20, 220), (width // 2, 0, width, height))
    exif = Image.Exif()
    exif[0x0112] = 6
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 29.0)
    out = io.BytesIO()
    im.save(out, format="JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()


def stored_bytes(client: httpx.Client, bucket: str, key: str) -> bytes:
    r = client.get(f"/{bucket}/{key}")
    assert r.status_code == 200, r.text
    return r.content


def stored(admin: Gateway, creds: BucketCredentials, key: str) -> Object:
    bucket = admin.catalog.require_bucket(creds.bucket)
    obj = admin.catalog.get_object(bucket.id, key)
    assert obj is not None
    return obj


def is_upright_red_on_top(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as im:
        assert im.getexif().get(0x0112) in (None, 1)
        rgb = im.convert("RGB")
        w, h = rgb.size
        top, bottom = rgb.getpixel((w // 2, h // 8)), rgb.getpixel((w // 2, h * 7 // 8))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 150 and top[2] < 100, top
    assert bottom[2] > 150 and bottom[0] < 100, bottom


def has_gps(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as im:
        return bool(im.getexif().get_ifd(0x8825))


# -- UPYUN FORM ------------------------------------------------------------------------------------


def test_form_thumb_stores_the_processed_image_and_reports_it(
    client: httpx.Client, admin: Gateway, bucket: BucketCredentials
) -> None:
    r = upload(client, bucket, png(400, 300), key="/t.img", x_gmkerl_thumb="/fw/100/format/webp")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["image-width"], body["image-height"], body["image-type"]) == (100, 75, "WEBP")
    assert body["mimetype"] == "image/webp"
    data = stored_bytes(client, bucket.bucket, "t.img")
    assert body["file_size"] == len(data)
    with Image.open(io.BytesIO(data)) as im:
        assert (im.format, im.size) == ("WEBP", (100, 75))
    obj = stored(admin, bucket, "t.img")
    assert obj.md5 == hashlib.md5(data).hexdigest() and obj.size == len(data)
    assert (obj.width, obj.height, obj.mime) == (100, 75, "image/webp")
    assert wait_until(lambda: staging_is_empty(admin.settings.home), timeout=5)


def test_form_thumb_applies_exif_orientation_first(client: httpx.Client, bucket: BucketCredentials) -> None:
    r = upload(client, bucket, rotated_jpeg(400, 200), key="/o.jpg", x_gmkerl_thumb="/fw/100")
    assert r.status_code == 200, r.text
    assert (r.json()["image-width"], r.json()["image-height"]) == (100, 200)
    data = stored_bytes(client, bucket.bucket, "o.jpg")
    is_upright_red_on_top(data)
    assert not has_gps(data)  # UPYUN strips metadata by default


def test_form_reports_and_checks_the_displayed_size_of_an_exif_rotated_jpeg(
    client: httpx.Client, admin: Gateway, bucket: BucketCredentials
) -> None:
    """400x300 stored, EXIF orientation 6: UPYUN reports (and range-checks) it as 300 wide, 400 high,
    without processing anything: the stored bytes are the uploaded ones."""
    data = rotated_jpeg(400, 300)
    r = upload(client, bucket, data, key="/r.jpg", **{"image-width-range": "0,300"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["image-width"], body["image-height"], body["image-type"]) == (300, 400, "JPEG")
    assert stored_bytes(client, bucket.bucket, "r.jpg") == data
    obj = stored(admin, bucket, "r.jpg")
    assert (obj.width, obj.height) == (300, 400)
    for policy in ({"image-width-range": "0,299"}, {"image-height-range": "0,399"}):
        refused = upload(client, bucket, data, key="/refused.jpg", **policy)
        assert refused.status_code == 403, refused.text
        assert ("width" if "image-width-range" in policy else "height") in refused.json()["message"]
    tall = upload(client, bucket, data, key="/tall.jpg", **{"image-height-range": "400,400"})
    assert tall.status_code == 200, tall.text


@pytest.mark.parametrize(
    ("fields", "size"),
    [
        ({"x-gmkerl-type": "fix_width", "x-gmkerl-value": "100"}, (100, 75)),
        ({"x-gmkerl-type": "fix_height", "x-gmkerl-value": "150"}, (200, 150)),
        ({"x-gmkerl-type": "fix_max", "x-gmkerl-value": "200"}, (200, 150)),
        ({"x-gmkerl-type": "fix_both", "x-gmkerl-value": "50x60"}, (50, 60)),
        ({"x-gmkerl-type": "fix_scale", "x-gmkerl-value": "25"}, (100, 75)),
    ],
)
def test_form_old_gmkerl_fields(
    client: httpx.Client, bucket: BucketCredentials, fields: dict[str, str], size: tuple[int, int]
) -> None:
    p = {k.replace("-", "_"): v for k, v in fields.items()}
    r = upload(client, bucket, png(400, 300), key="/old.png", **p)
    assert r.status_code == 200, r.text
    assert (r.json()["image-width"], r.json()["image-height"]) == size
    with Image.open(io.BytesIO(stored_bytes(client, bucket.bucket, "old.png"))) as im:
        assert im.size == size


def test_form_thumbnail_version_of_the_bucket(
    client: httpx.Client, admin: Gateway, bucket: BucketCredentials
) -> None:
    update_settings(admin, bucket.bucket, {"versions": {"small": "/sq/64/format/png"}})
    r = upload(client, bucket, png(400, 300), key="/v.png", x_gmkerl_thumbnail="small")
    assert r.status_code == 200, r.text
    assert (r.json()["image-width"], r.json()["image-height"], r.json()["image-type"]) == (64, 64, "PNG")


def test_form_thumbnail_version_combined_with_the_other_fields(
    client: httpx.Client, admin: Gateway, bucket: BucketCredentials
) -> None:
    """Seed: x-gmkerl-thumbnail "可搭配其他 x-gmkerl-* 参数使用": crop, rotate, quality and
    exif-switch given next to a version all apply (none is dropped)."""
    update_settings(admin, bucket.bucket, {"versions": {"half": "/fw/200/format/jpg"}})
    original = rotated_jpeg(400, 200)  # displayed 200x400 (EXIF orientation 6), with GPS
    plain = upload(client, bucket, original, key="/plain.jpg", x_gmkerl_thumbnail="half")
    assert plain.status_code == 200, plain.text
    assert (plain.json()["image-width"], plain.json()["image-height"]) == (200, 400)
    r = upload(
        client,
        bucket,
        original,
        key="/combo.jpg",
        x_gmkerl_thumbnail="half",
        x_gmkerl_rotate="90",
        x_gmkerl_crop="200x300a0a0",
        x_gmkerl_quality="30",
        x_gmkerl_exif_switch="true",
    )
    assert r.status_code == 200, r.text
    # crop 200x300 of the displayed image, width 200 from the version, then a quarter turn
    assert (r.json()["image-width"], r.json()["image-height"], r.json()["image-type"]) == (300, 200, "JPEG")
    with Image.open(io.BytesIO(stored_bytes(client, bucket.bucket, "plain.jpg"))) as im:
        assert not im.getexif().get_ifd(0x8825)
        plain_quantisation = sum(im.quantization[0])  # type: ignore[attr-defined]
    with Image.open(io.BytesIO(stored_bytes(client, bucket.bucket, "combo.jpg"))) as im:
        assert im.size == (300, 200)
        assert im.getexif().get_ifd(0x8825)  # exif-switch kept the EXIF (GPS) the version drops
        assert sum(im.quantization[0]) > 2 * plain_quantisation  # type: ignore[attr-defined]  # quality 30


def test_form_get_meta(client: httpx.Client, bucket: BucketCredentials) -> None:
    original = rotated_jpeg(400, 200)
    r = upload(client, bucket, original, key="/m.jpg", x_gmkerl_type="get_meta")
    assert r.status_code == 200, r.text
    meta = r.json()["meta"]
    assert (meta["width"], meta["height"], meta["type"]) == (200, 400, "JPEG")
    assert stored_bytes(client, bucket.bucket, "m.jpg") == original  # get_meta changes nothing


def test_form_get_theme_color(client: httpx.Client, bucket: BucketCredentials) -> None:
    r = upload(
        client,
        bucket,
        png(40, 30, (0x12, 0x34, 0x56)),
        key="/c.png",
        x_gmkerl_type="get_theme_color",
        x_gmkerl_extract_color_count="4",
        x_gmkerl_extract_format="hex",
    )
    assert r.status_code == 200, r.text
    colours = r.json()["theme_color"]
    assert 1 <= len(colours) <= 4
    assert str(colours[0]).lower().lstrip("#") == "123456"
    bad = upload(
        client,
        bucket,
        png(4, 4),
        key="/c2.png",
        x_gmkerl_type="get_theme_color",
        x_gmkerl_extract_color_count="0",
    )
    assert bad.status_code == 400 and "color-count" in bad.json()["message"]


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"this is plain text, not an image at all\n" * 4, 415),
        (rotated_jpeg()[:900], 415),  # truncated JPEG
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 415),  # a PNG signature and garbage
    ],
)
def test_form_thumb_of_a_bad_image_is_a_clear_4xx(
    client: httpx.Client, admin: Gateway, bucket: BucketCredentials, content: bytes, status: int
) -> None:
    r = upload(client, bucket, content, key="/bad.jpg", filename="bad.jpg", x_gmkerl_thumb="/fw/100")
    assert r.status_code == status, r.text
    bucket_row = admin.catalog.require_bucket(bucket.bucket)
    assert admin.catalog.get_object(bucket_row.id, "bad.jpg") is None


def test_form_thumb_of_a_bomb_is_refused_from_the_header(
    client: httpx.Client, bucket: BucketCredentials
) -> None:
    from tests.core.test_preprocess import bomb_png

    r = upload(client, bucket, bomb_png(50000, 50000), key="/bomb.png", x_gmkerl_thumb="/fw/100")
    assert 400 <= r.status_code < 500, r.text


# -- UPYUN REST ------------------------------------------------------------------------------------


def test_rest_put_with_thumb_header(client: httpx.Client, admin: Gateway, bucket: BucketCredentials) -> None:
    r = signed(
        client,
        bucket,
        "PUT",
        object_uri(bucket.bucket, "r.png"),
        content=png(400, 300),
        headers={"x-gmkerl-thumb": "/fwfh/80x80"},
    )
    assert r.status_code == 200, r.text
    assert (r.headers["x-upyun-width"], r.headers["x-upyun-height"]) == ("80", "60")
    data = stored_bytes(client, bucket.bucket, "r.png")
    assert r.headers["content-md5"] == hashlib.md5(data).hexdigest()


def test_rest_put_get_meta_answers_json(client: httpx.Client, bucket: BucketCredentials) -> None:
    body = png(30, 20)
    uri = object_uri(bucket.bucket, "meta.png")
    r = signed(client, bucket, "PUT", uri, content=body, headers={"x-gmkerl-type": "get_meta"})
    assert r.status_code == 200, r.text
    assert (r.json()["meta"]["width"], r.json()["meta"]["height"]) == (30, 20)


# -- normalise on ingest ------------------------------------------------------------------------------


def test_normalise_through_upyun_form(
    client: httpx.Client, admin: Gateway, bucket: BucketCredentials
) -> None:
    update_settings(admin, bucket.bucket, {"normalise": {"strip": True, "max_side": 150}})
    r = upload(client, bucket, rotated_jpeg(400, 200), key="/n.jpg", filename="n.jpg")
    assert r.status_code == 200, r.text
    assert (r.json()["image-width"], r.json()["image-height"]) == (75, 150)
    data = stored_bytes(client, bucket.bucket, "n.jpg")
    is_upright_red_on_top(data)
    assert not has_gps(data)
    assert r.json()["file_size"] == len(data)
    # a small image is not enlarged, and non-images pass untouched
    small = upload(client, bucket, png(40, 30), key="/s.png")
    assert (small.json()["image-width"], small.json()["image-height"]) == (40, 30)
    text = upload(client, bucket, b"plain text\n", key="/t.txt", filename="t.txt")
    assert text.status_code == 200 and stored_bytes(client, bucket.bucket, "t.txt") == b"plain text\n"


def test_normalise_checks_apply_to_the_result(
    client: httpx.Client, admin: Gateway, bucket: BucketCredentials
) -> None:
    update_settings(admin, bucket.bucket, {"normalise": {"max_side": 100}})
    r = upload(client, bucket, png(400, 300), key="/w.png", image_width_range="1,100")
    assert r.status_code == 200, r.text
    assert r.json()["image-width"] == 100


def test_normalise_converts_format_through_wantu(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    update_settings(
        admin, bucket.bucket, {"normalise": {"strip": True, "format": "webp", "quality": 70, "max_side": 120}}
    )
    wantu = WantuClient(server.url, bucket.access_key_id, bucket.secret_access_key, bucket.bucket)
    try:
        r = wantu.upload(rotated_jpeg(400, 200), fields={"dir": "/", "name": "w.jpg"})
    finally:
        wantu.close()
    assert r.status_code == 200, r.text
    obj = stored(admin, bucket, "w.jpg")
    assert (obj.mime, obj.width, obj.height) == ("image/webp", 60, 120)
    assert r.json()["fileSize"] == obj.size and r.json()["mimeType"] == "image/webp"
    with httpx.Client(base_url=server.url) as c:
        data = stored_bytes(c, bucket.bucket, "w.jpg")
    assert hashlib.md5(data).hexdigest() == obj.md5
    is_upright_red_on_top(data)
    assert not has_gps(data)
