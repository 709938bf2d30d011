"""UPYUN ``textjudge``: the uploaded text judged by its bucket's word list and regular expressions
(:mod:`mediagate.media.textjudge`; spec shared/specs/upyun-apps.md §3.5, §6.15).

The callback's ``result`` is ``{"label", "review", "spam", "normal"}`` as §3.5 chose, plus
``engine`` (always ``rules``: this engine is always installed), ``rules`` (how many were checked),
``hits`` (which matched) and ``charset`` (how the bytes were read). Failures, with the callback's
``status_code``: not text → 415; over 64 KB → 413; a regular expression that ran out of time →
500 naming it (not retried: the same text and rule time out again). None is ever a made-up label.
"""

from __future__ import annotations

from mediagate.core.errors import PayloadTooLarge, UnsupportedMedia
from mediagate.media.textjudge import MAX_BYTES, REGEX_SECONDS, Rule, RuleTimeout, judge_bytes
from mediagate.tasks.registry import TaskContext, TaskFailed, TaskResult

KIND = "textjudge"


def run_textjudge(ctx: TaskContext) -> TaskResult:
    source = ctx.fetch_source()
    with source.open("rb") as f:
        data = f.read(MAX_BYTES + 1)  # an over-size file is refused without reading it all
    rules = [Rule(r.kind, r.pattern, r.label) for r in ctx.gateway.catalog.text_rules(ctx.bucket.id)]
    try:
        verdict = judge_bytes(data, rules)
    except PayloadTooLarge:
        size = source.stat().st_size
        raise TaskFailed(
            f"the text is {size} bytes; textjudge reads texts of at most {MAX_BYTES} bytes", status=413
        ) from None
    except UnsupportedMedia as exc:
        raise TaskFailed(exc.message, status=415) from None
    except RuleTimeout as exc:
        raise TaskFailed(
            f"the bucket's regex rule {exc.pattern!r} did not finish within {REGEX_SECONDS:g} s on this "
            "text; simplify or remove it (mediagate bucket textjudge rm)",
            status=500,
        ) from None
    return TaskResult(result={"result": verdict.upyun()})
