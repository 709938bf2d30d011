"""The page at ``/ui/`` (``src/mediagate/web/static``) in a real browser: Debian's headless Chromium
driven by Playwright, against a live mediagate, through everything a person does with it.

Log in with an API key; browse folders with thumbnails; preview an image and play a video; copy
the URL and snippets; delete; upload several files at once through Uppy's tus plugin (one of
them interrupted mid-way and resumed), paste an image, drop a file; a private bucket; the admin
views; a phone's width; axe-core's accessibility rules. Every step keeps a screenshot under
``tests/artifacts/screenshots/``. Throughout: no script error, no Content
Security Policy violation, the key never in a URL nor in the server's log, and a hostile object
key shown as text, never run.

The page needs the ``/v1`` API (branch s4-v1) and tus (branch s4-tus); while one is missing from
this tree, the tests that need it skip and say which.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from PIL import Image

from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer
from tests.protocols.upyun.forms import Receiver, upload, wait_until
from tests.support.browser import screenshot
from tests.tasks.test_engine import jpeg

DATA = Path(__file__).with_name("data")
HOSTILE = '"><img src=x onerror="window.__pwned=1">.png'
VIEWPORT = {"width": 1280, "height": 860}
MIMES = {"png": "image/png", "bin": "application/octet-stream"}
MIB = 1024 * 1024


def png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def require_v1(server: LiveServer) -> None:
    resp = httpx.get(f"{server.url}/v1/me")
    is_json = resp.headers.get("content-type", "").startswith("application/json")
    if resp.status_code != 401 or not is_json or "error" not in resp.json():
        pytest.skip("the /v1 API (branch s4-v1) is not in this tree: GET /v1/me is not its 401")


def require_tus(server: LiveServer, bucket: str) -> None:
    if "tus-version" not in httpx.options(f"{server.url}/v1/tus/{bucket}/").headers:
        pytest.skip("tus at /v1/tus/ (branch s4-tus) is not in this tree: OPTIONS has no Tus-Version")


def api_key(admin: Gateway, bucket: str, scopes: tuple[str, ...] = ("read", "write", "admin")) -> str:
    from mediagate.core import apikeys

    _, secret = apikeys.create_key(admin.catalog, bucket=bucket, scopes=scopes, label="browser test")
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def put(server: LiveServer, secret: str, bucket: str, key: str, body: bytes, mime: str) -> None:
    resp = httpx.put(
        f"{server.url}/v1/buckets/{bucket}/objects/{quote(key)}",
        content=body,
        headers={**bearer(secret), "Content-Type": mime},
    )
    assert resp.status_code == 201, resp.text


def public(server: LiveServer, bucket: str, key: str) -> httpx.Response:
    return httpx.get(f"{server.url}/{bucket}/{quote(key)}")


@dataclass
class Browsing:
    """One browser context logged in as ``secret``, recording what could go wrong."""

    page: Any
    secret: str
    problems: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def check(self) -> None:
        assert not self.problems, "\n".join(self.problems)
        assert not [u for u in self.urls if self.secret in u], "the key appeared in a URL"
        assert self.page.evaluate("window.__pwned") is None, "a hostile key ran as markup"


def open_page(
    chromium: Any, server: LiveServer, secret: str, viewport: dict[str, int] = VIEWPORT
) -> Browsing:
    permissions = ["clipboard-read", "clipboard-write"]
    context = chromium.new_context(viewport=viewport, permissions=permissions)
    page = context.new_page()
    run = Browsing(page, secret)

    def console(msg: Any) -> None:
        text = msg.text
        if "Content Security Policy" in text or (msg.type == "error" and "Failed to load" not in text):
            run.problems.append(f"console {msg.type}: {text}")

    page.on("console", console)
    page.on("pageerror", lambda exc: run.problems.append(f"page error: {exc}"))
    page.on("request", lambda req: (run.urls.append(req.url), run.requests.append((req.method, req.url))))
    page.on("dialog", lambda dialog: dialog.accept())  # the page's confirm() before delete/revoke
    return run


def log_in(run: Browsing, server: LiveServer) -> None:
    page = run.page
    page.goto(f"{server.url}/ui/")
    page.get_by_label("API key").fill(run.secret)
    page.get_by_role("button", name="Log in").click()
    page.locator("#logout").wait_for()
    assert page.evaluate("sessionStorage.getItem('mediagate.apiKey')") == run.secret
    assert run.secret not in page.url


@pytest.fixture
def seeded(server: LiveServer, admin: Gateway, bucket: BucketCredentials) -> Iterator[tuple[str, str]]:
    require_v1(server)
    secret = api_key(admin, bucket.bucket)
    put(server, secret, bucket.bucket, "photos/cat.png", png(640, 480, (200, 90, 40)), "image/png")
    put(server, secret, bucket.bucket, "photos/dog.png", png(300, 500, (40, 120, 200)), "image/png")
    put(server, secret, bucket.bucket, "videos/clip.webm", (DATA / "clip.webm").read_bytes(), "video/webm")
    put(server, secret, bucket.bucket, HOSTILE, png(64, 64, (0, 0, 0)), "image/png")
    put(server, secret, bucket.bucket, "readme.txt", b"hello from the browser test\n", "text/plain")
    yield bucket.bucket, secret
    assert secret not in server.log(), "the key was written to the server's log"
    assert "mgt_" not in server.log(), "an upload token was written to the server's log"


def test_log_in_browse_preview_copy_and_delete(
    chromium: Any, server: LiveServer, seeded: tuple[str, str]
) -> None:
    bucket, secret = seeded
    run = open_page(chromium, server, secret)
    page = run.page
    log_in(run, server)

    # The bucket's root: two folders, the hostile key and a text file, as text.
    page.locator("li.card.folder", has_text="photos/").wait_for()
    assert page.locator("li.card.folder").count() == 2
    hostile = page.locator("li.card.file .name", has_text=HOSTILE)
    assert hostile.inner_text() == HOSTILE
    assert page.locator("img[onerror]").count() == 0
    screenshot(page, "01-root")

    # Into a folder: thumbnails are the on-the-fly variants, really decoded.
    page.locator("a.folder-link", has_text="photos/").click()
    cat = page.locator("li.card.file", has_text="cat.png")
    cat.wait_for()
    thumb = cat.locator("img")
    thumb.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    assert thumb.get_attribute("src") == f"/{bucket}/photos/cat.png!/fw/256"
    assert page.evaluate("img => img.naturalWidth", thumb.element_handle()) == 256
    screenshot(page, "02-folder-thumbnails")

    # Preview, facts and snippets; copy the URL and the Markdown.
    cat.get_by_role("button", name="Preview cat.png").click()
    dialog = page.locator("dialog#preview")
    preview = dialog.locator("img.preview-media")
    preview.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth === 640", arg=preview.element_handle())
    url = f"{server.url}/{bucket}/photos/cat.png"
    assert dialog.get_by_label("URL of cat.png").input_value() == url
    assert dialog.get_by_label("Markdown of cat.png").input_value() == f"![cat.png]({url})"
    assert dialog.get_by_label("HTML of cat.png").input_value() == f'<img src="{url}" alt="cat.png">'
    screenshot(page, "03-preview")
    dialog.get_by_role("button", name="Copy URL").click()
    dialog.get_by_text("Copied.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == url
    dialog.get_by_role("button", name="Copy Markdown").click()
    page.wait_for_function("async () => (await navigator.clipboard.readText()).startsWith('![cat.png]')")

    # Delete: the card goes, and the public URL answers 404.
    dialog.get_by_role("button", name="Delete").click()
    cat.wait_for(state="detached")
    assert public(server, bucket, "photos/cat.png").status_code == 404
    assert page.locator("li.card.file", has_text="dog.png").count() == 1
    screenshot(page, "04-after-delete")

    # A video plays in the preview.
    page.get_by_role("link", name=bucket).click()
    page.locator("a.folder-link", has_text="videos/").click()
    page.get_by_role("button", name="Preview clip.webm").click()
    video = dialog.locator("video.preview-media")
    video.wait_for()
    page.wait_for_function("v => v.readyState >= 2 && v.videoWidth === 160", arg=video.element_handle())
    page.evaluate("v => { v.muted = true; return v.play(); }", video.element_handle())
    page.wait_for_function("v => v.currentTime > 0", arg=video.element_handle())
    screenshot(page, "05-video")
    dialog.get_by_role("button", name="Close").click()

    # The hostile key previews as text too.
    page.get_by_role("link", name=bucket).click()
    page.get_by_role("button", name=f"Preview {HOSTILE}").click()
    assert dialog.locator("#preview-title").inner_text() == HOSTILE
    dialog.get_by_role("button", name="Close").click()
    run.check()


def test_upload_several_files_resume_paste_and_drop(
    chromium: Any, server: LiveServer, seeded: tuple[str, str]
) -> None:
    bucket, secret = seeded
    require_tus(server, bucket)
    run = open_page(chromium, server, secret)
    page = run.page
    big = bytes(uuid.uuid4().bytes * (9 * 1024 * 1024 // 16 + 1))[: 9 * 1024 * 1024 + 123]
    files = {
        "red.png": png(120, 80, (220, 30, 30)),
        "green.png": png(80, 120, (30, 200, 60)),
        "big.bin": big,
    }
    # The second PATCH of big.bin (its second 8 MiB chunk) is cut once: tus-js-client asks for the
    # offset and resumes from it.
    cut: list[str] = []

    def interrupt(route: Any) -> None:
        request = route.request
        if request.method == "PATCH" and request.headers.get("upload-offset", "0") != "0" and not cut:
            cut.append(request.url)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/v1/tus/**", interrupt)
    log_in(run, server)
    page.locator("a.folder-link", has_text="photos/").click()
    page.locator("li.card.file", has_text="dog.png").wait_for()
    page.locator("input.uppy-Dashboard-input").first.set_input_files(
        [
            {"name": name, "mimeType": MIMES[name.rsplit(".", 1)[1]], "buffer": body}
            for name, body in files.items()
        ]
    )
    for name in files:
        page.locator("li.card.file", has_text=name).wait_for(timeout=60_000)
    assert page.locator(".uppy-Dashboard-Item").count() == 3
    assert page.locator(".uppy-Dashboard-Item.is-complete").count() == 3
    screenshot(page, "06-uploaded")
    for name, body in files.items():
        resp = public(server, bucket, f"photos/{name}")
        assert resp.status_code == 200, name
        assert hashlib.md5(resp.content).digest() == hashlib.md5(body).digest(), name
    assert cut, "no chunk of big.bin was interrupted"
    after = run.requests[[u for _, u in run.requests].index(cut[0]) + 1 :]
    assert ("HEAD", cut[0]) in after, "the upload did not ask for its offset after the cut"
    assert any(m == "POST" and u.endswith(f"/v1/tus/{bucket}/") for m, u in run.requests)

    # Paste an image from the clipboard (a PNG drawn on a canvas).
    page.evaluate(
        """async () => {
            const canvas = document.createElement('canvas');
            canvas.width = 50; canvas.height = 40;
            const g = canvas.getContext('2d'); g.fillStyle = '#3a6'; g.fillRect(0, 0, 50, 40);
            const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
            const data = new DataTransfer();
            data.items.add(new File([blob], 'image.png', { type: 'image/png' }));
            document.querySelector('main').dispatchEvent(
                new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
        }"""
    )
    pasted = page.locator("li.card.file", has_text="pasted-")
    pasted.wait_for(timeout=30_000)
    key = pasted.get_attribute("data-key")
    assert key and key.startswith("photos/pasted-") and key.endswith(".png")
    with Image.open(io.BytesIO(public(server, bucket, key).content)) as img:
        assert img.size == (50, 40)
    screenshot(page, "07-pasted")

    # Drag and drop a file onto the Dashboard.
    page.evaluate(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File(['dropped by a test'], 'dropped.txt', { type: 'text/plain' }));
            const target = document.querySelector('.uppy-Dashboard-inner');
            for (const type of ['dragenter', 'dragover', 'drop']) {
                const init = { dataTransfer: data, bubbles: true, cancelable: true };
                target.dispatchEvent(new DragEvent(type, init));
            }
        }"""
    )
    page.locator("li.card.file", has_text="dropped.txt").wait_for(timeout=30_000)
    assert public(server, bucket, "photos/dropped.txt").content == b"dropped by a test"
    run.check()


