"""A disk that fills up, for real: a small tmpfs holding a home's staging and blobs (where mounting
is permitted), or a file size limit on the server process (anywhere, without privileges: writes
fail the same way, with EFBIG)."""

from __future__ import annotations

import contextlib
import resource
import subprocess
from pathlib import Path

import pytest

from tests.conftest import LiveServer


class FullDisk:
    """Makes the server's staging writes fail for lack of space, and undoes it."""

    def prepare(self, home: Path) -> None: ...

    def fill(self, server: LiveServer) -> None: ...

    def free(self, server: LiveServer) -> None: ...

    def close(self) -> None: ...


class SmallTmpfs(FullDisk):
    """The home's staging and blobs on a 4 MiB tmpfs (symlinked, so the log and the catalog stay
    on the ordinary disk), filled by a file that leaves a few KiB."""

    def __init__(self, root: Path) -> None:
        self.mount = root / "disk"
        self.mount.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(self.mount)], capture_output=True
        )
        if done.returncode != 0:
            pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.decode().strip()}")

    def prepare(self, home: Path) -> None:
        home.mkdir()
        for sub in ("staging", "blobs"):
            (self.mount / sub).mkdir()
            (home / sub).symlink_to(self.mount / sub)

    def fill(self, server: LiveServer | None = None) -> None:
        with contextlib.suppress(OSError), open(self.mount / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()

    def free(self, server: LiveServer | None = None) -> None:
        (self.mount / "filler").unlink()

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.mount)], check=False)


class FileSizeLimit(FullDisk):
    """A soft RLIMIT_FSIZE on the server process: a write past 1 MiB in any file fails (EFBIG;
    Python ignores SIGXFSZ). Works anywhere, without privileges."""

    LIMIT = 1024 * 1024

    def prepare(self, home: Path) -> None:
        home.mkdir()

    def fill(self, server: LiveServer) -> None:
        assert server.process is not None
        resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (self.LIMIT, resource.RLIM_INFINITY))

    def free(self, server: LiveServer) -> None:
        assert server.process is not None
        unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)  # the soft limit only was lowered
        resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, unlimited)
