"""A block upload keeps the grant it was opened with: every later call needs a token for the same
file, the limits bind the whole file as blocks arrive, and blockComplete may omit md5 (the seed's
example and the JS SDK do) when its parts list accounts for every block."""

from __future__ import annotations

import time

import httpx

from mediagate.core.gateway import Gateway
from tests.protocols.wantu.client import WantuClient, md5


def _ids(r: httpx.Response) -> tuple[str, str]:
    assert r.status_code == 200, r.text
    return r.json()["uploadId"], r.json()["id"]


def test_complete_without_md5_checks_the_parts_list(wantu: WantuClient) -> None:
    auth = wantu.authorization(wantu.policy(dir="/blocks", name="nomd5.bin"))
    upload_id, id_ = _ids(wantu.block_init(b"A" * 1000, auth))
    assert wantu.block_upload(b"B" * 500, auth, upload_id, id_, 2).status_code == 200
    partial = wantu.block_complete(auth, upload_id, id_, [(1, md5(b"A" * 1000))], "")
    assert partial.status_code == 400 and "every uploaded block" in partial.json()["message"], partial.text
    wrong = wantu.block_complete(auth, upload_id, id_, [(1, md5(b"A" * 1000)), (2, md5(b"C" * 500))], "")
    assert wrong.status_code == 400 and wrong.json()["code"] == "InvalidArgument"
    done = wantu.block_complete(auth, upload_id, id_, [(1, md5(b"A" * 1000)), (2, md5(b"B" * 500))], "")
    assert done.status_code == 200, done.text
    assert httpx.get(done.json()["url"]).content == b"A" * 1000 + b"B" * 500


def test_a_token_for_another_file_cannot_continue_the_upload(wantu: WantuClient, admin: Gateway) -> None:
    """The attack from the issue: the init token expires, a second token for another dir/name with
    sizeLimit 10 and insertOnly sends a 5000-byte block and completes under the first name."""
    first = wantu.authorization(
        wantu.policy(dir="/a", name="x.bin", expiration=int(time.time() * 1000) + 1500)
    )
    upload_id, id_ = _ids(wantu.block_init(b"1" * 100, first))
    time.sleep(2)
    expired = wantu.block_upload(b"2" * 100, first, upload_id, id_, 2)
    assert expired.status_code == 401, expired.text

    other = wantu.authorization(wantu.policy(dir="/b", name="y.bin", sizeLimit=10, insertOnly=1))
    block = wantu.block_upload(b"2" * 5000, other, upload_id, id_, 2)
    assert block.status_code == 401 and block.json()["code"] == "AuthenticationFailed", block.text
    done = wantu.block_complete(other, upload_id, id_, [(1, md5(b"1" * 100))], md5(b"1" * 100))
    assert done.status_code == 401, done.text
    assert wantu.block_cancel(other, upload_id, id_).status_code == 401
    assert admin.catalog.get_session(upload_id.lower()) is not None
    assert [p.part_number for p in admin.catalog.parts(upload_id.lower())] == [1]

    renamed = wantu.authorization(wantu.policy(dir="/a", name="other.bin"))
    assert wantu.block_upload(b"2" * 100, renamed, upload_id, id_, 2).status_code == 401


def test_a_fresh_token_for_the_same_file_continues_within_the_stricter_limit(wantu: WantuClient) -> None:
    first = wantu.authorization(wantu.policy(dir="/a", name="same.bin"))
    upload_id, id_ = _ids(wantu.block_init(b"1" * 100, first))
    strict = wantu.authorization(wantu.policy(dir="/a", name="same.bin", sizeLimit=150))
    over = wantu.block_upload(b"2" * 100, strict, upload_id, id_, 2)
    assert over.status_code == 400 and over.json()["code"] == "InvalidArgument", over.text
    fresh = wantu.authorization(wantu.policy(dir="/a", name="same.bin"))
    assert wantu.block_upload(b"2" * 100, fresh, upload_id, id_, 2).status_code == 200
    parts = [(1, md5(b"1" * 100)), (2, md5(b"2" * 100))]
    refused = wantu.block_complete(strict, upload_id, id_, parts, md5(b"1" * 100 + b"2" * 100))
    assert refused.status_code == 400, refused.text
    done = wantu.block_complete(fresh, upload_id, id_, parts, md5(b"1" * 100 + b"2" * 100))
    assert done.status_code == 200, done.text
    assert (done.json()["dir"], done.json()["name"]) == ("/a", "same.bin")


def test_the_size_limit_binds_the_whole_file_as_blocks_arrive(wantu: WantuClient, admin: Gateway) -> None:
    auth = wantu.authorization(wantu.policy(name="limited.bin", sizeLimit=10000))
    upload_id, id_ = _ids(wantu.block_init(b"a" * 6000, auth))
    declared = wantu.block_upload(b"b" * 6000, auth, upload_id, id_, 2)
    assert declared.status_code == 400 and "sizeLimit" in declared.json()["message"], declared.text
    undeclared = wantu.block_upload(b"b" * 6000, auth, upload_id, id_, 2, extra={"size": ""})
    assert undeclared.status_code == 400, undeclared.text
    assert [p.part_number for p in admin.catalog.parts(upload_id.lower())] == [1]
    assert wantu.block_upload(b"b" * 4000, auth, upload_id, id_, 2).status_code == 200
    # replacing block 2 counts its new size only
    assert wantu.block_upload(b"c" * 3000, auth, upload_id, id_, 2).status_code == 200
    parts = [(1, md5(b"a" * 6000)), (2, md5(b"c" * 3000))]
    done = wantu.block_complete(auth, upload_id, id_, parts, "")
    assert done.status_code == 200 and done.json()["fileSize"] == 9000, done.text