def test_an_upload_resumes_after_a_page_reload(
    chromium: Any, server: LiveServer, seeded: tuple[str, str], tmp_path: Path
) -> None:
    """A large upload is cut after its first 8 MiB chunk and the page reloaded: the same file added
    again asks the server for its offset (HEAD, with the upload token kept in sessionStorage) and
    sends only the rest; no second upload is created."""
    bucket, secret = seeded
    require_tus(server, bucket)
    run = open_page(chromium, server, secret)
    page = run.page
    body = os.urandom(9 * MIB + 321)
    path = tmp_path / "resumed.bin"  # from disk: the same file (name, size, mtime) when re-added
    path.write_bytes(body)
    cut: list[str] = []

    def refuse_the_rest(route: Any) -> None:
        request = route.request
        if request.method == "PATCH" and request.headers.get("upload-offset", "0") != "0":
            cut.append(request.url)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/v1/tus/**", refuse_the_rest)
    log_in(run, server)
    page.locator("a.folder-link", has_text="photos/").click()
    page.locator("li.card.file", has_text="dog.png").wait_for()
    page.locator("input.uppy-Dashboard-input").first.set_input_files(str(path))
    for _ in range(300):
        if cut:
            break
        page.wait_for_timeout(100)
    assert cut, "the second chunk was never sent"
    upload_url = cut[0]
    kept = page.evaluate("Object.fromEntries(Object.entries(sessionStorage))")
    tus = [json.loads(v) for k, v in kept.items() if k.startswith(f"mediagate.tus:{bucket}:photos/::")]
    assert [t["uploadUrl"] for t in tus] == [upload_url]
    tokens = [v for k, v in kept.items() if k.startswith(f"mediagate.uploadToken:{bucket}:photos/::")]
    assert len(tokens) == 1 and tokens[0].startswith("mgt_")
    assert page.evaluate("localStorage.length") == 0, "nothing of an upload in localStorage"
    screenshot(page, "19-upload-cut")
    page.unroute("**/v1/tus/**")

    page.reload()  # same tab: sessionStorage (the key, the token, the tus URL) survives
    page.locator("li.card.file", has_text="dog.png").wait_for()
    assert "resumed.bin" not in page.locator("section.listing").inner_text()
    reloaded_at = len(run.requests)
    with page.expect_response(lambda r: r.request.method == "HEAD" and r.url == upload_url) as head:
        page.locator("input.uppy-Dashboard-input").first.set_input_files(str(path))
    assert head.value.status == 200
    assert head.value.headers["upload-offset"] == str(8 * MIB), "the server kept the first chunk"
    page.locator("li.card.file", has_text="resumed.bin").wait_for(timeout=60_000)
    screenshot(page, "20-upload-resumed")
    after = run.requests[reloaded_at:]
    assert not [u for m, u in after if m == "POST" and "/v1/tus/" in u], "a new upload was created"
    assert [m for m, u in after if u == upload_url] == ["HEAD", "PATCH"]  # only the last 1 MiB
    resp = public(server, bucket, "photos/resumed.bin")
    assert hashlib.md5(resp.content).hexdigest() == hashlib.md5(body).hexdigest()
    leftovers = page.evaluate(
        "Object.keys(sessionStorage).filter((k) => !k.startsWith('mediagate.') || "
        "k.startsWith('mediagate.tus:') || k.startsWith('mediagate.uploadToken:'))"
    )
    assert leftovers == [], "a finished upload's URL or token stayed behind"
    assert not [u for u in run.urls if "mgt_" in u or tokens[0] in u], "an upload token in a URL"
    run.check()


def test_admin_views(
    chromium: Any, server: LiveServer, bucket: BucketCredentials, seeded: tuple[str, str]
) -> None:
    creds = bucket
    bucket, secret = seeded
    run = open_page(chromium, server, secret)
    page = run.page
    log_in(run, server)

    page.get_by_role("link", name="Buckets").click()
    page.get_by_role("heading", name=f"Settings of {bucket}").wait_for()
    editor = page.get_by_label("Edit as JSON")
    editor.fill('{"autoformat": "gif"}')
    page.get_by_role("button", name="Save settings").click()
    page.get_by_role("alert").get_by_text("autoformat").wait_for()  # the API's 400, said plainly
    editor.fill('{"public": true, "versions": {"small": "/fw/120"}}')
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text(f"Saved the settings of {bucket}.").wait_for()
    shown = httpx.get(f"{server.url}/v1/buckets/{bucket}", headers=bearer(secret)).json()
    assert shown["settings"]["public"] is True and shown["settings"]["versions"] == {"small": "/fw/120"}
    page.locator(".settings td code", has_text="versions").wait_for()  # the table shows what was saved
    screenshot(page, "08-buckets")

    page.get_by_role("link", name="Keys").click()
    page.get_by_role("heading", name="API keys").wait_for()
    page.get_by_label("admin").uncheck()
    page.get_by_label("write").uncheck()
    page.get_by_label("Label").fill("<b>read-only</b>")
    page.get_by_role("button", name="Create key").click()
    new_secret = page.locator("#new-secret").input_value()
    assert new_secret.startswith("mgk_")
    me = httpx.get(f"{server.url}/v1/me", headers=bearer(new_secret)).json()
    assert me["scopes"] == ["read"] and me["label"] == "<b>read-only</b>"
    row = page.locator("tr", has_text=me["key_id"])
    assert row.locator("b").count() == 0  # the label is text
    screenshot(page, "09-keys")
    row.get_by_role("button", name="Revoke").click()
    row.get_by_text("revoked").wait_for()
    assert httpx.get(f"{server.url}/v1/me", headers=bearer(new_secret)).status_code == 401

    with page.expect_request(lambda r: "order=newest" in r.url) as recent:
        page.get_by_role("link", name="Recent uploads").click()
    assert recent.value.url.startswith(f"{server.url}/v1/buckets/{bucket}/objects?")
    page.get_by_role("heading", name=f"Recent uploads in {bucket}").wait_for()
    page.locator("td button.link", has_text="readme.txt").wait_for()  # rows arrive after the heading
    keys = page.locator("td button.link").all_inner_texts()
    assert keys == ["readme.txt", HOSTILE, "videos/clip.webm", "photos/dog.png", "photos/cat.png"]
    assert page.get_by_role("button", name="Older uploads").count() == 0
    screenshot(page, "10-recent")

    # Upload tokens: the active ones listed, one revoked from its row (and refused from then on).
    with httpx.Client(base_url=server.url, headers=bearer(secret), timeout=10) as client:
        issued = [
            client.post(f"/v1/buckets/{bucket}/upload-tokens", json=ask).json()
            for ask in (
                {"prefix": "phone/", "max_uses": 3, "max_size": 1 << 20, "content_types": ["image/*"]},
                {"key": "fixed/one.txt"},
            )
        ]
    page.get_by_role("link", name="Upload tokens").click()
    page.get_by_role("heading", name=f"Upload tokens of {bucket}").wait_for()
    first = page.locator("tr", has_text=issued[0]["token_id"])
    first.wait_for()
    cells = first.locator("td").all_inner_texts()
    assert cells[1:5] == ["phone/…", "0 / 3", "1.0 MiB", "image/*"], cells
    assert (
        page.locator("tr", has_text=issued[1]["token_id"]).locator("td").nth(1).inner_text()
        == "fixed/one.txt"
    )
    assert issued[0]["token"] not in page.content()  # the secret is never shown again
    screenshot(page, "10c-upload-tokens")
    first.get_by_role("button", name=f"Revoke {issued[0]['token_id']}").click()
    page.get_by_text(f"Revoked {issued[0]['token_id']}.").wait_for()
    first.wait_for(state="detached")  # gone from the active ones
    page.get_by_label("Show used up, expired and revoked tokens too").check()
    first.get_by_text("revoked").wait_for()
    refused = httpx.put(
        f"{server.url}/v1/buckets/{bucket}/objects/phone/a.png",
        content=png(4, 4, (1, 2, 3)),
        headers={**bearer(issued[0]["token"]), "Content-Type": "image/png"},
    )
    assert refused.status_code == 401, refused.text

    with httpx.Client(base_url=server.url, timeout=10) as client:
        apps = [{"name": "thumb", "x-gmkerl-thumb": "/fw/10"}]
        (task_id,) = upload(client, creds, jpeg(), key="/t.jpg", apps=apps).json()["task_ids"]
    page.get_by_role("link", name="Tasks").click()
    page.get_by_role("heading", name=f"Task queue of {bucket}").wait_for()
    task = page.locator("tr", has_text=task_id)
    task.wait_for()
    assert task.locator("td").nth(1).inner_text() == "thumb"
    page.get_by_label("Status").select_option("failed")
    task.wait_for(state="detached")

    # A task that fails (a thumbnail of a text file) says why, and is retried from its row.
    with httpx.Client(base_url=server.url, timeout=10) as client:
        (bad,) = upload(client, creds, b"not an image", key="/t.txt", apps=apps).json()["task_ids"]

    def task_status() -> str:
        return str(httpx.get(f"{server.url}/v1/tasks/{bad}", headers=bearer(secret)).json()["status"])

    assert wait_until(lambda: task_status() == "failed", timeout=20)
    page.get_by_label("Status").select_option("")
    page.get_by_label("Status").select_option("failed")
    failed = page.locator("tr", has_text=bad)
    failed.get_by_text("not an image").wait_for()
    screenshot(page, "10b-tasks")
    with page.expect_response(lambda r: r.url.endswith(f"/v1/tasks/{bad}/retry")) as retried:
        failed.get_by_role("button", name="Retry").click()
    assert retried.value.status == 200
    page.get_by_text(f"Task {bad} queued again.").wait_for()
    page.get_by_role("link", name="Deliveries").click()
    page.get_by_role("heading", name=f"Notification deliveries of {bucket}").wait_for()
    page.get_by_role("link", name="Usage").click()
    usage = page.locator("tr", has_text=bucket)
    usage.wait_for()
    counted = httpx.get(f"{server.url}/v1/buckets/{bucket}/usage", headers=bearer(secret)).json()
    assert usage.locator("td").nth(1).inner_text() == str(counted["objects"])
    screenshot(page, "11-usage")

    page.get_by_role("button", name="Log out").click()
    page.get_by_label("API key").wait_for()
    assert page.evaluate("sessionStorage.getItem('mediagate.apiKey')") is None
    run.check()


def test_a_large_folder_pages_with_load_more(
    chromium: Any, server: LiveServer, seeded: tuple[str, str]
) -> None:
    bucket, secret = seeded
    with httpx.Client(base_url=server.url, headers=bearer(secret), timeout=10) as client:
        for i in range(205):
            assert (
                client.put(f"/v1/buckets/{bucket}/objects/many/f{i:03}.txt", content=b"x").status_code == 201
            )
        assert client.put(f"/v1/buckets/{bucket}/objects/many/sub/deep.txt", content=b"x").status_code == 201
    run = open_page(chromium, server, secret)
    page = run.page
    log_in(run, server)
    page.locator("a.folder-link", has_text="many/").click()
    files = page.locator("li.card.file")
    page.locator("li.card.file", has_text="f199.txt").wait_for()
    assert files.count() == 200 and page.locator("a.folder-link").count() == 0  # one page, by name
    page.get_by_role("button", name="Load more").click()
    page.locator("a.folder-link", has_text="sub/").wait_for()
    assert files.count() == 205 and page.get_by_role("button", name="Load more").count() == 0

    # Recent uploads page newest first, 50 at a time, from the server's index.
    page.get_by_role("link", name="Recent uploads").click()
    rows = page.locator("section.admin tbody tr")
    page.locator("td button.link", has_text="many/sub/deep.txt").wait_for()
    assert rows.count() == 50 and rows.first.locator("button.link").inner_text() == "many/sub/deep.txt"
    page.get_by_role("button", name="Older uploads").click()
    page.locator("td button.link", has_text="many/f106.txt").wait_for()
    assert rows.count() == 100 and rows.nth(50).locator("button.link").inner_text() == "many/f155.txt"
    run.check()


def test_a_private_bucket_is_shown_through_the_api(
    chromium: Any, server: LiveServer, seeded: tuple[str, str]
) -> None:
    bucket, secret = seeded
    closed = httpx.patch(
        f"{server.url}/v1/buckets/{bucket}", json={"settings": {"public": False}}, headers=bearer(secret)
    )
    assert closed.status_code == 200, closed.text
    # servers see a settings change within a few seconds (bucketconf.BucketCache)
    assert wait_until(lambda: public(server, bucket, "photos/dog.png").status_code == 403, timeout=15)
    run = open_page(chromium, server, secret)
    page = run.page
    log_in(run, server)
    page.locator("a.folder-link", has_text="photos/").click()
    thumb = page.locator("li.card.file", has_text="dog.png").locator("img")
    thumb.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth === 300", arg=thumb.element_handle())
    assert (thumb.get_attribute("src") or "").startswith("blob:")
    page.get_by_role("button", name="Preview dog.png").click()
    dialog = page.locator("dialog#preview")
    dialog.get_by_text("This bucket is private").wait_for()
    preview = dialog.locator("img.preview-media")
    page.wait_for_function("img => img.complete && img.naturalHeight === 500", arg=preview.element_handle())
    assert dialog.get_by_role("link", name="Open").count() == 0
    screenshot(page, "17-private-preview")
    run.check()


def test_deliveries_show_their_attempts_and_redeliver(
    chromium: Any, server: LiveServer, bucket: BucketCredentials, seeded: tuple[str, str]
) -> None:
    name, secret = seeded

    def statuses() -> list[str]:
        found = httpx.get(f"{server.url}/v1/deliveries", params={"bucket": name}, headers=bearer(secret))
        return [d["status"] for d in found.json()["deliveries"]]

    with Receiver([500, 200]) as receiver, httpx.Client(base_url=server.url, timeout=10) as client:
        hook = receiver.url("/hook?from=form")
        assert upload(client, bucket, b"x" * 10, key="/n.bin", notify_url=hook).status_code == 200
        assert wait_until(lambda: statuses() == ["delivered"], timeout=20)
        run = open_page(chromium, server, secret)
        page = run.page
        log_in(run, server)
        page.get_by_role("link", name="Deliveries").click()
        row = page.locator("tr", has_text=hook)
        row.wait_for()
        cells = row.locator("td").all_inner_texts()
        assert cells[1] == "delivered" and cells[3] == "2" and cells[4] == "200", cells
        row.get_by_role("button", name="Attempts of delivery").click()
        tries = page.locator("#attempts tbody tr")
        tries.first.wait_for()
        assert [tries.nth(i).locator("td").all_inner_texts() for i in range(tries.count())] == [
            ["2", tries.nth(0).locator("td").nth(1).inner_text(), "ok", "200", "—"],
            ["1", tries.nth(1).locator("td").nth(1).inner_text(), "failed", "500", "answered HTTP 500"],
        ]
        screenshot(page, "12-deliveries")
        row.get_by_role("button", name="Redeliver").click()
        page.get_by_text("queued again").wait_for()
        assert wait_until(lambda: len(receiver.requests) == 3, timeout=20)
        assert wait_until(lambda: statuses() == ["delivered"], timeout=20)
    run.check()


def test_a_server_wide_admin_creates_a_bucket(chromium: Any, server: LiveServer, admin: Gateway) -> None:
    require_v1(server)
    from mediagate.core import apikeys

    _, secret = apikeys.create_key(admin.catalog, bucket=None, scopes=("read", "write", "admin"))
    name = f"ui{uuid.uuid4().hex[:10]}"
    run = open_page(chromium, server, secret)
    page = run.page
    log_in(run, server)
    page.get_by_role("link", name="Buckets").click()
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create bucket").click()
    page.get_by_text(f"Created {name}.").wait_for()
    password = page.get_by_label("password", exact=True).input_value()
    assert len(password) >= 16
    page.locator("#bucket-select option", has_text=name).wait_for(state="attached")
    page.get_by_role("heading", name=f"Settings of {name}").wait_for()
    listed = httpx.get(f"{server.url}/v1/buckets", headers=bearer(secret)).json()["buckets"]
    assert name in [b["name"] for b in listed]
    screenshot(page, "18-bucket-created")
    page.get_by_label("Name").fill("Not A Name")
    page.get_by_role("button", name="Create bucket").click()  # the browser's own check refuses it
    assert page.evaluate("document.getElementById('new-bucket').validity.valid") is False

    # A server-wide key, made from the page.
    page.get_by_role("link", name="Keys").click()
    page.get_by_label("Reaches").select_option(label="all buckets (server-wide)")
    page.get_by_label("Label").fill("ops")
    page.get_by_role("button", name="Create key").click()
    wide = page.locator("#new-secret").input_value()
    me = httpx.get(f"{server.url}/v1/me", headers=bearer(wide)).json()
    assert me["bucket"] is None and me["scopes"] == ["read", "write"] and me["label"] == "ops"
    page.locator("tr", has_text=me["key_id"]).get_by_text("all buckets").wait_for()
    screenshot(page, "18b-server-wide-key")

    # Deleting the bucket: only once its name is typed; with objects in it, only with the box ticked.
    put(server, secret, name, "inside.txt", b"x", "text/plain")
    page.get_by_role("link", name="Buckets").click()
    page.get_by_role("button", name=name, exact=True).click()
    delete = page.get_by_role("button", name=f"Delete {name}")
    confirm = page.get_by_label("Confirm deletion")
    confirm.fill(name[:-1])
    assert delete.is_disabled()
    confirm.fill(name)
    assert delete.is_enabled()
    screenshot(page, "18c-delete-bucket")
    delete.click()
    page.get_by_role("alert").wait_for()  # the API's refusal: the bucket is not empty
    assert httpx.get(f"{server.url}/v1/buckets/{name}", headers=bearer(secret)).status_code == 200
    page.get_by_label("Also delete every object in it").check()
    delete.click()
    page.get_by_text(f"Deleted the bucket {name}.").wait_for()
    assert httpx.get(f"{server.url}/v1/buckets/{name}", headers=bearer(secret)).status_code == 404
    assert page.locator("#bucket-select option", has_text=name).count() == 0
    run.check()


def test_a_wrong_key_is_refused_and_a_narrow_key_sees_only_what_it_may(
    chromium: Any, server: LiveServer, admin: Gateway, seeded: tuple[str, str]
) -> None:
    bucket, _ = seeded
    run = open_page(chromium, server, "mgk_0000000000000000_" + "0" * 48)
    page = run.page
    page.goto(f"{server.url}/ui/")
    page.get_by_label("API key").fill(run.secret)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("alert").get_by_text("not accepted").wait_for()
    screenshot(page, "13-refused")
    run.problems.clear()  # the refused /v1/me is logged by the browser as a failed load

    reader = api_key(admin, bucket, ("read",))
    run.secret = reader
    log_in(run, server)
    page.locator("li.card.folder", has_text="photos/").wait_for()
    page.get_by_text("This key has no write scope").wait_for()
    assert page.locator("input.uppy-Dashboard-input").count() == 0
    page.locator("a.folder-link", has_text="photos/").click()
    page.get_by_role("button", name="Preview dog.png").click()
    assert page.locator("dialog#preview").get_by_role("button", name="Delete").count() == 0
    run.check()


def test_the_page_fits_a_phone(chromium: Any, server: LiveServer, seeded: tuple[str, str]) -> None:
    _, secret = seeded
    run = open_page(chromium, server, secret, viewport={"width": 390, "height": 844})
    page = run.page
    fits = "document.documentElement.scrollWidth <= window.innerWidth"
    log_in(run, server)
    page.locator("a.folder-link", has_text="photos/").click()
    page.locator("li.card.file", has_text="dog.png").wait_for()
    assert page.evaluate(fits)
    screenshot(page, "14-phone-files")
    page.get_by_role("button", name="Preview dog.png").click()
    page.locator("dialog#preview img.preview-media").wait_for()
    screenshot(page, "15-phone-preview")
    page.get_by_role("button", name="Close").click()
    for view in ("Keys", "Upload tokens", "Recent uploads", "Deliveries"):
        page.get_by_role("link", name=view).click()
        page.locator("table, p.empty").first.wait_for()
        assert page.evaluate(fits), view
    screenshot(page, "16-phone-admin")
    run.check()


def axe(page: Any, source: str, where: str) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now (WCAG 2 A/AA rules)."""
    page.evaluate(source)  # through the DevTools protocol: the page's CSP does not apply to it
    found = page.evaluate(
        """async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'best-practice']}))
            .violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`)"""
    )
    return [f"{where}: {v}" for v in found]


def test_every_view_passes_axe(chromium: Any, server: LiveServer, seeded: tuple[str, str]) -> None:
    """axe-core (npm, MPL-2.0, installed like the compat suites' packages) finds nothing serious."""
    from tests.compat.npm import installed

    source = (installed("axe-core", "4.") / "axe-core" / "axe.min.js").read_text()
    _, secret = seeded
    run = open_page(chromium, server, secret)
    page = run.page
    page.goto(f"{server.url}/")
    findings = axe(page, source, "landing")
    page.goto(f"{server.url}/ui/")
    page.get_by_label("API key").wait_for()
    findings += axe(page, source, "login")
    log_in(run, server)
    page.locator("a.folder-link", has_text="photos/").click()
    page.locator("li.card.file img").first.wait_for()
    findings += axe(page, source, "files")
    page.get_by_role("button", name="Preview dog.png").click()
    page.locator("dialog#preview img.preview-media").wait_for()
    findings += axe(page, source, "preview")
    page.get_by_role("button", name="Close").click()
    for view in ("Buckets", "Keys", "Recent uploads", "Upload tokens", "Tasks", "Deliveries", "Usage"):
        page.get_by_role("link", name=view).click()
        page.locator("section.admin table, section.admin p.empty").first.wait_for()
        findings += axe(page, source, view)
    assert not findings, "\n".join(findings)
    run.check()
