"""Wantu management API against a live server: files delete/meta/exist/list, folders
create/delete/exist/list, paging edges, every string-to-sign reading, the task endpoints."""

from __future__ import annotations

import time
from email.utils import formatdate

import httpx
import pytest

from tests.protocols.wantu.client import WantuClient, md5


def _upload(wantu: WantuClient, dir: str, name: str, data: bytes = b"data") -> httpx.Response:
    r = wantu.upload(data, fields={"dir": dir, "name": name})
    assert r.status_code == 200, r.text
    return r


def test_file_meta_exist_delete(wantu: WantuClient) -> None:
    up = _upload(wantu, "/photos", "a.txt", b"hello")
    rid = wantu.file_rid("/photos", "a.txt")
    assert wantu.manage("GET", f"/3.0/files/{rid}/exist").status_code == 200
    meta = wantu.manage("GET", f"/3.0/files/{rid}")
    assert meta.status_code == 200, meta.text
    item = meta.json()
    assert item["namespace"] == wantu.namespace and item["name"] == "a.txt"
    assert item["path"] == "/photos/a.txt" and item["dir"] == "/photos"
    assert item["md5"] == md5(b"hello") and item["size"] == 5
    assert item["mineType"] == item["mimeType"] == "text/plain"
    assert item["url"] == up.json()["url"]
    assert (
        abs(item["createStamp"] - up.json()["fileModified"]) < 1000
        and item["modifyStamp"] >= item["createStamp"]
    )
    assert wantu.manage("DELETE", f"/3.0/files/{rid}").status_code == 200
    assert httpx.get(up.json()["url"]).status_code == 404
    for method, path in (
        ("GET", f"/3.0/files/{rid}/exist"),
        ("GET", f"/3.0/files/{rid}"),
        ("DELETE", f"/3.0/files/{rid}"),
    ):
        gone = wantu.manage(method, path)
        assert gone.status_code == 404 and gone.json()["code"] == "ResourceNotFound"
        assert gone.json()["requestId"] and gone.headers["code"] == "ResourceNotFound"


def test_empty_namespace_means_the_keys_own(wantu: WantuClient) -> None:
    _upload(wantu, "/", "root.txt")
    rid = wantu.file_rid("/", "root.txt", namespace="")
    assert wantu.manage("GET", f"/3.0/files/{rid}/exist").status_code == 200
    listing = wantu.manage("GET", "/3.0/files", query="namespace=&dir=/")
    assert [i["name"] for i in listing.json()["result"]] == ["root.txt"]


def test_folders(wantu: WantuClient) -> None:
    rid = wantu.folder_rid("/albums/2015")
    assert wantu.manage("GET", f"/3.0/folders/{rid}/exist").status_code == 404
    assert wantu.manage("POST", f"/3.0/folders/{rid}").status_code == 200
    assert wantu.manage("GET", f"/3.0/folders/{rid}/exist").status_code == 200
    assert (
        wantu.manage("GET", f"/3.0/folders/{wantu.folder_rid('/albums')}/exist").status_code == 200
    )  # parent
    dup = wantu.manage("POST", f"/3.0/folders/{rid}")
    assert dup.status_code == 400 and dup.json()["code"] == "NameDuplicated"
    root = wantu.manage("POST", f"/3.0/folders/{wantu.folder_rid('/')}")
    assert root.status_code == 400 and root.json()["code"] == "NameDuplicated"
    _upload(wantu, "/albums/2015", "p.txt")
    busy = wantu.manage("DELETE", f"/3.0/folders/{rid}")
    assert busy.status_code == 400 and busy.json()["code"] == "NonEmpty"
    assert wantu.manage("DELETE", f"/3.0/files/{wantu.file_rid('/albums/2015', 'p.txt')}").status_code == 200
    assert wantu.manage("DELETE", f"/3.0/folders/{rid}").status_code == 200
    missing = wantu.manage("DELETE", f"/3.0/folders/{rid}")
    assert missing.status_code == 404 and missing.json()["code"] == "ResourceNotFound"
    assert wantu.manage("GET", f"/3.0/folders/{wantu.folder_rid('/')}/exist").status_code == 200


def test_folder_over_a_file_is_a_duplicate(wantu: WantuClient) -> None:
    _upload(wantu, "/", "taken")
    r = wantu.manage("POST", f"/3.0/folders/{wantu.folder_rid('/taken')}")
    assert r.status_code == 400 and r.json()["code"] == "NameDuplicated"


