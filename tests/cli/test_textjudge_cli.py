"""`mediagate bucket textjudge add|list|rm`: rules stored per bucket, validated when added,
removed by word, regex or id; clear errors for what cannot be done."""

from __future__ import annotations

import json
from pathlib import Path

from mediagate.core.buckets import create_bucket
from mediagate.services import build_gateway
from tests.conftest import make_home
from tests.support.cli import run_mediagate


def test_add_list_and_remove_rules(tmp_path: Path) -> None:
    settings = make_home(tmp_path / "home")
    home = settings.home
    admin = build_gateway(settings, migrate=False)
    try:
        create_bucket(admin.catalog, admin.secrets, "notes")
        create_bucket(admin.catalog, admin.secrets, "other")
    finally:
        admin.catalog.close()

    def cli(*args: str) -> list[dict[str, object]] | dict[str, object]:
        done = run_mediagate(home, "bucket", "textjudge", *args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    added = cli("add", "notes", "--word", "ＢＵＹ Now", "--regex", r"\bloan\b")
    assert [(r["type"], r["rule"], r["label"]) for r in added] == [  # type: ignore[index,union-attr]
        ("word", "buy now", "spam"),
        ("regex", r"\bloan\b", "spam"),
    ]
    cli("add", "notes", "--word", "buy now", "--label", "suspicious")  # same rule, new label
    cli("add", "other", "--word", "elsewhere", "--regex", "v[i1]agra")
    listed = cli("list", "notes")
    assert [(r["rule"], r["label"]) for r in listed] == [  # type: ignore[index,union-attr]
        ("buy now", "suspicious"),
        (r"\bloan\b", "spam"),
    ]
    first_id = listed[0]["id"]  # type: ignore[index]
    assert cli("rm", "notes", "--id", str(first_id)) == {"removed": 1}
    assert cli("rm", "notes", "--regex", r"\bloan\b") == {"removed": 1}
    assert cli("list", "notes") == []
    assert [r["rule"] for r in cli("list", "other")] == ["elsewhere", "v[i1]agra"]  # type: ignore[index,union-attr]

    table = run_mediagate(home, "bucket", "textjudge", "list", "other")
    assert table.returncode == 0 and "elsewhere" in table.stdout and "spam" in table.stdout
    assert "v[i1]agra" in table.stdout  # a pattern is shown as it is, not read as Rich markup

    for args, fragment in [
        (("add", "notes", "--regex", "(a+)+$"), "backtracks catastrophically"),
        (("add", "notes", "--regex", "("), "does not compile"),
        (("add", "notes", "--word", "x", "--label", "rude"), "unknown label 'rude'"),
        (("add", "notes"), "nothing to add"),
        (("add", "nosuch", "--word", "x"), "bucket 'nosuch' does not exist"),
        (("rm", "notes", "--word", "never-added"), "were not the bucket's"),
        (("rm", "notes"), "nothing to remove"),
    ]:
        done = run_mediagate(home, "bucket", "textjudge", *args)
        assert done.returncode == 1, (args, done.stdout)
        assert fragment in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert cli("list", "notes") == []  # nothing half-added

    helped = run_mediagate(home, "bucket", "textjudge", "add", "--help")
    assert helped.returncode == 0 and "--regex" in helped.stdout and "suspicious" in helped.stdout
