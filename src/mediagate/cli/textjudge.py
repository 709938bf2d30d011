"""`mediagate bucket textjudge add|list|rm`: a bucket's textjudge word list and regexes."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mediagate.cli.bucket import bucket_app
from mediagate.cli.common import console, fail, open_gateway, require_bucket
from mediagate.core.errors import MediagateError

textjudge_app = typer.Typer(
    help="The words and regular expressions the bucket's textjudge tasks look for.", no_args_is_help=True
)
bucket_app.add_typer(textjudge_app, name="textjudge")

WORD_HELP = "A word or phrase, matched anywhere, ignoring case and full/half width; repeat for more."
REGEX_HELP = "A regular expression (at most 256 characters), run case-insensitively; repeat for more."


def _rows(rules: list[Any]) -> list[dict[str, Any]]:
    from mediagate.media.textjudge import LABELS

    names = {v: k for k, v in LABELS.items()}
    return [
        {"id": r.id, "type": r.kind, "rule": r.pattern, "label": names.get(r.label, str(r.label))}
        for r in rules
    ]


def _print(name: str, rows: list[dict[str, Any]], as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    table = Table("id", "type", "rule", "label", title=f"bucket {name}: {title}")
    for row in rows:
        table.add_row(str(row["id"]), row["type"], Text(row["rule"]), row["label"])  # [a-z] is no markup
    console.print(table)


@textjudge_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Bucket name.")],
    words: Annotated[list[str] | None, typer.Option("--word", help=WORD_HELP)] = None,
    regexes: Annotated[list[str] | None, typer.Option("--regex", help=REGEX_HELP)] = None,
    label: Annotated[str, typer.Option(help="What a match makes the text: spam or suspicious.")] = "spam",
    as_json: Annotated[bool, typer.Option("--json", help="Print the rules added as a JSON array.")] = False,
) -> None:
    """Add rules (a rule the bucket has already takes the new label)."""
    from mediagate.media import textjudge

    if label not in textjudge.LABELS:
        raise fail(f"unknown label {label!r}", "use --label spam or --label suspicious")
    if not words and not regexes:
        raise fail("nothing to add", "give --word WORD and/or --regex PATTERN")
    try:
        wanted = [("word", textjudge.check_rule("word", w), textjudge.LABELS[label]) for w in words or []]
        wanted += [
            ("regex", textjudge.check_rule("regex", r), textjudge.LABELS[label]) for r in regexes or []
        ]
    except MediagateError as exc:
        raise fail(escape(exc.message)) from None
    gw = open_gateway()
    try:
        bucket = require_bucket(gw, name)
        have = gw.catalog.text_rules(bucket.id)
        for kind, most in (("word", textjudge.MAX_WORDS), ("regex", textjudge.MAX_REGEXES)):
            known = {r.pattern for r in have if r.kind == kind}
            new = {p for k, p, _ in wanted if k == kind} - known
            if len(known) + len(new) > most:
                raise fail(f"a bucket has at most {most} {kind} rules", "remove some first (textjudge rm)")
        stored = gw.catalog.set_text_rules(bucket.id, wanted)
    finally:
        gw.catalog.close()
    _print(name, _rows(stored), as_json, "rules added")


@textjudge_app.command("list")
def list_rules(
    name: Annotated[str, typer.Argument(help="Bucket name.")],
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array of rule objects.")] = False,
) -> None:
    """The bucket's rules, oldest first."""
    gw = open_gateway()
    try:
        rows = _rows(gw.catalog.text_rules(require_bucket(gw, name).id))
    finally:
        gw.catalog.close()
    _print(name, rows, as_json, f"{len(rows)} textjudge rule(s)")


@textjudge_app.command("rm")
def remove(
    name: Annotated[str, typer.Argument(help="Bucket name.")],
    words: Annotated[list[str] | None, typer.Option("--word", help="A word rule to remove.")] = None,
    regexes: Annotated[list[str] | None, typer.Option("--regex", help="A regex rule to remove.")] = None,
    ids: Annotated[list[int] | None, typer.Option("--id", help="A rule id (see list) to remove.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"removed": N}.')] = False,
) -> None:
    """Remove rules by word, regex or id."""
    from mediagate.media.textjudge import normalise

    if not words and not regexes and not ids:
        raise fail(
            "nothing to remove", "give --word, --regex or --id (see `mediagate bucket textjudge list`)"
        )
    patterns = [("word", normalise(w.strip())) for w in words or []] + [("regex", r) for r in regexes or []]
    gw = open_gateway()
    try:
        removed = gw.catalog.remove_text_rules(require_bucket(gw, name).id, ids=ids or [], patterns=patterns)
    finally:
        gw.catalog.close()
    asked = len(patterns) + len(ids or [])
    if as_json:
        typer.echo(json.dumps({"removed": removed}))
    else:
        console.print(f"bucket {name}: removed {removed} of {asked} rule(s)")
    if removed < asked:
        raise fail(f"{asked - removed} of the rules given were not the bucket's", "see `textjudge list`")
