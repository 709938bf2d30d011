"""UPYUN save-key templates (``mediagate.core.savekey.render_upyun``), from the seed's table."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mediagate.core.errors import InvalidKey
from mediagate.core.savekey import FileFacts, render_upyun, split_filename

MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def facts(filename: str | None = "sample.jpg", when: datetime | None = None) -> FileFacts:
    return FileFacts(filename=filename, md5=MD5, now=when or datetime(2013, 1, 1, 10, 5, 20, tzinfo=UTC))


def test_seed_example_1_time_and_random() -> None:
    key = render_upyun("/{year}/{mon}/{day}/upload_{random32}{.suffix}", facts())
    assert re.fullmatch(r"2013/01/01/upload_[0-9a-f]{32}\.jpg", key), key


def test_seed_example_2_time_and_filename() -> None:
    when = datetime(2014, 2, 2, 11, 5, 20, tzinfo=UTC)
    key = render_upyun("/{year}/{mon}/{day}/{hour}_{min}_{sec}_{filename}{.suffix}", facts(when=when))
    assert key == "2014/02/02/11_05_20_sample.jpg"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{year}", "2013"),
        ("{mon}", "01"),
        ("{day}", "01"),
        ("{hour}", "10"),
        ("{min}", "05"),
        ("{sec}", "20"),
        ("{filemd5}", MD5),
        ("{filename}", "sample"),
        ("{suffix}", "jpg"),
        ("x{.suffix}", "x.jpg"),
        ("/a/{unknown}/b", "a/{unknown}/b"),  # unknown placeholders stay as written, as UPYUN does
        ("/{YEAR}", "{YEAR}"),
        ("/plain/path.txt", "plain/path.txt"),
    ],
)
def test_every_placeholder(template: str, expected: str) -> None:
    assert render_upyun(template, facts()) == expected


def test_time_is_utc_whatever_the_clock_zone() -> None:
    beijing = timezone(timedelta(hours=8))
    when = datetime(2014, 2, 3, 3, 5, 20, tzinfo=beijing)  # 2014-02-02 19:05:20 UTC
    assert render_upyun("{year}/{mon}/{day}/{hour}", facts(when=when)) == "2014/02/02/19"


@pytest.mark.parametrize(("placeholder", "length"), [("{random}", 16), ("{random32}", 32)])
def test_random_lengths_and_alphabet(placeholder: str, length: int) -> None:
    values = {render_upyun(placeholder, facts()) for _ in range(50)}
    assert len(values) == 50  # random each time
    assert all(re.fullmatch(rf"[0-9a-f]{{{length}}}", v) for v in values), values


def test_two_randoms_in_one_template_differ() -> None:
    a, b = render_upyun("{random}-{random}", facts()).split("-")
    assert a != b


@pytest.mark.parametrize(
    ("filename", "stem", "ext"),
    [
        ("sample.jpg", "sample", "jpg"),
        ("archive.tar.gz", "archive.tar", "gz"),
        ("noext", "noext", ""),
        (".bashrc", ".bashrc", ""),
        ("C:\\Users\\me\\photo.PNG", "photo", "PNG"),
        ("../../etc/passwd.jpg", "passwd", "jpg"),
        ("", "", ""),
        (None, "", ""),
    ],
)
def test_split_filename(filename: str | None, stem: str, ext: str) -> None:
    assert split_filename(filename) == (stem, ext)


@pytest.mark.parametrize(
    "filename", ["../../etc/passwd.jpg", "..\\..\\etc\\passwd.jpg", "/etc/passwd.jpg", "a/../../passwd.jpg"]
)
def test_a_filename_cannot_escape_the_bucket(filename: str) -> None:
    assert render_upyun("/uploads/{filename}{.suffix}", facts(filename)) == "uploads/passwd.jpg"


@pytest.mark.parametrize("filename", ["..", ".", "a/.."])
def test_a_filename_that_is_only_dots_is_refused(filename: str) -> None:
    with pytest.raises(InvalidKey):
        render_upyun("/uploads/{filename}/x", facts(filename))


def test_control_characters_from_the_filename_are_refused() -> None:
    with pytest.raises(InvalidKey):
        render_upyun("/{filename}{.suffix}", facts("evil\x00.jpg"))
    with pytest.raises(InvalidKey):
        render_upyun("/{filename}{.suffix}", facts("line\nbreak.jpg"))


def test_a_template_that_escapes_is_refused() -> None:
    with pytest.raises(InvalidKey):
        render_upyun("/../{filename}", facts())
    with pytest.raises(InvalidKey):
        render_upyun("/dir/", facts())  # names a folder


def test_missing_filename_renders_empty() -> None:
    assert render_upyun("/x/{filename}file{.suffix}", facts(None)) == "x/file"
