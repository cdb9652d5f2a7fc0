"""Every example of the user docs (docs/*.md, not docs/spec) runs as written.

Conventions, shared by all pages:

* ```python blocks run. A page's blocks run in order in one namespace, with the
  current directory set to a fresh temporary directory, like a reader following
  the page top to bottom. A block that fails is reported with the page, its line
  and its heading.
* ```py blocks are illustrations that need what a test run does not have (a model
  server, a PostgreSQL server, a terminal to type into). They are compiled, never
  run, and reported as skipped.
* ```console blocks (docs/cli.md) are terminal sessions: each `$ kaizen ...` line
  runs through click's CliRunner, and what the page shows below it is compared
  with the real output. Ids, timestamps, sizes and durations differ from run to
  run, so those are matched by shape; an id seen in an earlier output stands for
  the id the test run produced there (so `kaizen checkpoints show ckpt_...` shows
  the checkpoint listed just before). A line `...` stands for any lines.
* A ```toml block whose first line is `# <file name>` is written to that file.
* ```bash and ```text blocks are never run.

An example that reveals a bug stays the correct usage and is marked in KNOWN_BUGS
(strict xfail: it fails loudly once the bug is fixed, so the mark gets removed).
"""

from __future__ import annotations

import difflib
import importlib.util
import logging
import os
import re
import shlex
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from spec_blocks import CodeBlock, code_blocks

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PAGES = ["state-api.md", "checkpoints.md", "migrating.md", "agent-loop.md", "approvals-and-hooks.md", "cli.md", "langgraph.md", "scaling.md",
         "observability.md", "console.md"]
RUN, SHOW, CONSOLE, FILE = "python", "py", "console", "toml"
KINDS = (RUN, SHOW, CONSOLE, FILE)
NEVER_RUN = ("bash", "text", "json", "")

# (page, a piece of the block's code) -> why the example fails today.
KNOWN_BUGS: dict[tuple[str, str], str] = {}


# --- collecting blocks ------------------------------------------------------------------------
def page_blocks(page: str) -> list[CodeBlock]:
    """The page's blocks of every kind we handle, in page order."""
    path = DOCS / page
    if not path.exists():  # reported by test_every_fence_is_understood
        return []
    blocks = [block for kind in KINDS for block in code_blocks(path, kind)]
    return sorted(blocks, key=lambda block: block.line)


def heading_of(page: str, line: int) -> str:
    """The last heading above ``line``, ignoring fenced code (spec_blocks' ``heading`` counts a
    ``# comment`` at the start of a code line as a heading)."""
    heading, fenced = "", False
    for text in (DOCS / page).read_text(encoding="utf-8").splitlines()[: line - 1]:
        if text.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#+ ", text):
            heading = text.lstrip("#").strip()
    return heading


def block_id(page: str, block: CodeBlock) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", heading_of(page, block.line).lower()).strip("-")
    return f"{page}:L{block.line}-{slug}"


HAS_KAILASH = importlib.util.find_spec("kailash") is not None


def needs_kailash(page: str, block: CodeBlock) -> bool:
    """The demo's output depends on its Kailash step; other blocks say so themselves."""
    return page == "cli.md" or "kailash" in block.code.lower()


def block_param(page: str, block: CodeBlock) -> Any:
    marks = []
    if not HAS_KAILASH and needs_kailash(page, block):
        marks.append(pytest.mark.skip(reason="needs kailash (pip install -e '.[kailash]')"))
    if block.language == SHOW:
        marks.append(pytest.mark.skip(reason=f"{page} line {block.line}: illustration, not run (```py)"))
    for (bug_page, needle), reason in KNOWN_BUGS.items():
        if bug_page == page and needle in block.code:
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
    return pytest.param(page, block, id=block_id(page, block), marks=marks)


ALL_BLOCKS = [block_param(page, block) for page in PAGES for block in page_blocks(page)]


# --- running a page ---------------------------------------------------------------------------
@dataclass
class Outcome:
    ok: bool
    message: str = ""


