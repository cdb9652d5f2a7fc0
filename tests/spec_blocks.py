"""Collects the fenced code blocks of a Markdown document, so docs are tested as written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.S | re.M)


@dataclass(frozen=True)
class CodeBlock:
    language: str
    code: str
    heading: str
    line: int

    @property
    def id(self) -> str:
        return f"L{self.line}-{re.sub(r'[^a-z0-9]+', '-', self.heading.lower()).strip('-')}"


def code_blocks(path: Path, language: str = "python") -> list[CodeBlock]:
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in _FENCE.finditer(text):
        if match.group(1).strip() != language:  # "python no-run" and the like are not run
            continue
        before = text[: match.start()]
        headings = re.findall(r"^#+ (.+)$", _FENCE.sub("", before), re.M)
        blocks.append(CodeBlock(language, match.group(2), headings[-1] if headings else "", before.count("\n") + 1))
    return blocks
