"""/v1 tasks and notifications against a live server: an UPYUN FORM upload asks for a thumbnail
task and a notify-url; the API lists and shows both, retries and redelivers, and keeps each
bucket's to its own keys."""

from __future__ import annotations

import uuid

import httpx

from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer
from tests.protocols.native.api import client, error_of, new_key
from tests.protocols.upyun.forms import Receiver, policy_of, post, signature, wait_until
from tests.tasks.test_engine import jpeg


def _upload_with_task_and_notify(server: LiveServer, creds: BucketCredentials, receiver: Receiver) -> str:
    p = policy_of(
        creds,
        "/a.jpg",
        apps=[{"name": "thumb", "x-gmkerl-thumb": "/fw/10", "save_as": "/a-small.jpg"}],
        notify_url=receiver.url("/hook"),
    )
    with httpx.Client(base_url=server.url) as c:
        answer = post(
            c, creds.bucket, [("policy", p), ("signature", signature(creds, p)), ("file", ("a.jpg", jpeg()))]
        )
    assert answer.status_code == 200, answer.text
    (task_id,) = answer.json()["task_ids"]
    return str(task_id)


def test_tasks_and_deliveries(server: LiveServer, admin: Gateway, bucket: BucketCredentials) -> None:
    b = bucket.bucket
    with Receiver() as receiver, client(server.url, new_key(admin, b, "read,admin")) as api:
        task_id = _upload_with_task_and_notify(server, bucket, receiver)
        assert wait_until(lambda: api.get(f"/v1/tasks/{task_id}").json()["status"] == "done", timeout=30)
        task = api.get(f"/v1/tasks/{task_id}").json()
        assert task["bucket"] == b and task["kind"] and task["source"] == "/a.jpg"
        assert task_id in [t["id"] for t in api.get("/v1/tasks").json()["tasks"]]
        assert [t["id"] for t in api.get("/v1/tasks", params={"status": "failed"}).json()["tasks"]] == []
        assert error_of(api.post(f"/v1/tasks/{task_id}/retry")) == (409, "conflict")
        assert error_of(api.get("/v1/tasks/nope")) == (404, "task_not_found")
        assert error_of(api.get("/v1/tasks", params={"status": "bogus"})) == (400, "invalid_request")

        def delivered() -> list[dict[str, object]]:
            rows = api.get("/v1/deliveries", params={"status": "delivered"}).json()["deliveries"]
            return [d for d in rows if str(d["url"]).endswith("/hook")]

        assert wait_until(lambda: len(delivered()) >= 1, timeout=30)
        first = delivered()[0]
        shown = api.get(f"/v1/deliveries/{first['id']}").json()
        assert shown["bucket"] == b and shown["attempts"] >= 1 and shown["last_status_code"] == 200
        before = len(receiver.requests)
        again = api.post(f"/v1/deliveries/{first['id']}/redeliver")
        assert again.status_code == 200 and again.json()["status"] == "pending"
        assert wait_until(lambda: len(receiver.requests) > before, timeout=30)
        assert wait_until(lambda: len(api.get(f"/v1/deliveries/{first['id']}").json()["history"]) == 2)
        history = api.get(f"/v1/deliveries/{first['id']}").json()["history"]  # newest first
        assert [(a["attempt"], a["ok"], a["status_code"], a["error"]) for a in history] == [
            (1, True, 200, None),
            (1, True, 200, None),
        ]
        assert history[0]["at"] >= history[1]["at"]
        assert "history" not in api.get("/v1/deliveries").json()["deliveries"][0] or all(
            d["history"] is None for d in api.get("/v1/deliveries").json()["deliveries"]
        )
        assert error_of(api.get("/v1/deliveries/999999999")) == (404, "delivery_not_found")

    with client(server.url, new_key(admin, b, "read")) as reader:
        assert error_of(reader.post(f"/v1/tasks/{task_id}/retry")) == (403, "insufficient_scope")
        assert error_of(reader.post(f"/v1/deliveries/{first['id']}/redeliver")) == (403, "insufficient_scope")

    other = create_bucket(admin.catalog, admin.secrets, f"o{uuid.uuid4().hex[:10]}").bucket
    with client(server.url, new_key(admin, other, "read,write,admin")) as outsider:
        assert error_of(outsider.get(f"/v1/tasks/{task_id}")) == (404, "task_not_found")
        assert error_of(outsider.get(f"/v1/deliveries/{first['id']}")) == (404, "delivery_not_found")
        assert error_of(outsider.post(f"/v1/deliveries/{first['id']}/redeliver")) == (
            404,
            "delivery_not_found",
        )
        assert outsider.get("/v1/tasks").json()["tasks"] == []
        assert outsider.get("/v1/deliveries").json()["deliveries"] == []
        assert error_of(outsider.get("/v1/tasks", params={"bucket": b})) == (403, "bucket_forbidden")