@dataclass
class PageRun:
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    kailash_log_lines: list[str] = field(default_factory=list)


_RUNS: dict[str, PageRun] = {}


def where(page: str, block: CodeBlock) -> str:
    return f"docs/{page} line {block.line} (under {heading_of(page, block.line)!r})"


@contextmanager
def isolated(directory: Path):
    """A page runs in its own directory and may set env vars, log levels and warning filters."""
    cwd, environ = os.getcwd(), dict(os.environ)
    levels = {name: logging.getLogger(name).level for name in ("", "kailash", "kaizen")}
    os.chdir(directory)
    try:
        with warnings.catch_warnings():
            yield
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def run_page(page: str, tmp_path_factory: pytest.TempPathFactory) -> PageRun:
    if page in _RUNS:
        return _RUNS[page]
    run = _RUNS[page] = PageRun()
    namespace: dict[str, Any] = {"__name__": "__main__"}
    console = Console(run)
    first_failure: str | None = None
    with isolated(tmp_path_factory.mktemp(page.replace(".", "_"))):
        for block in page_blocks(page):
            if block.language == SHOW:
                compile(block.code, f"docs/{page}", "exec")  # illustrations must at least parse
                continue
            if not HAS_KAILASH and needs_kailash(page, block):
                continue
            try:
                if block.language == RUN:
                    code = compile("\n" * block.line + block.code, str(DOCS / page), "exec")
                    exec(code, namespace)
                elif block.language == CONSOLE:
                    console.run_session(block.code)
                elif block.language == FILE:
                    write_file_block(block.code)
                outcome = Outcome(True)
            except (KeyboardInterrupt, GeneratorExit):
                raise
            except BaseException as exc:  # SystemExit or a page's own BaseException is a failure too
                detail = exc.args[0] if isinstance(exc, DocMismatch) else _doc_traceback(exc, page)
                message = f"{where(page, block)} failed:\n{detail}"
                if first_failure is not None:
                    message += f"\n(an earlier block failed first: {first_failure})"
                first_failure = first_failure or where(page, block)
                outcome = Outcome(False, message)
            run.outcomes[block.line] = outcome
    return run


def _doc_traceback(exc: BaseException, page: str) -> str:
    """The traceback from the page's own frames on (the harness frames are noise)."""
    frames = traceback.extract_tb(exc.__traceback__)
    start = next((i for i, frame in enumerate(frames) if frame.filename.endswith(page)), 0)
    lines = traceback.format_list(frames[start:]) + traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def write_file_block(code: str) -> None:
    first = code.splitlines()[0]
    match = re.fullmatch(r"#\s*(\S+)", first.strip())
    if not match:
        raise AssertionError(f"a ```toml block must start with '# <file name>', got {first!r}")
    Path(match.group(1)).write_text(code, encoding="utf-8")


# --- console sessions -------------------------------------------------------------------------
class DocMismatch(AssertionError):
    """The real output differs from the page (the message shows both)."""


ID = r"(?:ckpt|run|lin)_[0-9a-f]{12,16}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TIMESTAMP = (
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2})?"
    r"|\d{2}-\d{2} \d{2}:\d{2}:\d{2}|\d{2}:\d{2}:\d{2}"
)
# Decimals (durations, costs) and numbers of 4+ digits (sizes, token counts) vary between
# runs; short integers (steps, counts, exit codes) must match exactly.
VARYING_NUMBER = r"\d+\.\d+(?:e-?\d+)?|\d{4,}"
TOKEN = re.compile(rf"(?P<id>{ID})|(?P<ts>{TIMESTAMP})|(?P<num>{VARYING_NUMBER})")
# Kailash's LocalRuntime logs at INFO on its own logger; see test_demo_prints_no_kailash_log_lines.
KAILASH_LOG_LINE = re.compile(
    r"^warning: (Standard DAG workflow detected|Execution order:|Executing node:|Node \S+ completed successfully)"
)