def test_file_listing_pages(wantu: WantuClient) -> None:
    wantu.manage("POST", f"/3.0/folders/{wantu.folder_rid('/empty')}")
    empty = wantu.manage(
        "GET", "/3.0/files", query=f"namespace={wantu.namespace}&dir=/empty&currentPage=1&pageSize=10"
    )
    assert empty.status_code == 200
    assert empty.json() | {"requestId": ""} == {
        "totalCount": 0,
        "totalPage": 0,
        "currentPage": 1,
        "pageSize": 10,
        "result": [],
        "requestId": "",
    }
    names = [f"f{i:03d}.txt" for i in range(101)]
    for name in names:
        _upload(wantu, "/many", name, name.encode())
    wantu.manage("POST", f"/3.0/folders/{wantu.folder_rid('/many/sub')}")  # folders are not files
    q = f"namespace={wantu.namespace}&dir=/many"

    full = wantu.manage("GET", "/3.0/files", query=f"{q}&currentPage=1&pageSize=100").json()
    assert (full["totalCount"], full["totalPage"], len(full["result"])) == (101, 2, 100)
    assert [i["name"] for i in full["result"]] == names[:100]
    last = wantu.manage("GET", "/3.0/files", query=f"{q}&currentPage=2&pageSize=100").json()
    assert [i["name"] for i in last["result"]] == names[100:]
    assert (
        last["result"][0]["md5"] == md5(names[100].encode()) and last["result"][0]["path"] == "/many/f100.txt"
    )
    past = wantu.manage("GET", "/3.0/files", query=f"{q}&currentPage=3&pageSize=100").json()
    assert past["result"] == [] and past["totalCount"] == 101
    too_big = wantu.manage("GET", "/3.0/files", query=f"{q}&currentPage=1&pageSize=101")
    assert too_big.status_code == 400 and too_big.json()["code"] == "InvalidArgument"
    default = wantu.manage("GET", "/3.0/files", query=q).json()
    assert default["pageSize"] == 20 and len(default["result"]) == 20 and default["totalPage"] == 6
    paged = [
        i["name"]
        for page in range(1, 12)
        for i in wantu.manage("GET", "/3.0/files", query=f"{q}&currentPage={page}&pageSize=10").json()[
            "result"
        ]
    ]
    assert paged == names
    missing = wantu.manage("GET", "/3.0/files", query=f"{q}/nope")
    assert missing.status_code == 404 and missing.json()["code"] == "ResourceNotFound"


def test_folder_listing_pages(wantu: WantuClient) -> None:
    for i in range(5):
        wantu.manage("POST", f"/3.0/folders/{wantu.folder_rid(f'/top/d{i}')}")
    _upload(wantu, "/top", "file-not-folder.txt")
    first = wantu.manage("GET", "/3.0/folders", query="namespace=&dir=/top&currentPage=1&pageSize=2").json()
    assert (first["totalCount"], first["totalPage"]) == (5, 3)
    assert [(f["name"], f["path"]) for f in first["result"]] == [("d0", "/top/d0"), ("d1", "/top/d1")]
    assert set(first["result"][0]) >= {"namespace", "name", "path", "createStamp", "modifyStamp"}
    last = wantu.manage("GET", "/3.0/folders", query="namespace=&dir=/top&currentPage=3&pageSize=2").json()
    assert [f["name"] for f in last["result"]] == ["d4"]
    root = wantu.manage("GET", "/3.0/folders", query="dir=/&pageSize=100").json()
    assert [f["name"] for f in root["result"]] == ["top"]
    empty = wantu.manage("GET", "/3.0/folders", query="dir=/top/d0").json()
    assert empty["totalCount"] == 0 and empty["result"] == []


@pytest.mark.parametrize("form", ["leading-slash", "no-leading-slash", "uri-date", "epoch-ms-date"])
def test_every_string_to_sign_reading(wantu: WantuClient, form: str) -> None:
    _upload(wantu, "/s", "x")
    path = f"/3.0/files/{wantu.file_rid('/s', 'x')}/exist"
    date = formatdate(usegmt=True)
    if form == "leading-slash":
        r = wantu.manage("GET", path, date=date)
    elif form == "no-leading-slash":
        r = wantu.manage("GET", path, date=date, sign_path=path.lstrip("/"))
    elif form == "epoch-ms-date":
        r = wantu.manage("GET", path, date=str(int(time.time() * 1000)))
    else:
        from tests.protocols.wantu.client import b64, hmac_sha1

        to_sign = "uri=" + path + "\ndate=" + date
        token = b64(f"{wantu.ak}:{hmac_sha1(wantu.sk, to_sign)}")
        r = wantu.http.get(path, headers={"Authorization": f"ACL_TOP {token}", "Date": date})
    assert r.status_code == 200, r.text


