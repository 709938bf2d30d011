"""The README quickstart works as printed: every ``$ command`` in it runs, in order, on a fresh home
served like ``make run`` does, and prints what the README shows (times, ids, hashes and random
secrets masked)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import free_port

README = Path(__file__).resolve().parents[1] / "README.md"
MARK = "@@quickstart-step@@"

MASKS = (
    (re.compile(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT"), "<http-date>"),
    (re.compile(r"AK[0-9A-F]{20}"), "<access-key-id>"),
    (re.compile(r'("secret_access_key": ")[^"]+'), r"\1<secret>"),
    (re.compile(r"\b(mk|mgk|mgt|ut)_[0-9a-f_]+"), r"\1_<id>"),  # /v1 key and upload-token ids, secrets
    (re.compile(r"\b[0-9a-f]{16,}\b"), lambda m: "h" * len(m.group())),
    (re.compile(r"\d"), "0"),
)


def quickstart() -> list[tuple[str, str]]:
    """(command, expected output) for every ``$`` line of the Quickstart's console blocks."""
    text = README.read_text()
    section = text[text.index("## Quickstart") : text.index("## Commands")]
    steps: list[tuple[str, str]] = []
    for block in re.findall(r"```console\n(.*?)```", section, re.S):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            assert lines[i].startswith("$ "), f"output with no command: {lines[i]!r}"
            command = [lines[i][2:]]
            while command[-1].endswith("\\"):
                i += 1
                command.append(lines[i])
            if "<<'EOF'" in command[0]:
                while lines[i] != "EOF":
                    i += 1
                    command.append(lines[i])
            i += 1
            output = []
            while i < len(lines) and not lines[i].startswith("$ "):
                output.append(lines[i])
                i += 1
            steps.append(("\n".join(command), "\n".join(output)))
    return steps


def masked(text: str) -> list[str]:
    """The lines with varying parts masked; the rows of a table are sorted (a listing sorts by
    key, and a random hex key lands before or after ``docs/`` depending on its first digit)."""
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)  # type: ignore[arg-type]
    lines = [line.rstrip() for line in text.strip("\n").splitlines() if line.strip()]
    out: list[str] = []
    rows: list[str] = []
    for line in [*lines, ""]:
        if line.startswith("│"):
            rows.append(line)
            continue
        out += sorted(rows)
        rows = []
        out.append(line)
    return out[:-1]


@contextmanager
def make_run(cwd: Path, env: dict[str, str]) -> Iterator[int]:
    """What `make run` does: `mediagate --home ./data init --demo`, then `serve` (its own flags)."""
    mediagate = [sys.executable, "-m", "mediagate", "--home", "./data"]
    subprocess.run([*mediagate, "init", "--demo"], cwd=cwd, env=env, check=True, capture_output=True)
    port = free_port()
    log = (cwd / "serve.log").open("wb")
    server = subprocess.Popen(
        [*mediagate, "serve", "--port", str(port)], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None and time.monotonic() < deadline, (cwd / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(10)
        log.close()


def test_the_quickstart_runs_as_printed(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGATE_")} | {"COLUMNS": "80"}
    with make_run(tmp_path, env) as port:
        steps = quickstart()
        assert len(steps) >= 12
        python = shlex.quote(sys.executable)
        script = "\n".join(
            f"echo {MARK}\n"
            + command.replace(".venv/bin/mediagate", "@mediagate@")
            .replace(".venv/bin/python", "@python@")
            .replace("@mediagate@", f"{python} -m mediagate")
            .replace("@python@", python)
            .replace("127.0.0.1:8080", f"127.0.0.1:{port}")
            for command, _ in steps
        )
        done = subprocess.run(
            ["bash", "-c", "exec 2>&1\n" + script],
            cwd=tmp_path,
            env=env | {"MEDIAGATE_UPLOAD_ENDPOINT": f"http://127.0.0.1:{port}"},  # the README's default
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    outputs = done.stdout.split(MARK + "\n")[1:]
    assert len(outputs) == len(steps), done.stdout + done.stderr
    for (command, expected), got in zip(steps, outputs, strict=True):
        expected = expected.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        assert masked(got) == masked(expected), f"$ {command}\n{got}"