def normalize(text: str) -> list[str]:
    """Lines without run-length noise: table rules and runs of spaces collapse, blank lines go."""
    lines = []
    for line in text.splitlines():
        line = re.sub(r"([━─═])\1+", r"\1", line)
        line = re.sub(r"[ \t]+", " ", line).strip()
        if line:
            lines.append(line)
    return lines


def mask(line: str) -> str:
    """Ids, times and varying numbers as placeholders, so a diff shows only real differences."""
    return TOKEN.sub(lambda token: f"<{token.lastgroup}>", line)


class Console:
    """Runs the `$ kaizen ...` lines of console blocks and checks their output."""

    def __init__(self, run: PageRun) -> None:
        self.page_run = run
        self.ids: dict[str, str] = {}  # id shown on the page -> id of this test run

    def run_session(self, code: str) -> None:
        for command, expected in parse_session(code):
            self.run_command(command, expected)

    def run_command(self, command: str, expected: list[str]) -> None:
        from click.testing import CliRunner

        from kaizen.cli import main

        shown = command
        for doc_id, real_id in self.ids.items():
            command = command.replace(doc_id, real_id)
        words = shlex.split(command)
        env: dict[str, str | None] = {"COLUMNS": "100", "KAIZEN_STORE": None}
        while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
            name, value = words.pop(0).split("=", 1)
            env[name] = value
        redirect = None
        if len(words) >= 2 and words[-2] == ">":
            redirect = words[-1]
            words = words[:-2]
        if not words or words[0] != "kaizen":
            raise DocMismatch(f"only `kaizen` commands can run in a console block, got {shown!r}")
        with cli_logging():
            # terminal_width: what click uses in a real terminal (CliRunner would force 80)
            result = CliRunner().invoke(main, words[1:], env=env, prog_name="kaizen", terminal_width=78)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise DocMismatch(f"$ {shown}\nraised {result.exception!r}:\n"
                              + "".join(traceback.format_exception(result.exception)))
        if redirect is not None:
            Path(redirect).write_text(result.stdout, encoding="utf-8")
            terminal = result.stderr
        else:
            terminal = result.output
        terminal = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal)  # in case FORCE_COLOR is set
        lines = []
        for line in terminal.splitlines():
            if KAILASH_LOG_LINE.match(line):
                self.page_run.kailash_log_lines.append(line)
            else:
                lines.append(line)
        self.compare(shown, expected, "\n".join(lines), result.exit_code)

    def compare(self, command: str, expected: list[str], actual: str, exit_code: int) -> None:
        damaged = any(line.startswith("tampered:") or (line.startswith("error:") and " is damaged " in line)
                      for line in expected)  # the CLI's own exit code for damage and tampering
        want_exit = 3 if damaged else (1 if any(line.startswith("error:") for line in expected) else 0)
        pattern, groups = self.pattern(normalize("\n".join(expected)))
        got = normalize(actual)
        match = re.fullmatch(pattern, "".join(line + "\n" for line in got))
        if match is None or exit_code != want_exit:
            shown = [mask(line) for line in normalize("\n".join(expected))]
            diff = "\n".join(difflib.unified_diff(shown, [mask(line) for line in got], "on the page",
                                                   "real output", lineterm=""))
            raise DocMismatch(f"$ {command}\nexit code {exit_code} (page implies {want_exit})\n"
                              f"output differs from the page (ids, times, sizes and durations may differ):\n{diff}")
        for group, doc_id in groups.items():
            self.ids.setdefault(doc_id, match.group(group))

    def pattern(self, expected: list[str]) -> tuple[str, dict[str, str]]:
        groups: dict[str, str] = {}  # regex group -> id on the page
        named: dict[str, str] = {}  # id on the page -> its group, once defined
        parts = []
        for line in expected:
            if line == "...":
                parts.append(r"(?:[^\n]*\n)*?")
                continue
            out, pos = [], 0
            for token in TOKEN.finditer(line):
                out.append(re.escape(line[pos:token.start()]))
                text = token.group(0)
                if token.lastgroup == "id":
                    if text in self.ids:
                        out.append(re.escape(self.ids[text]))
                    elif text in named:
                        out.append(f"(?P={named[text]})")
                    else:
                        name = named[text] = f"id{len(named)}"
                        groups[name] = text
                        out.append(f"(?P<{name}>{ID})")
                elif token.lastgroup == "ts":
                    out.append(f"(?:{TIMESTAMP})")
                else:
                    out.append(f"(?:{VARYING_NUMBER})")
                pos = token.end()
            out.append(re.escape(line[pos:]))
            parts.append("".join(out) + r"\n")
        return "".join(parts), groups


