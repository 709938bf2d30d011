"""A Wantu transcode on both queue engines (embedded, and Redis with two worker processes):
SIGKILL of whatever runs it, mid-transcode, and the task still ends with exactly one set of
outputs (tests/tasks/conftest.py ``site``)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.media.videos import make_video
from tests.protocols.wantu.client import WantuClient
from tests.protocols.wantu.test_media import encode, put, wait
from tests.tasks.conftest import TaskSite, site  # noqa: F401 - the fixture


def test_killed_mid_hls_transcode_reruns_and_leaves_one_set_of_outputs(
    site: TaskSite,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    creds = site.bucket()
    wantu = WantuClient(site.url, creds.access_key_id, creds.secret_access_key, creds.bucket)
    try:
        clip = make_video(tmp_path / "long.mp4", size="640x480", seconds=24).read_bytes()
        put(wantu, "/v", "long.mp4", clip)
        task_id = encode(wantu, ("/v", "long.mp4"), ("/hls", "k.m3u8"), "video-HLS-1000K")
        site.wait_task(task_id, "running", timeout=60)
        time.sleep(1.0)  # ffmpeg is under way
        assert site.task(task_id).status == "running", "the transcode ended before it could be killed"
        site.kill_workers()
        site.restart_workers()
        wantu.close()
        wantu = WantuClient(site.url, creds.access_key_id, creds.secret_access_key, creds.bucket)
        result = wait(wantu, "mediaEncodeResult", task_id, timeout=300)
        assert result["status"] == "success", result
        assert site.task(task_id).attempts >= 2
        names = [o["name"] for o in result["outputs"]]
        assert names[0] == "k.m3u8" and len(names) == len(set(names)) >= 4
        listed = wantu.manage("GET", "/3.0/files", query="dir=%2Fhls&pageSize=100").json()
        assert sorted(f["name"] for f in listed["result"]) == sorted(names)  # nothing else, nothing twice
        playlist = wantu.http.get(result["outputs"][0]["url"]).text
        assert [line for line in playlist.splitlines() if line and not line.startswith("#")] == names[1:]
    finally:
        wantu.close()
