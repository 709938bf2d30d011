"""The server settles its start-up heap once: frozen out of the collector's full passes."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_serving_freezes_the_start_up_heap_once_and_collects_young_objects_less_often() -> None:
    script = textwrap.dedent(
        """
        import gc, tempfile
        from pathlib import Path
        from starlette.testclient import TestClient
        from mediagate.app import GC_YOUNG_THRESHOLD, create_app
        from mediagate.config import Settings
        from mediagate.services import init_home

        home = Path(tempfile.mkdtemp())
        init_home(Settings(home=home))
        assert gc.get_freeze_count() == 0
        with TestClient(create_app(Settings(home=home))) as client:
            client.get("/healthz")
            frozen = gc.get_freeze_count()
            assert frozen > 10_000, frozen
            assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
        with TestClient(create_app(Settings(home=home))):
            assert gc.get_freeze_count() <= frozen  # a second app in the process freezes nothing more
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().endswith("ok"), done.stderr[-3000:]
