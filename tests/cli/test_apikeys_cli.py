"""`mediagate key create|list|revoke` (the /v1 API keys) as real CLI processes on a home."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mediagate.catalog import Catalog
from mediagate.core.apikeys import authenticate_key
from tests.conftest import make_home
from tests.support.cli import run_mediagate


def cli(home: Path, *args: str) -> Any:
    done = run_mediagate(home, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout) if "--json" in args else done.stdout


def test_create_list_revoke(tmp_path: Path) -> None:
    settings = make_home(tmp_path / "home")
    home = settings.home
    cli(home, "bucket", "create", "photos", "--json")
    made = cli(
        home, "key", "create", "--bucket", "photos", "--scope", "read,write", "--label", "site", "--json"
    )
    assert made["bucket"] == "photos" and made["scopes"] == ["read", "write"]
    assert made["key_id"].startswith("mk_") and made["secret"].startswith("mgk_")
    root = cli(home, "key", "create", "--admin", "--json")
    assert root["bucket"] is None and root["scopes"] == ["read", "write", "admin"]

    listed = cli(home, "key", "list", "--json")
    assert [k["key_id"] for k in listed] == [root["key_id"], made["key_id"]]
    assert all("secret" not in k for k in listed)
    assert made["secret"] not in json.dumps(listed)
    assert [k["key_id"] for k in cli(home, "key", "list", "--bucket", "photos", "--json")] == [made["key_id"]]
    table = cli(home, "key", "list")
    assert made["key_id"] in table and "active" in table

    catalog = Catalog(settings.catalog_url)
    try:
        assert authenticate_key(catalog, made["secret"]).key_id == made["key_id"]
        out = cli(home, "key", "revoke", made["key_id"])
        assert f"revoked {made['key_id']}" in out
        listed = {k["key_id"]: k for k in cli(home, "key", "list", "--json")}
        assert listed[made["key_id"]]["revoked_at"] is not None
        assert listed[root["key_id"]]["revoked_at"] is None
    finally:
        catalog.close()


def test_clear_errors(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home").home
    neither = run_mediagate(home, "key", "create")
    assert neither.returncode == 1 and "--bucket" in neither.stderr and "Traceback" not in neither.stderr
    missing = run_mediagate(home, "key", "create", "--bucket", "nope")
    assert missing.returncode == 1 and "does not exist" in missing.stderr and "bucket list" in missing.stderr
    cli(home, "bucket", "create", "photos")
    scope = run_mediagate(home, "key", "create", "--bucket", "photos", "--scope", "read,root")
    assert scope.returncode == 1 and "unknown scope 'root'" in scope.stderr
    unknown = run_mediagate(home, "key", "revoke", "mk_0000000000000000")
    assert unknown.returncode == 1 and "key list" in unknown.stderr
    assert "`mediagate key`" in run_mediagate(home, "bucket", "key", "--help").stdout