def test_signed_body_on_post(wantu: WantuClient) -> None:
    body = f"resourceId={wantu.file_rid('/', 'x')}"
    r = wantu.manage("POST", "/3.1/scanPorn", body=body)
    assert r.status_code == 200 and r.json()["result"][0]["status"] == 2  # authenticated: no such file
    unsigned = wantu.manage("POST", "/3.1/scanPorn", body=body, sign_path="/3.1/other")
    assert unsigned.status_code == 401


def test_media_calls_answer_in_wantu_errors(wantu: WantuClient) -> None:
    """The task and moderation calls (tests/protocols/wantu/test_media.py, test_scan.py) refuse
    bad input in the dialect's own error format."""
    scan = wantu.manage("POST", "/3.1/scanPorn", body="resourceId=abc")
    assert scan.status_code == 200 and scan.json()["result"][0]["status"] == 4  # not a resourceId
    feedback = wantu.manage("POST", "/3.0/feedback", body="feedback=%7B%7D")
    assert feedback.status_code == 400 and feedback.json()["code"] == "InvalidArgument"
    task = wantu.manage("GET", "/3.0/mediaEncodeResult/task-1")
    assert task.status_code == 404 and task.json()["code"] == "ResourceNotFound"
    ads = wantu.manage("POST", "/3.1/scanAdvertising", body="resourceId=abc")
    assert ads.status_code == 200 and ads.json()["result"][0]["status"] == 4  # as scanPorn


def test_rename_a_file(wantu: WantuClient) -> None:
    """The PHP SDK's renameFile: ``POST /3.0/files/<rid>/rename/<newRid>``."""
    up = _upload(wantu, "/a", "old.txt", b"renamed bytes")
    old, new = wantu.file_rid("/a", "old.txt"), wantu.file_rid("/b/c", "new.txt")
    r = wantu.manage("POST", f"/3.0/files/{old}/rename/{new}")
    assert r.status_code == 200, r.text
    assert wantu.manage("GET", f"/3.0/files/{old}/exist").status_code == 404
    moved = wantu.manage("GET", f"/3.0/files/{new}").json()
    assert (moved["dir"], moved["name"], moved["md5"]) == ("/b/c", "new.txt", md5(b"renamed bytes"))
    assert httpx.get(moved["url"]).content == b"renamed bytes"
    assert httpx.get(up.json()["url"]).status_code == 404
    assert wantu.manage("GET", f"/3.0/folders/{wantu.folder_rid('/b/c')}/exist").status_code == 200


def test_rename_refuses_to_replace_and_reports_what_is_missing(wantu: WantuClient) -> None:
    _upload(wantu, "/", "one.txt", b"1")
    _upload(wantu, "/", "two.txt", b"2")
    one, two = wantu.file_rid("/", "one.txt"), wantu.file_rid("/", "two.txt")
    taken = wantu.manage("POST", f"/3.0/files/{one}/rename/{two}")
    assert taken.status_code == 400 and taken.json()["code"] == "NameDuplicated"
    assert httpx.get(wantu.manage("GET", f"/3.0/files/{two}").json()["url"]).content == b"2"
    missing = wantu.manage(
        "POST", f"/3.0/files/{wantu.file_rid('/', 'none')}/rename/{wantu.file_rid('/', 'x')}"
    )
    assert missing.status_code == 404 and missing.json()["code"] == "ResourceNotFound"
    same = wantu.manage("POST", f"/3.0/files/{one}/rename/{one}")
    assert same.status_code == 200
    foreign = wantu.manage("POST", f"/3.0/files/{one}/rename/{wantu.file_rid('/', 'y', namespace='other')}")
    assert foreign.status_code == 401 and foreign.json()["code"] == "AuthenticationFailed"
    _upload(wantu, "/dir", "f.txt")
    onto_folder = wantu.manage("POST", f"/3.0/files/{one}/rename/{wantu.file_rid('/', 'dir')}")
    assert onto_folder.status_code == 400 and onto_folder.json()["code"] == "NameDuplicated"
