"""Versioned prompt templates, rendered into chat messages."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

from pipeline.errors import DebriefError
from pipeline.notes import Notes
from pipeline.resources import prompts_dir
from pipeline.retrieve import Passage

PROMPT_VERSION = "reflect-v1"


@cache
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _load(version: str, part: str) -> str:
    path = prompts_dir() / version / f"{part}.md"
    try:
        return _read(path)
    except OSError as exc:
        raise DebriefError(f"prompt file {path} cannot be read ({exc.strerror or exc}).") from None


def _meta_lines(notes: Notes) -> str:
    m = notes.meta
    rows = [("company", notes.company), ("role", m.role), ("date", m.date), ("round", m.round),
            ("interviewers", ", ".join(m.interviewers) or None), ("current job", m.current_job),
            ("current pay", m.current_pay), ("location", m.location)]
    return "\n".join(f"- {k}: {v}" for k, v in rows if v) or "- (no details given)"


def render_messages(notes: Notes, passages: list[Passage],
                    version: str = PROMPT_VERSION) -> list[tuple[str, str]]:
    """(role, content) pairs; the notes go in as delimited data, never into the system part."""
    block = "\n\n".join(
        f"[{p.id}] {p.title} — {p.heading} (stance: {p.stance})\n{p.text}" for p in passages
    )
    body = notes.body.replace("NOTES>>>", "NOTES >>>")  # the notes cannot close their own fence
    user = Template(_load(version, "user")).safe_substitute(
        meta=_meta_lines(notes), notes=body.strip(), passages=block or "(none retrieved)"
    )
    return [("system", _load(version, "system").strip()), ("user", user.strip())]
