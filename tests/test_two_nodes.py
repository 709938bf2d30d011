"""Two nodes, one catalog: every dialect's uploads continue on whichever node the next request
reaches (round robin, no sticky sessions), a node killed between parts loses nothing, and races
between the nodes are decided by the catalog, not by luck.

The pair shares a PostgreSQL catalog, an S3 bucket (moto), one MEDIAGATE_SECRET_KEY and Redis;
each node has its own home, port and staging (see tests.support.cluster).
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import upyun

from mediagate.core.buckets import BucketCredentials, create_bucket
from tests.conftest import LiveServer
from tests.protocols.imagex.conftest import SEED_SERVICE_ID, png, web_session
from tests.protocols.imagex.test_hostile import apply, commit, put
from tests.protocols.imagex.test_seed import load_seed
from tests.protocols.upyun.forms import Receiver, authorization, http_date, policy_of, post, wait_until
from tests.protocols.upyun.rest_client import sign
from tests.protocols.wantu.client import WantuClient, b64, hmac_sha1, md5
from tests.support.cluster import Balancer, Cluster

pytestmark = pytest.mark.postgres

MIB = 1024 * 1024
T = TypeVar("T")


@pytest.fixture
def creds(cluster: Cluster) -> BucketCredentials:
    return create_bucket(cluster.admin.catalog, cluster.admin.secrets, f"n{uuid.uuid4().hex[:12]}")


def sdk(node: LiveServer, creds: BucketCredentials) -> upyun.UpYun:
    return upyun.UpYun(creds.bucket, creds.operator, creds.password, endpoint=node.endpoint)


def read(up: upyun.UpYun, key: str) -> bytes:
    sink = io.BytesIO()
    up.get(key, sink)
    return sink.getvalue()


@pytest.fixture
def wantu(cluster: Cluster, creds: BucketCredentials) -> Iterator[list[WantuClient]]:
    clients = [
        WantuClient(node.url, creds.access_key_id, creds.secret_access_key, creds.bucket)
        for node in cluster.nodes
    ]
    yield clients
    for client in clients:
        client.close()


def together(call: Callable[[int], T], n: int) -> list[T]:
    """``call(0) … call(n-1)`` released at the same moment from n threads (i % 2 picks the node)."""
    results: list[T | None] = [None] * n
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = call(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [r for r in results if r is not None]


def test_both_nodes_report_every_dependency_healthy(cluster: Cluster) -> None:
    for node in cluster.nodes:
        health = httpx.get(f"{node.url}/healthz").json()
        assert health == {
            "status": "ok",
            "catalog": "ok",
            "storage": "ok",
            "disk": "ok",
            "redis": "ok",
        }


# -- UPYUN -----------------------------------------------------------------------------------------------


def test_upyun_rest_put_on_a_is_read_listed_and_deleted_on_b(
    cluster: Cluster, creds: BucketCredentials
) -> None:
    a, b = sdk(cluster.a, creds), sdk(cluster.b, creds)
    data = os.urandom(300_000)
    a.put("/docs/one.bin", data)
    assert read(b, "/docs/one.bin") == data
    assert [item["name"] for item in b.getlist("/docs")] == ["one.bin"]
    assert httpx.get(f"{cluster.b.url}/{creds.bucket}/docs/one.bin").content == data  # public read
    b.delete("/docs/one.bin")
    with pytest.raises(upyun.UpYunServiceException) as gone:
        a.getinfo("/docs/one.bin")
    assert gone.value.status == 404


def test_upyun_multipart_parts_alternate_and_complete_on_b(
    cluster: Cluster, creds: BucketCredentials
) -> None:
    data = os.urandom(3 * MIB + 4321)
    a, b = sdk(cluster.a, creds), sdk(cluster.b, creds)
    uploader = a.init_multi_uploader("/multi/big.bin", part_size=MIB, file_size=len(data))
    for n, up in zip((3, 0, 2, 1), (b, a, b, a), strict=True):
        uploader.rest = up.up_rest  # the next request lands on the other node
        uploader.upload(n, data[n * MIB : (n + 1) * MIB])
    uploader.rest = b.up_rest
    answer = uploader.complete(multi_md5=hashlib.md5(data).hexdigest())
    assert answer["content-md5"] == hashlib.md5(data).hexdigest()
    assert read(a, "/multi/big.bin") == data


def test_form_upload_on_a_notifies_once_with_a_retry_by_either_node(
    cluster: Cluster, creds: BucketCredentials
) -> None:
    """Both nodes run a delivery loop over one outbox: the notification is delivered, retried after
    the customer's 500, and never twice after the 200 (the delivery lease is the catalog's)."""
    with Receiver([500, 200]) as receiver, httpx.Client(base_url=cluster.a.url) as client:
        date = http_date()
        p = policy_of(creds, "/n/{filename}{.suffix}", date=date, notify_url=receiver.url("/hook"))
        image = png(10, 20)
        r = post(
            client,
            creds.bucket,
            [
                ("policy", p),
                ("authorization", authorization(creds, p, date=date)),
                ("file", ("pic.png", image)),
            ],
        )
        assert r.status_code == 200, r.text
        assert r.json()["url"] == "/n/pic.png"
        assert httpx.get(f"{cluster.b.url}/{creds.bucket}/n/pic.png").content == image
        assert wait_until(lambda: len(receiver.requests) >= 2, timeout=15)
        wait_until(lambda: len(receiver.requests) > 2, timeout=3)
        assert len(receiver.requests) == 2
        assert receiver.requests[0][2] == receiver.requests[1][2]


def test_upyun_uploads_racing_into_new_folders_from_both_nodes(
    cluster: Cluster, creds: BucketCredentials
) -> None:
    """Every upload creates its missing parent folders; eight at once into the same new folders,
    from both nodes, all succeed and leave one of each folder."""
    ups = [sdk(node, creds) for node in cluster.nodes]
    answers = together(lambda i: ups[i % 2].put(f"/deep/a/b/file-{i}.txt", f"body {i}".encode()), 8)
    assert len(answers) == 8
    assert [item["name"] for item in ups[0].getlist("/")] == ["deep"]
    assert [item["name"] for item in ups[1].getlist("/deep/a")] == ["b"]
    assert sorted(item["name"] for item in ups[0].getlist("/deep/a/b")) == sorted(
        f"file-{i}.txt" for i in range(8)
    )


def test_upyun_folder_removed_on_one_node_while_uploads_land_in_it_on_the_other(
    cluster: Cluster, creds: BucketCredentials
) -> None:
    """Every acknowledged upload stays reachable: the removal either finds the folder not empty or
    comes first, and then the upload makes the folder again. (Over HTTP the window is narrow; the
    catalog test of the same race, tests/catalog/test_catalog.py, hits it every time.)"""
    ups = [sdk(node, creds) for node in cluster.nodes]
    for round_ in range(6):
        folder = f"/tmp-{round_}"
        ups[0].mkdir(folder)

        def work(i: int, folder: str = folder) -> str:
            if i == 0:
                try:
                    ups[0].delete(folder)
                except upyun.UpYunServiceException as exc:
                    return f"kept ({exc.status})"
                return "removed"
            ups[1].put(f"{folder}/f{i}.txt", b"x")
            return "stored"

        together(work, 4)
        listed = sorted(item["name"] for item in ups[round_ % 2].getlist(folder))
        assert listed == ["f1.txt", "f2.txt", "f3.txt"], (round_, listed)
        assert f"tmp-{round_}" in [item["name"] for item in ups[0].getlist("/")]


def test_serving_and_processing_on_read_from_either_node(cluster: Cluster, creds: BucketCredentials) -> None:
    """Both nodes make the same variant of an object the other stored (their caches are their own),
    with the same ETag, so a CDN in front sees one object whichever node it reaches."""
    sdk(cluster.a, creds).put("/pic.png", png(400, 300))
    url = f"/{creds.bucket}/pic.png!/fw/100/format/webp"
    answers = [httpx.get(node.url + url) for node in (cluster.b, cluster.a, cluster.b)]
    for r in answers:
        assert r.status_code == 200 and r.headers["content-type"] == "image/webp", r.text
    assert len({r.headers["etag"] for r in answers}) == 1
    assert answers[0].content == answers[1].content
    not_modified = httpx.get(cluster.a.url + url, headers={"If-None-Match": answers[0].headers["etag"]})
    assert not_modified.status_code == 304


# -- Wantu -----------------------------------------------------------------------------------------------


def test_wantu_blocks_alternate_nodes(cluster: Cluster, wantu: list[WantuClient]) -> None:
    data = os.urandom(3 * MIB + 777)
    blocks = [data[:MIB], data[MIB : 2 * MIB], data[2 * MIB : 3 * MIB], data[3 * MIB :]]
    auth = wantu[0].authorization(wantu[0].policy(dir="/blocks", name="file.bin"))
    init = wantu[0].block_init(blocks[0], auth)
    assert init.status_code == 200, init.text
    upload_id, id_ = init.json()["uploadId"], init.json()["id"]
    for n in (4, 2, 3):
        client = wantu[n % 2]
        r = client.block_upload(blocks[n - 1], auth, upload_id, id_, n)
        assert r.status_code == 200, r.text
    parts = [(n, md5(blk).upper()) for n, blk in enumerate(blocks, 1)]
    done = wantu[1].block_complete(auth, upload_id, id_, parts, md5(data))
    assert done.status_code == 200, done.text
    assert httpx.get(f"{cluster.a.url}/{wantu[0].namespace}/blocks/file.bin").content == data


def test_wantu_insert_only_race_has_exactly_one_winner(cluster: Cluster, wantu: list[WantuClient]) -> None:
    for round_ in range(5):
        name = f"race-{round_}.bin"
        bodies = [f"node-{i % 2}-{i}-{round_}".encode() for i in range(4)]
        policies = [wantu[i % 2].policy(insertOnly=1, dir="/race", name=name) for i in range(4)]
        answers = together(lambda i: wantu[i % 2].upload(bodies[i], policy=policies[i]), 4)
        won = [i for i, r in enumerate(answers) if r.status_code == 200]
        assert len(won) == 1, [(r.status_code, r.text) for r in answers]
        for r in answers:
            if r.status_code != 200:
                assert r.status_code == 400 and r.json()["code"] == "NameDuplicated", r.text
        stored = httpx.get(f"{cluster.b.url}/{wantu[0].namespace}/race/{name}").content
        assert stored == bodies[won[0]]


def test_wantu_folder_create_race_has_exactly_one_winner(cluster: Cluster, wantu: list[WantuClient]) -> None:
    for round_ in range(5):
        rid = wantu[0].folder_rid(f"/albums-{round_}/2015")
        answers = together(lambda i, rid=rid: wantu[i % 2].manage("POST", f"/3.0/folders/{rid}"), 4)
        won = [r for r in answers if r.status_code == 200]
        assert len(won) == 1, [(r.status_code, r.text) for r in answers]
        for r in answers:
            if r.status_code != 200:
                assert r.status_code == 400 and r.json()["code"] == "NameDuplicated", r.text
        for client in wantu:
            assert client.manage("GET", f"/3.0/folders/{rid}/exist").status_code == 200


def test_wantu_manage_signature_replayed_on_the_other_node_is_refused(
    cluster: Cluster, wantu: list[WantuClient]
) -> None:
    """A manage signature does not cover the method: the first method it came with is recorded in
    the catalog, so the other node refuses it with another method."""
    stored = wantu[0].upload(b"keep me", fields={"dir": "/", "name": "victim.txt"})
    assert stored.status_code == 200, stored.text
    path = f"/3.0/files/{wantu[0].file_rid('/', 'victim.txt')}"
    date = wantu[0].fresh_date()
    signature = hmac_sha1(wantu[0].sk, f"{path}\n\n{date}")
    token = b64(f"{wantu[0].ak}:{signature}")
    headers = {"Authorization": f"ACL_TOP {token}", "Date": date}
    assert httpx.get(cluster.a.url + path, headers=headers).status_code == 200
    replay = httpx.delete(cluster.b.url + path, headers=headers)
    assert replay.status_code == 401, replay.text
    assert wantu[1].manage("GET", path + "/exist").status_code == 200


# -- ImageX ----------------------------------------------------------------------------------------------


def test_imagex_apply_on_a_upload_and_commit_on_b(cluster: Cluster, creds: BucketCredentials) -> None:
    addr = apply(cluster.a, creds)
    [info] = addr["StoreInfos"]
    image = png(7, 5)
    assert put(cluster.b, info, image).status_code == 200
    done = commit(cluster.b, creds, addr["SessionKey"])
    assert done.status_code == 200, done.text
    [result] = done.json()["Result"]["Results"]
    assert result["UriStatus"] == 2000
    sid, name = info["StoreUri"].removeprefix("tos-cn-i-").split("/", 1)
    assert httpx.get(f"{cluster.a.url}/{sid}/{name}").content == image


def test_imagex_chunked_parts_alternate_nodes(cluster: Cluster, creds: BucketCredentials) -> None:
    addr = apply(cluster.b, creds)
    [info] = addr["StoreInfos"]
    auth = {"Authorization": info["Auth"]}

    def base(node: LiveServer) -> str:
        return f"{node.url}/{info['StoreUri']}"

    upload_id = httpx.put(f"{base(cluster.a)}?uploads", headers=auth).json()["payload"]["uploadID"]
    chunks = [os.urandom(200_000) for _ in range(4)]
    for n in (1, 3, 0, 2):
        node = cluster.nodes[n % 2]
        r = httpx.put(f"{base(node)}?partNumber={n}&uploadID={upload_id}", headers=auth, content=chunks[n])
        assert r.status_code == 200, r.text
    merge = ",".join(f"{n}:{zlib.crc32(c):08x}" for n, c in enumerate(chunks)).encode()
    merged = httpx.put(f"{base(cluster.b)}?uploadID={upload_id}", headers=auth, content=merge)
    assert merged.json()["success"] == 0, merged.text
    assert commit(cluster.a, creds, addr["SessionKey"]).status_code == 200
    sid, name = info["StoreUri"].removeprefix("tos-cn-i-").split("/", 1)
    assert httpx.get(f"{cluster.b.url}/{sid}/{name}").content == b"".join(chunks)


def test_the_dreamina_seed_script_through_a_round_robin_balancer(cluster: Cluster, tmp_path: Path) -> None:
    """The seed's own code, unchanged but for its URLs, pointed at a balancer in front of both
    nodes: each of its four calls (token, apply, upload, commit) opens a new connection, so they
    alternate between the nodes."""
    if cluster.admin.catalog.get_bucket(SEED_SERVICE_ID) is None:
        create_bucket(cluster.admin.catalog, cluster.admin.secrets, SEED_SERVICE_ID)
    balancer = Balancer([node.port for node in cluster.nodes]).start()
    try:
        seed = load_seed(balancer.url)
        image = tmp_path / "cat.png"
        image.write_bytes(png(6, 4))
        uri = seed["upload_image"](web_session(cluster.admin, SEED_SERVICE_ID), str(image))
    finally:
        balancer.stop()
    assert balancer.connections == [cluster.a.port, cluster.b.port] * 2
    name = uri.split("/", 1)[1]
    for node in cluster.nodes:
        assert httpx.get(f"{node.url}/{SEED_SERVICE_ID}/{name}").content == image.read_bytes()


# -- a node dies --------------------------------------------------------------------------------------------


def test_node_killed_while_a_part_streams_in_the_part_is_sent_again_to_the_other(
    cluster: Cluster, creds: BucketCredentials
) -> None:
    data = os.urandom(2 * MIB + 5)
    b = sdk(cluster.b, creds)
    uploader = sdk(cluster.a, creds).init_multi_uploader("/cut.bin", part_size=MIB, file_size=len(data))
    uploader.upload(0, data[:MIB])
    uri = f"/{creds.bucket}/cut.bin"

    def half_then_die() -> Iterator[bytes]:
        yield data[MIB : MIB + MIB // 2]
        cluster.a.kill()
        yield data[MIB + MIB // 2 : 2 * MIB]

    headers = {
        "X-Upyun-Multi-Stage": "upload",
        "X-Upyun-Multi-Uuid": uploader.uuid,
        "X-Upyun-Part-Id": "1",
        "Content-Length": str(MIB),
        **sign(creds, "PUT", uri),
    }
    try:
        with pytest.raises(httpx.TransportError):
            httpx.put(cluster.a.url + uri, content=half_then_die(), headers=headers, timeout=30)
        uploader.rest = b.up_rest
        uploader.upload(1, data[MIB : 2 * MIB])  # the client's retry, which the balancer sends to B
        uploader.upload(2, data[2 * MIB :])
        uploader.complete(multi_md5=hashlib.md5(data).hexdigest())
        assert read(b, "/cut.bin") == data
    finally:
        cluster.a.start()


def test_node_killed_between_parts_the_session_completes_on_the_other(
    cluster: Cluster, creds: BucketCredentials
) -> None:
    data = os.urandom(2 * MIB + 99)
    a, b = sdk(cluster.a, creds), sdk(cluster.b, creds)
    uploader = a.init_multi_uploader("/survivor.bin", part_size=MIB, file_size=len(data))
    uploader.upload(0, data[:MIB])
    uploader.upload(2, data[2 * MIB :])
    cluster.a.kill()  # SIGKILL: no shutdown, nothing flushed, its staging left behind
    try:
        uploader.rest = b.up_rest
        uploader.upload(1, data[MIB : 2 * MIB])
        uploader.complete(multi_md5=hashlib.md5(data).hexdigest())
        assert read(b, "/survivor.bin") == data
    finally:
        cluster.a.start()
    assert read(a, "/survivor.bin") == data


def test_v1_upload_token_uses_are_spent_once_across_both_nodes(
    cluster: Cluster, creds: BucketCredentials
) -> None:
    """Twelve browsers race one 3-use upload token through both nodes at once: the catalog's
    conditional UPDATE lets exactly three in, whichever node each reached; the refused leave no
    object behind. A key revoked on one node stops its tokens on the other at once."""
    from mediagate.core.apikeys import create_key

    key, secret = create_key(cluster.admin.catalog, bucket=creds.bucket, scopes=["write", "admin"])
    auth = {"Authorization": f"Bearer {secret}"}
    made = httpx.post(
        f"{cluster.a.url}/v1/buckets/{creds.bucket}/upload-tokens",
        json={"max_uses": 3, "prefix": "race/"},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    token = {"Authorization": f"Bearer {made.json()['token']}"}
    barrier = threading.Barrier(12)
    outcomes: list[tuple[int, str]] = []

    def upload(n: int) -> None:
        node = cluster.nodes[n % 2]
        barrier.wait()
        r = httpx.put(
            f"{node.url}/v1/buckets/{creds.bucket}/objects/race/{n}.bin",
            content=os.urandom(64 * 1024),
            headers=token,
            timeout=60,
        )
        outcomes.append((r.status_code, r.json().get("error", {}).get("code", "")))

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(outcomes) == [(201, "")] * 3 + [(403, "token_used_up")] * 9, outcomes
    bucket = cluster.admin.catalog.require_bucket(creds.bucket)
    assert len(cluster.admin.catalog.objects_from(bucket.id, "race/")) == 3

    second = httpx.post(
        f"{cluster.b.url}/v1/buckets/{creds.bucket}/upload-tokens", json={"max_uses": 5}, headers=auth
    )
    other = {"Authorization": f"Bearer {second.json()['token']}"}
    assert (
        httpx.put(
            f"{cluster.a.url}/v1/buckets/{creds.bucket}/objects/ok.bin", content=b"1", headers=other
        ).status_code
        == 201
    )
    assert httpx.delete(f"{cluster.b.url}/v1/keys/{key.key_id}", headers=auth).status_code == 200
    late = httpx.put(
        f"{cluster.a.url}/v1/buckets/{creds.bucket}/objects/late.bin", content=b"2", headers=other
    )
    assert late.status_code == 401 and late.json()["error"]["code"] == "invalid_upload_token"
