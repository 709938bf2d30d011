"""Object keys (``mediagate.core.keys``): the one normal form, and everything that could escape."""

from __future__ import annotations

import pytest

from mediagate.core.errors import InvalidKey
from mediagate.core.keys import MAX_KEY_BYTES, normalise_dir, normalise_key, parent_dirs, split_key


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("a.jpg", "a.jpg"),
        ("/a.jpg", "a.jpg"),
        ("/a//b", "a/b"),
        ("//a///b//c.jpg", "a/b/c.jpg"),
        ("a b/中文 名.txt", "a b/中文 名.txt"),
        ("..a/b..", "..a/b.."),  # dots inside a name are just characters
        ("a/.hidden", "a/.hidden"),
        ("x" * MAX_KEY_BYTES, "x" * MAX_KEY_BYTES),
        ("/" + "x" * MAX_KEY_BYTES, "x" * MAX_KEY_BYTES),  # the limit applies to the normal form
    ],
)
def test_normal_form(raw: str, key: str) -> None:
    assert normalise_key(raw) == key
    assert normalise_key(key) == key  # idempotent


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "/",
        "///",
        "..",
        "../etc/passwd",
        "a/../../b",
        "a/..",
        ".",
        "./a",
        "a/./b",
        "a\x00b",
        "a\nb",
        "a\rb",
        "a\tb",
        "\x1f",
        "a\x7fb",
        "a/",  # a trailing slash names a folder
        "/a/b/",
        "x" * (MAX_KEY_BYTES + 1),
        "中" * (MAX_KEY_BYTES // 3 + 1),  # bytes, not characters
    ],
)
def test_refused(raw: str) -> None:
    with pytest.raises(InvalidKey) as info:
        normalise_key(raw)
    assert info.value.status == 400
    assert info.value.code == "invalid_key"


def test_folder_paths_allow_a_trailing_slash() -> None:
    assert normalise_key("a/b/", allow_folder=True) == "a/b"
    assert normalise_key("/a//b//", allow_folder=True) == "a/b"
    for raw in ("/", "", "../", "a/../", "a\x00/"):
        with pytest.raises(InvalidKey):
            normalise_key(raw, allow_folder=True)


@pytest.mark.parametrize(("raw", "path"), [("", ""), ("/", ""), ("//", ""), ("/a/b/", "a/b"), ("a", "a")])
def test_normalise_dir(raw: str, path: str) -> None:
    assert normalise_dir(raw) == path


@pytest.mark.parametrize("raw", ["/\x00", "\n", "../", "/a/./"])
def test_normalise_dir_refuses(raw: str) -> None:
    with pytest.raises(InvalidKey):
        normalise_dir(raw)


def test_split_key_and_parent_dirs() -> None:
    assert split_key("a/b/c.jpg") == ("a/b", "c.jpg")
    assert split_key("c.jpg") == ("", "c.jpg")
    assert parent_dirs("a/b/c") == ["a", "a/b", "a/b/c"]
    assert parent_dirs("") == []
