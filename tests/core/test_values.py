"""core.values: what the gateway hands the dialects are its own frozen values, never catalog rows."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from mediagate.catalog import models
from mediagate.core import values
from mediagate.core.gateway import Gateway
from mediagate.core.grant import UploadGrant
from mediagate.services import build_gateway
from tests.conftest import make_home

PAIRS: list[tuple[type[Any], type[Any]]] = [
    (values.Bucket, models.Bucket),
    (values.Object, models.Object),
    (values.Folder, models.Folder),
    (values.UploadSession, models.UploadSession),
    (values.UploadPart, models.UploadPart),
    (values.Task, models.Task),
    (values.Feedback, models.Feedback),
]


@pytest.mark.parametrize(("value", "row"), PAIRS)
def test_every_field_of_a_value_is_a_column_of_its_table(value: type[Any], row: type[Any]) -> None:
    columns = {c.key for c in row.__table__.columns}
    assert {f.name for f in dataclasses.fields(value)} <= columns


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    gateway = build_gateway(make_home(tmp_path / "home"))
    gateway.catalog.create_bucket("photos")
    yield gateway
    gateway.catalog.close()


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def test_the_gateway_hands_out_values(gw: Gateway) -> None:
    async def scenario() -> None:
        bucket = await gw.bucket("photos")
        assert type(bucket) is values.Bucket
        grant = UploadGrant(bucket="photos", render_key=lambda _facts: "a/b.txt")
        stored = await gw.upload(grant, one_chunk(b"hello"), filename="b.txt")
        assert type(stored.object) is values.Object
        assert stored.object.id is not None  # the committed row's id, not the pre-commit None
        found = await gw.get_object(bucket, "a/b.txt")
        assert type(found) is values.Object
        assert found == stored.object
        assert type(await gw.stat_path(bucket, "a")) is values.Folder
        session = await gw.start_session(bucket, "upyun", "big.bin")
        assert type(session) is values.UploadSession
        assert type(await gw.session(session.id)) is values.UploadSession

    asyncio.run(scenario())


def test_values_are_frozen(gw: Gateway) -> None:
    bucket = asyncio.run(gw.bucket("photos"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        bucket.name = "other"  # type: ignore[misc]
