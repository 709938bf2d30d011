"""The pull-style multipart reader (``mediagate.core.formdata``): fields before files, streaming
parts, and a clear MalformedBody/BadRequest for everything that is not well-formed."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from itertools import pairwise

import pytest

from mediagate.core.errors import BadRequest, MalformedBody
from mediagate.core.formdata import MultipartReader, boundary_from_content_type

BOUNDARY = b"----mediagate-boundary-7MA4YWxkTrZu0gW"


def field(name: str, value: bytes) -> bytes:
    return (
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n' + value + b"\r\n"
    )


def file_part(name: str, filename: str, data: bytes, content_type: str = "image/jpeg") -> bytes:
    return (
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="'
        + name.encode()
        + b'"; filename="'
        + filename.encode()
        + b'"\r\n'
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + data + b"\r\n"
    )


END = b"--" + BOUNDARY + b"--\r\n"


async def split(body: bytes, *cuts: int) -> AsyncIterator[bytes]:
    edges = [0, *cuts, len(body)]
    for a, b in pairwise(edges):
        yield body[a:b]


async def every(body: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


async def collect(reader: MultipartReader) -> list[tuple[str, str | None, str | None, bytes]]:
    """Every part as (name, filename, content type, bytes)."""
    out = []
    while (part := await reader.next_part()) is not None:
        data = b"".join([c async for c in reader.stream()])
        out.append((part.name, part.filename, part.content_type, data))
    return out


def parse(chunks: AsyncIterator[bytes], **limits: int) -> list[tuple[str, str | None, str | None, bytes]]:
    return asyncio.run(collect(MultipartReader(chunks, BOUNDARY, **limits)))


def test_fields_and_file_parts() -> None:
    data = os.urandom(200_000) + b"\r\n--" + BOUNDARY[:-1]  # data that almost looks like a boundary
    body = (
        field("policy", b"eyJhIjoxfQ==")
        + field("signature", "签名".encode())
        + file_part("file", "a.jpg", data)
        + END
    )
    parts = parse(every(body, 4096))
    assert parts == [
        ("policy", None, None, b"eyJhIjoxfQ=="),
        ("signature", None, None, "签名".encode()),
        ("file", "a.jpg", "image/jpeg", data),
    ]


def test_read_text_and_skip_unread_parts() -> None:
    body = field("a", b"1") + file_part("file", "x.bin", b"skipped bytes") + field("b", "二".encode()) + END

    async def run() -> list[str]:
        reader = MultipartReader(every(body, 7), BOUNDARY)
        seen = []
        while (part := await reader.next_part()) is not None:
            seen.append(part.name)
            if not part.is_file:
                seen.append(await reader.read_text(limit=100))
        return seen

    assert asyncio.run(run()) == ["a", "1", "file", "b", "二"]


def test_empty_file_and_empty_form() -> None:
    assert parse(every(file_part("file", "empty.txt", b"") + END, 10)) == [
        ("file", "empty.txt", "image/jpeg", b"")
    ]
    assert parse(every(END, 10)) == []


def test_every_chunk_boundary_gives_the_same_parts() -> None:
    body = field("key", b"value") + file_part("file", "f.bin", b"\r\n--\r\nbytes--") + END
    expected = parse(split(body))
    assert expected[1][3] == b"\r\n--\r\nbytes--"
    for cut in range(1, len(body)):
        assert parse(split(body, cut)) == expected, cut
    assert parse(every(body, 1)) == expected


@pytest.mark.parametrize("keep", [10, 60, 120, -len(END) - 5, -len(END) + 3, -4])
def test_truncated_body_is_malformed(keep: int) -> None:
    body = field("key", b"value") + file_part("file", "f.bin", b"x" * 50) + END
    with pytest.raises(MalformedBody):
        parse(every(body[:keep], 16))


def test_truncated_inside_a_file_surfaces_while_streaming() -> None:
    body = field("key", b"value") + file_part("file", "f.bin", b"x" * 5000)

    async def run() -> bytes:
        reader = MultipartReader(every(body[:-100], 512), BOUNDARY)
        assert (await reader.next_part()) is not None
        assert await reader.read_text(limit=10) == "value"
        part = await reader.next_part()
        assert part is not None and part.filename == "f.bin"
        return b"".join([c async for c in reader.stream()])

    with pytest.raises(MalformedBody):
        asyncio.run(run())


def test_a_body_with_another_boundary_is_malformed() -> None:
    other = field("key", b"value").replace(BOUNDARY, b"something-else") + b"--something-else--\r\n"
    with pytest.raises(MalformedBody):
        parse(every(other, 16))


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "text/plain; boundary=x",
    ],
)
def test_bad_content_type_or_boundary(content_type: str | None) -> None:
    with pytest.raises(BadRequest):
        boundary_from_content_type(content_type)


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=abc", b"abc"),
        ('multipart/form-data; boundary="quoted value"', b"quoted value"),
        ("Multipart/Form-Data; charset=utf-8; boundary=XyZ", b"XyZ"),
    ],
)
def test_boundary_from_content_type(content_type: str, boundary: bytes) -> None:
    assert boundary_from_content_type(content_type) == boundary


def test_too_many_parts() -> None:
    body = b"".join(field(f"f{i}", b"v") for i in range(11)) + END
    assert len(parse(every(body, 64), max_parts=11)) == 11
    with pytest.raises(BadRequest, match="too many"):
        parse(every(body, 64), max_parts=10)


def test_header_too_large() -> None:
    huge = (
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="a"\r\n'
        b"X-Padding: " + b"p" * 20_000 + b"\r\n\r\nvalue\r\n" + END
    )
    with pytest.raises((MalformedBody, BadRequest)):
        parse(every(huge, 1024), max_header_size=16 * 1024)


def test_part_without_a_name_is_malformed() -> None:
    nameless = b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data\r\n\r\nv\r\n" + END
    with pytest.raises(MalformedBody):
        parse(every(nameless, 16))
    no_disposition = b"--" + BOUNDARY + b"\r\nContent-Type: text/plain\r\n\r\nv\r\n" + END
    with pytest.raises(MalformedBody):
        parse(every(no_disposition, 16))


def test_read_text_limits_and_encoding() -> None:
    async def first_text(body: bytes, limit: int) -> str:
        reader = MultipartReader(every(body, 8), BOUNDARY)
        assert await reader.next_part() is not None
        return await reader.read_text(limit=limit)

    assert asyncio.run(first_text(field("a", b"x" * 100) + END, 100)) == "x" * 100
    with pytest.raises(BadRequest, match="too large"):
        asyncio.run(first_text(field("a", b"x" * 101) + END, 100))
    with pytest.raises(BadRequest, match="UTF-8"):
        asyncio.run(first_text(field("a", b"\xff\xfe") + END, 100))