def parse_session(code: str) -> list[tuple[str, list[str]]]:
    """`$ command` lines and the output shown under each."""
    session: list[tuple[str, list[str]]] = []
    for line in code.splitlines():
        if line.startswith("$ "):
            session.append((line[2:].strip(), []))
        elif session:
            session[-1][1].append(line)
        elif line.strip():
            raise DocMismatch(f"a console block must start with a `$ ` command line, got {line!r}")
    return session


@contextmanager
def cli_logging():
    """Let the command configure logging as it does for a user (pytest's handlers step aside)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    kailash_level = logging.getLogger("kailash").level
    root.handlers = []
    try:
        with warnings.catch_warnings():
            yield
    finally:
        root.handlers = handlers
        root.setLevel(level)
        logging.getLogger("kailash").setLevel(kailash_level)


# --- the tests --------------------------------------------------------------------------------
@pytest.mark.parametrize("page, block", ALL_BLOCKS)
def test_example(page: str, block: CodeBlock, tmp_path_factory: pytest.TempPathFactory) -> None:
    outcome = run_page(page, tmp_path_factory).outcomes[block.line]
    if not outcome.ok:
        pytest.fail(outcome.message, pytrace=False)


@pytest.mark.parametrize("page", PAGES)
def test_every_fence_is_understood(page: str) -> None:
    """A fence whose info string is not one word would shift every later block (spec_blocks
    reads ``` + one word); every fence must also be of a kind this harness knows."""
    text = (DOCS / page).read_text(encoding="utf-8")
    fences = re.findall(r"^```(.*)$", text, re.M)
    openers = fences[::2]
    assert len(fences) % 2 == 0, f"docs/{page}: unbalanced ``` fences"
    assert all(re.fullmatch(r"\w*", info) for info in fences), f"docs/{page}: fences {fences}"
    assert fences[1::2] == [""] * len(openers), f"docs/{page}: a closing fence carries an info string"
    unknown = sorted(set(openers) - set(KINDS) - set(NEVER_RUN))
    assert not unknown, f"docs/{page}: unknown block kinds {unknown}"
    assert sum(len(code_blocks(DOCS / page, kind)) for kind in set(openers)) == len(openers)
    assert any(opener == RUN for opener in openers), f"docs/{page} has no runnable example"


@pytest.mark.skipif(not HAS_KAILASH, reason="needs kailash (pip install -e '.[kailash]')")
def test_demo_prints_no_kailash_log_lines(tmp_path_factory: pytest.TempPathFactory) -> None:
    run = run_page("cli.md", tmp_path_factory)
    assert not run.kailash_log_lines, "\n".join(run.kailash_log_lines)


def github_anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("page", PAGES)
def test_links_resolve(page: str) -> None:
    """Relative links point at existing files, and #anchors at existing headings."""
    text = (DOCS / page).read_text(encoding="utf-8")
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        file = (DOCS / page).parent / path if path else DOCS / page
        assert file.exists(), f"docs/{page}: link to missing {target}"
        if anchor:
            body = re.sub(r"^```.*?^```", "", file.read_text(encoding="utf-8"), flags=re.S | re.M)
            anchors = {github_anchor(h) for h in re.findall(r"^#+ (.+)$", body, re.M)}
            assert anchor in anchors, f"docs/{page}: no heading for #{anchor} in {file.name}"


def test_known_bugs_point_at_examples() -> None:
    for page, needle in KNOWN_BUGS:
        assert any(needle in block.code for block in page_blocks(page)), f"KNOWN_BUGS entry {needle!r} is stale"
