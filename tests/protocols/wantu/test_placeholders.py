"""Every placeholder of the seed, one row each, rendered into returnBody of a real upload (a JPEG
with EXIF, 40x30), plus placeholders in dir/name and the seed's precedence rules."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.protocols.wantu.client import WantuClient
from tests.protocols.wantu.conftest import jpeg_with_exif

IMAGE = jpeg_with_exif(40, 30, make="Canon", model="EOS 5D")


def _moments(start: datetime, end: datetime) -> list[datetime]:
    """Every second between start and end (the upload happened at one of them)."""
    out, t = [], start.replace(microsecond=0)
    while t <= end:
        out.append(t)
        t += timedelta(seconds=1)
    return out


TimeCheck = Callable[[list[datetime]], set[str]]

ROWS: list[tuple[str, dict[str, str], str | TimeCheck]] = [
    ("${namespace}", {}, "<ns>"),
    ("${mimeType}", {}, "image/jpeg"),
    ("${mediaType}", {}, "image"),
    ("${ext}", {}, "jpeg"),
    ("${year}", {}, lambda ts: {str(t.year) for t in ts}),
    ("${month}", {}, lambda ts: {str(t.month) for t in ts}),
    ("${day}", {}, lambda ts: {str(t.day) for t in ts}),
    ("${hour}", {}, lambda ts: {str(t.hour) for t in ts}),
    ("${minute}", {}, lambda ts: {str(t.minute) for t in ts}),
    ("${second}", {}, lambda ts: {str(t.second) for t in ts}),
    ("${fileSize}", {}, str(len(IMAGE))),
    ("${width}", {}, "40"),
    ("${height}", {}, "30"),
    ("${exif.Make}", {}, "Canon"),
    ("${exif.Model}", {}, "EOS 5D"),
    ("${dir}", {}, "/ph"),
    ("${name}", {}, "x.jpg"),
    ("${cat}", {"var-cat": "tabby"}, "tabby"),
    ("${owner}", {"meta-owner": "alice"}, "alice"),
    ("${cat}", {"var-cat": "from-var", "meta-cat": "from-meta"}, "from-meta"),  # meta > var
    ("${ext}", {"var-ext": "mine", "meta-ext": "mine"}, "jpeg"),  # system > meta > var
    ("${nosuch}", {}, ""),  # unknown placeholders render empty
    ("${exif.NoSuchTag}", {}, ""),
    ("$(fileSize)", {}, str(len(IMAGE))),  # the seed's $(x) spelling
    ("$( filesize)", {}, str(len(IMAGE))),  # ... with a space, lower-case, as in the seed
    ("${FILESIZE}", {}, str(len(IMAGE))),
]


@pytest.mark.parametrize(
    ("template", "fields", "expected"), ROWS, ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)]
)
def test_placeholder(
    wantu: WantuClient, template: str, fields: dict[str, str], expected: str | TimeCheck
) -> None:
    start = datetime.now(UTC)
    policy = wantu.policy(returnBody=f"[{template}]")
    r = wantu.upload(IMAGE, policy=policy, fields={"dir": "/ph", "name": "x.jpg"} | fields)
    end = datetime.now(UTC)
    assert r.status_code == 200, r.text
    rendered = r.json()["returnBody"]
    if callable(expected):
        assert rendered[1:-1] in expected(_moments(start, end))
    else:
        assert rendered == f"[{expected.replace('<ns>', wantu.namespace)}]"


def test_whole_exif_as_json(wantu: WantuClient) -> None:
    r = wantu.upload(IMAGE, policy=wantu.policy(returnBody="${exif}"), fields={"name": "e.jpg"})
    exif = json.loads(r.json()["returnBody"])
    assert exif["Make"] == "Canon" and exif["Model"] == "EOS 5D"


def test_image_placeholders_are_empty_for_other_files(wantu: WantuClient) -> None:
    r = wantu.upload(b"text", policy=wantu.policy(returnBody="[${width}|${exif.Make}]"), fields={"name": "t"})
    assert r.json()["returnBody"] == "[|]"


def test_placeholders_in_dir_and_name(wantu: WantuClient) -> None:
    start = datetime.now(UTC)
    policy = wantu.policy(dir="/${year}/${month}/${day}", name="${hour}-${minute}-${second}-${cat}.${ext}")
    r = wantu.upload(IMAGE, policy=policy, fields={"var-cat": "c"})
    end = datetime.now(UTC)
    assert r.status_code == 200, r.text
    body = r.json()
    expected_dirs = {f"/{t.year}/{t.month}/{t.day}" for t in _moments(start, end)}
    expected_names = {f"{t.hour}-{t.minute}-{t.second}-c.jpeg" for t in _moments(start, end)}
    assert body["dir"] in expected_dirs and body["name"] in expected_names
    assert httpx.get(body["url"]).content == IMAGE


def test_dir_and_name_cannot_render_themselves(wantu: WantuClient) -> None:
    policy = wantu.policy(name="a${name}b${dir}c")
    r = wantu.upload(b"x", policy=policy, fields={"name": "ignored"})
    assert r.json()["name"] == "abc"


def test_mime_type_in_name_is_refused(wantu: WantuClient) -> None:
    r = wantu.upload(IMAGE, policy=wantu.policy(name="${mimeType}"))
    assert r.status_code == 400 and r.json()["code"] == "InvalidArgument"


def test_empty_placeholder_making_a_double_slash_is_refused(wantu: WantuClient) -> None:
    r = wantu.upload(b"x", policy=wantu.policy(dir="/a/${missing}/b", name="n"))
    assert r.status_code == 400 and r.json()["code"] == "InvalidArgument"
