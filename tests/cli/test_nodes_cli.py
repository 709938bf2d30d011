"""Homes of several nodes on one catalog, from the command line: ``init`` on a fresh home against
a database other nodes already use (concurrently, too), the sealing key every node shares, and
its rotation with ``mediagate secrets rotate``."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from mediagate.catalog.migrate import head_revision
from tests.cli.test_startup_cli import one_error_line
from tests.conftest import LiveServer
from tests.protocols.upyun.rest_client import signed
from tests.support.cli import run_mediagate
from tests.support.pg import fresh_schema

pytestmark = pytest.mark.postgres


@pytest.fixture
def catalog_url() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


def run_together(*runs: tuple[Path, list[str], dict[str, str]]) -> list[object]:
    """``mediagate`` commands started at the same moment (as nodes booting together)."""
    results: list[object] = [None] * len(runs)
    barrier = threading.Barrier(len(runs))

    def one(i: int) -> None:
        home, args, env = runs[i]
        barrier.wait()
        results[i] = run_mediagate(home, *args, env=env, timeout=120)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(runs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def demo_buckets(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM buckets WHERE name = 'demo'")).scalar_one())
    finally:
        engine.dispose()


def revision(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())
    finally:
        engine.dispose()


def test_nodes_initialising_together_migrate_once_and_make_one_demo_bucket(
    tmp_path: Path, catalog_url: str
) -> None:
    env = {"MEDIAGATE_DATABASE_URL": catalog_url, "MEDIAGATE_SECRET_KEY": Fernet.generate_key().decode()}
    homes = [tmp_path / f"node-{i}" for i in range(3)]
    results = run_together(*[(home, ["init", "--demo"], env) for home in homes])
    for done in results:
        assert done.returncode == 0, done.stderr  # type: ignore[attr-defined]
    printed = [done for done in results if "demo bucket" in done.stdout]  # type: ignore[attr-defined]
    assert len(printed) == 1  # exactly one node made it and printed its secrets once
    assert demo_buckets(catalog_url) == 1
    assert revision(catalog_url) == head_revision()
    assert not any((home / "secret.key").exists() for home in homes)  # the key is the environment's
    again = run_mediagate(tmp_path / "late-node", "init", "--demo", env=env)
    assert again.returncode == 0, again.stderr
    assert "exists" in again.stdout and demo_buckets(catalog_url) == 1


def test_a_fresh_home_without_the_clusters_key_is_refused_in_one_line(
    tmp_path: Path, catalog_url: str
) -> None:
    first = run_mediagate(tmp_path / "a", "init", "--demo", env={"MEDIAGATE_DATABASE_URL": catalog_url})
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "a" / "secret.key").exists()  # a single node keeps its key in its home
    env = {"MEDIAGATE_DATABASE_URL": catalog_url, "COLUMNS": "80"}
    second = run_mediagate(tmp_path / "b", "init", env=env)
    assert second.returncode == 1
    line = one_error_line(second.stderr)
    assert "already holds secrets sealed by other nodes" in line and "MEDIAGATE_SECRET_KEY" in line, line
    assert not (tmp_path / "b" / "secret.key").exists()  # no key made that could never open them
    # with the first node's key it joins
    key = (tmp_path / "a" / "secret.key").read_text().strip()
    joined = run_mediagate(tmp_path / "b", "init", env={**env, "MEDIAGATE_SECRET_KEY": key})
    assert joined.returncode == 0, joined.stderr


@pytest.mark.parametrize("command", [["init"], ["serve", "--port", "0"], ["bucket", "list"]])
def test_a_wrong_sealing_key_is_one_line(tmp_path: Path, catalog_url: str, command: list[str]) -> None:
    env = {"MEDIAGATE_DATABASE_URL": catalog_url, "MEDIAGATE_SECRET_KEY": Fernet.generate_key().decode()}
    assert run_mediagate(tmp_path / "a", "init", "--demo", env=env).returncode == 0
    wrong = {**env, "MEDIAGATE_SECRET_KEY": Fernet.generate_key().decode(), "COLUMNS": "80"}
    home = tmp_path / ("a" if command[0] != "init" else "b")
    done = run_mediagate(home, *command, env=wrong)
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert "cannot open the secrets in the catalog" in line and "MEDIAGATE_SECRET_KEY" in line, line
    assert wrong["MEDIAGATE_SECRET_KEY"] not in done.stderr


def test_a_key_that_is_not_a_fernet_key_is_one_line(tmp_path: Path) -> None:
    done = run_mediagate(tmp_path, "init", env={"MEDIAGATE_SECRET_KEY": "hunter2", "COLUMNS": "80"})
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert "not a Fernet key" in line and "hunter2" not in done.stderr, line


def test_a_catalog_migrated_by_a_newer_version_is_refused_in_one_line(
    tmp_path: Path, catalog_url: str
) -> None:
    env = {"MEDIAGATE_DATABASE_URL": catalog_url, "MEDIAGATE_SECRET_KEY": Fernet.generate_key().decode()}
    assert run_mediagate(tmp_path / "a", "init", env=env).returncode == 0
    engine = create_engine(catalog_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    engine.dispose()
    done = run_mediagate(tmp_path / "b", "init", env={**env, "COLUMNS": "80"})
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert "'0099_from_the_future', newer than this mediagate knows" in line, line


def test_sqlite_nodes_initialising_together_migrate_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    env = {"MEDIAGATE_DATABASE_URL": url, "MEDIAGATE_SECRET_KEY": Fernet.generate_key().decode()}
    results = run_together(*[(tmp_path / f"n{i}", ["init", "--demo"], env) for i in range(3)])
    for done in results:
        assert done.returncode == 0, done.stderr  # type: ignore[attr-defined]
    assert revision(url) == head_revision() and demo_buckets(url) == 1


# -- rotation -----------------------------------------------------------------------------------------------


def test_secrets_new_key_and_rotate_have_help(tmp_path: Path) -> None:
    key = run_mediagate(tmp_path, "secrets", "new-key")
    assert key.returncode == 0 and Fernet(key.stdout.strip().encode())
    for command in (["secrets", "--help"], ["secrets", "rotate", "--help"]):
        done = run_mediagate(tmp_path, *command, env={"COLUMNS": "100"})
        assert done.returncode == 0 and "Usage" in done.stdout
    assert "re-seal" in run_mediagate(tmp_path, "secrets", "rotate", "--help").stdout.lower()


def test_rotation_old_key_still_opens_new_writes_use_the_new_then_rotate_drops_the_old(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert run_mediagate(home, "init", env={"MEDIAGATE_SECRET_KEY": old}).returncode == 0
    made = run_mediagate(home, "bucket", "create", "before", "--json", env={"MEDIAGATE_SECRET_KEY": old})
    assert made.returncode == 0, made.stderr
    before = httpx.Response(200, content=made.stdout.encode()).json()

    # step 1: every node lists the new key first, the old one after it
    both = {"MEDIAGATE_SECRET_KEY": f"{new},{old}"}
    made = run_mediagate(home, "bucket", "create", "after", "--json", env=both)
    assert made.returncode == 0, made.stderr
    after = httpx.Response(200, content=made.stdout.encode()).json()
    server = LiveServer(home, env=both).start()
    try:
        _put_and_read(server, before)  # sealed with the old key: still opens
        _put_and_read(server, after)
        imagex_auth = _imagex_apply(server, after)
    finally:
        server.stop()

    # step 2: re-seal everything with the new key
    rotated = run_mediagate(home, "secrets", "rotate", env=both)
    assert rotated.returncode == 0, rotated.stderr
    assert "re-sealing" in rotated.stdout and "3 secret(s) re-sealed" in rotated.stdout, rotated.stdout
    again = run_mediagate(home, "secrets", "rotate", env=both)
    assert "0 secret(s) re-sealed" in again.stdout and "6 already were" in again.stdout, again.stdout

    # step 3: the old key is no longer needed; with it alone nothing opens
    only_new = {"MEDIAGATE_SECRET_KEY": new}
    server = LiveServer(home, env=only_new).start()
    try:
        _put_and_read(server, before)
        _put_and_read(server, after)
        _imagex_upload(server, imagex_auth)
    finally:
        server.stop()
    refused = run_mediagate(home, "bucket", "list", env={"MEDIAGATE_SECRET_KEY": old, "COLUMNS": "80"})
    assert refused.returncode == 1 and "cannot open the secrets" in one_error_line(refused.stderr)


def test_tokens_issued_before_a_rotation_stay_valid(tmp_path: Path) -> None:
    """ImageX upload tokens (and web sessions) are keyed by the sealing key: one issued under the
    old key is still accepted while the old key is listed after the new one."""
    home = tmp_path / "home"
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert run_mediagate(home, "init", env={"MEDIAGATE_SECRET_KEY": old}).returncode == 0
    made = run_mediagate(home, "bucket", "create", "tokens", "--json", env={"MEDIAGATE_SECRET_KEY": old})
    creds = httpx.Response(200, content=made.stdout.encode()).json()
    server = LiveServer(home, env={"MEDIAGATE_SECRET_KEY": old}).start()
    try:
        info = _imagex_apply(server, creds)
    finally:
        server.stop()
    server = LiveServer(home, env={"MEDIAGATE_SECRET_KEY": f"{new},{old}"}).start()
    try:
        _imagex_upload(server, info)
    finally:
        server.stop()
    assert (
        run_mediagate(home, "secrets", "rotate", env={"MEDIAGATE_SECRET_KEY": f"{new},{old}"}).returncode == 0
    )
    server = LiveServer(home, env={"MEDIAGATE_SECRET_KEY": new}).start()  # the old key dropped
    try:
        r = httpx.put(
            f"{server.url}/{info['StoreUri']}",
            content=b"late",
            headers={"Authorization": info["Auth"], "Content-CRC32": f"{zlib.crc32(b'late'):08x}"},
        )
        assert r.status_code in (401, 403), r.text
    finally:
        server.stop()


def _put_and_read(server: LiveServer, creds: dict[str, str]) -> None:
    from mediagate.core.buckets import BucketCredentials

    bucket = BucketCredentials(**creds)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        uri = f"/{bucket.bucket}/rotation.txt"
        assert signed(client, bucket, "PUT", uri, content=b"sealed").status_code == 200
        assert client.get(uri).content == b"sealed"


def _imagex_apply(server: LiveServer, creds: dict[str, str]) -> dict[str, str]:
    from mediagate.core.buckets import BucketCredentials
    from tests.protocols.imagex.test_hostile import apply

    [info] = apply(server, BucketCredentials(**creds))["StoreInfos"]
    return dict(info)


def _imagex_upload(server: LiveServer, info: dict[str, str]) -> None:
    from tests.protocols.imagex.test_hostile import put

    r = put(server, info, b"x" * 100)
    assert r.status_code == 200, r.text


def test_a_single_home_rotates_in_its_secret_key_file(tmp_path: Path) -> None:
    """Without MEDIAGATE_SECRET_KEY the home's secret.key holds the keys, one a line (README)."""
    home = tmp_path / "home"
    assert run_mediagate(home, "init").returncode == 0
    made = run_mediagate(home, "bucket", "create", "filekeys", "--json")
    creds = httpx.Response(200, content=made.stdout.encode()).json()
    key_file = home / "secret.key"
    old, new = key_file.read_text().strip(), Fernet.generate_key().decode()
    key_file.write_text(f"{new}\n{old}\n")
    rotated = run_mediagate(home, "secrets", "rotate")
    assert rotated.returncode == 0 and "3 secret(s) re-sealed" in rotated.stdout, rotated.stdout
    key_file.write_text(f"{new}\n")
    server = LiveServer(home).start()
    try:
        _put_and_read(server, creds)
    finally:
        server.stop()
