"""The READMEs as a newcomer pastes them: each shell block in a fresh bash, with no exported variables.

A command is run against the sandbox only when it is quick and harmless twice; the others (lifecycle, long,
destructive, interactive, Docker) are checked statically. COMMANDS says which is which: a command it does
not know fails the test, so a new block has to be classified before it can be merged.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml
from e2e_support import ROOT
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from sandbox.cli import app

READMES = ("README.md", "README.pt-BR.md")
DOCUMENTS = (*READMES, *(f"docs/{path.name}" for path in sorted((ROOT / "docs").glob("*.md"))))
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
DEFAULT_ENDPOINT = "http://localhost:4566"
FAILURE_SIGNS = ("Traceback", "command not found", "NoCredentialsError", "No such file", "Missing Authentication Token")
BASH = shutil.which("bash") or "/bin/bash"
BLOCK_TIMEOUT = 120  # seconds; the slowest block (a restock and its release) takes about 3


class How(Enum):
    RUN = "run against the sandbox"
    RUN_OR_409 = "run; exit 1 is fine when the answer was a 409 (the order was sent before)"
    MAKE_N = "not run: `make -n TARGET [VAR=value ...]` must succeed"
    HELP = "not run: `sandbox COMMAND --help` must succeed"
    COMPOSE = "not run: the profiles and services it names must be in docker-compose.yml"


RUNNABLE = (How.RUN, How.RUN_OR_409)


# Every command of a README shell block, comments left out, matches one of these; the first match wins.
COMMANDS: tuple[tuple[str, How, str], ...] = (
    (r"API=\$\(make -s url\)", How.RUN, "sets API for the lines after it"),
    (r"curl -s .*", How.RUN, "a GET, or a POST whose repeat is a 409: curl -s exits 0 either way"),
    (
        r"make (up|down|clean|deploy|seed|reset|test|test-heavy|unit|e2e|soak|bench|deploy-aws|destroy-aws)\b.*",
        How.MAKE_N,
        "lifecycle, long, destructive, or real AWS",
    ),
    (r"make ui\b.*", How.MAKE_N, "serves until Ctrl-C"),
    (r"make (url|outputs|status|notifications|restock|dlq)\b.*", How.RUN, "quick, and harmless twice"),
    (r"\.venv/bin/sandbox \S+ .*--follow\b.*", How.HELP, "runs until Ctrl-C"),
    (r"\.venv/bin/sandbox (reset|seed)\b.*", How.HELP, "asks first, and wipes or overwrites the stock"),
    (r"\.venv/bin/sandbox send\b.*", How.RUN_OR_409, "a second send of the same order is a 409, exit 1"),
    (
        r"\.venv/bin/sandbox (status|watch|upload|notifications|restock|trace)\b.*",
        How.RUN,
        "quick; the same file uploaded again prints its first report at once",
    ),
    (r"docker compose .*", How.COMPOSE, "needs Docker, which our machines and CI do not have"),
)


@dataclass(frozen=True)
class Command:
    text: str  # as written, continuation lines joined, comment included
    argv: tuple[str, ...]  # as the shell splits it, comment left out

    @property
    def canonical(self) -> str:
        return " ".join(self.argv)


@dataclass(frozen=True)
class Block:
    document: str
    line: int  # of the opening fence
    commands: tuple[Command, ...]

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"

    @property
    def canonical(self) -> tuple[str, ...]:
        return tuple(command.canonical for command in self.commands)


def fenced_blocks(document: str) -> tuple[list[tuple[int, str, list[str]]], list[str]]:
    """(line of the opening fence, language, lines) of each fenced block, and what is wrong with the fences."""
    lines = (ROOT / document).read_text("utf-8").splitlines()
    blocks: list[tuple[int, str, list[str]]] = []
    problems: list[str] = []
    opening: tuple[int, str] | None = None
    body: list[str] = []
    for number, line in enumerate(lines, 1):
        if not line.lstrip().startswith("```"):
            if opening:
                body.append(line)
            continue
        if opening is None:
            match = re.fullmatch(r"\s*```([\w+-]*)\s*", line)
            if not match:
                problems.append(f"{document}:{number}: an opening fence takes one word at most: {line!r}")
            opening, body = (number, match[1] if match else ""), []
        else:
            if line.strip() != "```":
                problems.append(f"{document}:{number}: text after a closing fence: {line!r}")
            blocks.append((opening[0], opening[1], body))
            opening = None
    if opening:
        problems.append(f"{document}:{opening[0]}: the fence is never closed")
    return blocks, problems


def _commands(language: str, lines: list[str]) -> Iterator[str]:
    if language == "console":
        lines = [line.removeprefix("$ ") for line in lines if line.startswith("$ ")]
    pending = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text, pending = pending + line, ""
        if text.strip() and not text.lstrip().startswith("#"):
            yield text.strip()


def shell_blocks(document: str) -> list[Block]:
    return [
        Block(
            document,
            line,
            tuple(Command(text, tuple(shlex.split(text, comments=True))) for text in _commands(language, lines)),
        )
        for line, language, lines in fenced_blocks(document)[0]
        if language in SHELL_LANGUAGES
    ]


def how(command: Command) -> How:
    for pattern, kind, _why in COMMANDS:
        if re.fullmatch(pattern, command.canonical):
            return kind
    pytest.fail(f"no rule for `{command.canonical}`: classify it in COMMANDS ({__file__})")


def fresh_shell() -> dict[str, str]:
    """A new terminal's environment: no AWS_*, no API, no virtualenv on PATH; a non-default endpoint kept."""
    venv = str(ROOT / ".venv")
    path = [entry for entry in os.environ.get("PATH", os.defpath).split(os.pathsep) if entry and venv not in entry]
    env = {
        "PATH": os.pathsep.join(path),
        "HOME": os.environ.get("HOME", str(ROOT)),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    endpoint = os.environ.get("AWS_ENDPOINT_URL", DEFAULT_ENDPOINT)
    if endpoint.rstrip("/") != DEFAULT_ENDPOINT:
        env["AWS_ENDPOINT_URL"] = endpoint
    return env


def run(script: str) -> str:
    """Run a bash script from the repository root the way a user would; its output, checked for failures."""
    done = subprocess.run(
        [BASH, "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=fresh_shell(),
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"exit {done.returncode}:\n{script}\n---\n{output}"
    signs = [sign for sign in FAILURE_SIGNS if sign in output]
    assert not signs, f"{signs} in the output of:\n{script}\n---\n{output}"
    return output


# A command as written (its comment too, hence the newline before `}`) whose exit 1 passes only after a 409.
TOLERATING_409 = """\
set +e
out=$({{ {command}
}} 2>&1)
status=$?
set -e
printf '%s\\n' "$out"
[ "$status" -eq 0 ] || {{ [ "$status" -eq 1 ] && [[ $out == *409* ]]; }}"""


def as_script_line(command: Command, kind: How) -> str:
    return command.text if kind is How.RUN else TOLERATING_409.format(command=command.text)


def check_statically(command: Command, kind: How) -> None:
    argv = command.argv
    if kind is How.MAKE_N:
        run(shlex.join(["make", "-n", *argv[1:]]))
    elif kind is How.HELP:
        # In this process: the sandbox entry point itself is what the runnable lines start.
        assert argv[0] == ".venv/bin/sandbox", argv
        result = CliRunner().invoke(app, [argv[1], "--help"])
        assert result.exit_code == 0, f"`sandbox {argv[1]} --help`: exit {result.exit_code}\n{result.output}"
    elif kind is How.COMPOSE:
        compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
        services = compose["services"]
        profiles = {profile for service in services.values() for profile in service.get("profiles", [])}
        named = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--profile"]
        assert set(named) <= profiles, f"`{command.canonical}`: no such profile in docker-compose.yml"
        verb = next(i for i, arg in enumerate(argv) if arg in {"up", "down", "ps", "logs", "stop", "restart"})
        targets = [arg for arg in argv[verb + 1 :] if not arg.startswith("-")]
        assert set(targets) <= set(services), f"`{command.canonical}`: no such service in docker-compose.yml"


def _unique_blocks() -> list[Block]:
    """Each block once: the Portuguese README repeats the English blocks with translated comments."""
    seen: set[tuple[str, ...]] = set()
    blocks = []
    for document in READMES:
        for block in shell_blocks(document):
            if block.canonical not in seen:
                seen.add(block.canonical)
                blocks.append(block)
    return blocks


BLOCKS = _unique_blocks()


@pytest.mark.parametrize("block", BLOCKS, ids=[block.where for block in BLOCKS])
def test_a_readme_block_works_pasted_into_a_fresh_shell(block: Block, request: pytest.FixtureRequest) -> None:
    # Given the block's commands, each classified
    plan = [(command, how(command)) for command in block.commands]
    runnable = [(command, kind) for command, kind in plan if kind in RUNNABLE]

    # When the runnable ones run in order in a new shell, and the others are checked without running them
    if runnable:
        request.getfixturevalue("outputs")  # the sandbox is deployed, or a message that says `make up`
        run("\n".join(as_script_line(command, kind) for command, kind in runnable))
    for command, kind in plan:
        if kind not in RUNNABLE:
            check_statically(command, kind)

    # Then nothing failed (run() asserts the exit code and the output)


@pytest.mark.parametrize("document", READMES)
def test_every_fence_opens_with_one_word_and_closes_bare(document: str) -> None:
    _, problems = fenced_blocks(document)
    assert not problems, "\n".join(problems)


def test_the_readmes_have_the_same_blocks() -> None:
    english, portuguese = ([block.canonical for block in shell_blocks(name)] for name in READMES)
    assert english == portuguese


def test_the_banner_prints_a_readme_block(outputs: dict[str, str]) -> None:
    banner = subprocess.run(
        [sys.executable, "-m", "sandbox.banner"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    printed = tuple(
        " ".join(shlex.split(line, comments=True))
        for line in banner.splitlines()
        if re.match(r"\s+(API=|curl |\.venv/bin/)", line)
    )
    assert printed in {block.canonical for block in BLOCKS}, printed


# --- links ------------------------------------------------------------------------------------------------------


def _links(document: str) -> Iterator[tuple[int, str]]:
    """(line of its paragraph, target) of every inline link, as a Markdown parser reads them: code left out."""
    for token in MarkdownIt().parse((ROOT / document).read_text("utf-8")):
        for child in token.children or []:
            if child.type == "link_open":
                # The parser percent-encodes a target (`#início` becomes `#in%C3%ADcio`): read it back as written.
                yield (token.map[0] + 1 if token.map else 0), unquote(str(child.attrGet("href")))


def _anchor(heading: str) -> str:
    """GitHub's id for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


@functools.cache
def _anchors(path: Path) -> set[str]:
    anchors: set[str] = set()
    tokens = MarkdownIt().parse(path.read_text("utf-8"))
    for opening, inline in zip(tokens, tokens[1:], strict=False):
        if opening.type == "heading_open":
            base = _anchor(inline.content)
            anchor, n = base, 0
            while anchor in anchors:
                n += 1
                anchor = f"{base}-{n}"
            anchors.add(anchor)
    return anchors


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_link_stays_in_the_repository_or_goes_to_a_public_page(document: str) -> None:
    broken = []
    for number, target in _links(document):
        if re.match(r"https?://", target):
            if re.match(r"https?://(localhost|127\.|0\.0\.0\.0)", target):
                broken.append(f"{document}:{number}: {target} is not a public page")
            continue
        path_part, _, anchor = target.partition("#")
        path = (ROOT / document).parent / path_part if path_part else ROOT / document
        resolved = path.resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(f"{document}:{number}: {target} is not a file of the repository")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{document}:{number}: {target}: no heading #{anchor} in {path_part or document}")
    assert not broken, "\n".join(broken)
