"""Versioned prompt templates, rendered into one request: the messages, the numbered note
sentences the model may cite, and the JSON schema its answer must fit.

The static part (the system message) comes first and the notes last, so that a local
server's prompt cache reuses the longest prefix across the notes of a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

from pipeline.errors import DebriefError
from pipeline.guard import is_injection
from pipeline.notes import Notes
from pipeline.profile import Profile
from pipeline.resources import prompts_dir
from pipeline.retrieve import Retrieval
from pipeline.schema import answer_schema
from pipeline.text import MIN_QUOTE_CHARS, align_quote, canon, sentences

PROMPT_VERSION = "reflect-v2"
PROFILE_PROMPT_VERSION = "reflect-profile-v2"  # used only when a priorities profile is set
MAX_SENTENCES = 80  # notes longer than this are cited by their first 80 usable sentences
PASSAGE_CHARS = 200  # enough for a model to see what a passage is about


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


def _profile_lines(profile: Profile) -> str:
    rows = ["Criteria (name: what it means; weight 1-10):"]
    for key, crit in sorted(profile.criteria.items(), key=lambda kv: (-kv[1].weight, kv[0])):
        rows.append(f"- {key}: {profile.description(key)}; weight {crit.weight}")
    rows.append("Must-haves:" + ("".join(f"\n- M{i}: {m}" for i, m in
                                          enumerate(profile.must_haves, 1)) or " (none)"))
    rows.append("Deal-breakers:" + ("".join(f"\n- D{i}: {d}" for i, d in
                                             enumerate(profile.deal_breakers, 1)) or " (none)"))
    cur = profile.current
    if cur.status == "employed":
        now = "employed" + (f" as {cur.job}" if cur.job else "") + (f", paid {cur.pay}" if cur.pay else "")
    else:
        now = "not working" + (f", savings for {cur.savings_months} months"
                               if cur.savings_months is not None else "")
    rows.append(f"Current situation (the alternative): {now}")
    return "\n".join(rows)


def _excerpt(text: str, limit: int = PASSAGE_CHARS) -> str:
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat.rfind(" ", 0, limit)
    return flat[:cut if cut > limit // 2 else limit].rstrip(" ,;:") + " …"


def prompt_sentences(notes: Notes, retrieval: Retrieval) -> list[str]:
    """The note sentences a model may quote, in order. Lines that instruct the tool, and
    fragments too short to be evidence, are left out, so they cannot be quoted."""
    ignored = set(retrieval.ignored)
    out: list[str] = []
    seen: set[str] = set()
    for sentence in sentences(notes.body):
        if (sentence in ignored or shown(sentence) in seen or is_injection(sentence)
                or len(canon(sentence)) < MIN_QUOTE_CHARS):
            continue
        out.append(sentence)
        seen.add(shown(sentence))
    return out[:MAX_SENTENCES]


def shown(sentence: str) -> str:
    """A note sentence as the model sees it: one line, and unable to close the notes' fence."""
    return " ".join(sentence.replace("NOTES>>>", "NOTES >>>").split())


@dataclass(frozen=True)
class Prompt:
    version: str
    messages: list[tuple[str, str]]
    sentences: list[str]  # the note sentences the model was shown, in the notes' own words
    schema: dict[str, Any]

    def resolve(self, quote: str | None) -> str | None:
        """The exact words of the shown sentences a model's quote comes from, or None.
        Aligned only against what was shown, so a line set aside as an instruction to the
        tool can never become evidence."""
        if quote is None:
            return None
        span = align_quote(quote, "\n".join(self.sentences))
        if not span:
            return None
        # a fragment stands for its whole sentence: evidence reads as the person wrote it
        return next((s for s in self.sentences if span in s), " ".join(span.split()))


def prompt_version(profile: Profile | None) -> str:
    return PROFILE_PROMPT_VERSION if profile is not None else PROMPT_VERSION


def build_prompt(notes: Notes, retrieval: Retrieval, profile: Profile | None = None,
                 version: str | None = None) -> Prompt:
    """(role, content) messages; the notes go in as numbered data, never into the system part."""
    version = version or prompt_version(profile)
    cited = prompt_sentences(notes, retrieval)
    block = "\n".join(
        f"[{p.id}] {p.heading} ({p.stance}): {_excerpt(p.text)}"
        for p in retrieval.passages
    )
    listed = [shown(s) for s in cited]
    numbered = "\n".join(f"- {s}" for s in listed)
    user = Template(_load(version, "user")).safe_substitute(
        meta=_meta_lines(notes), notes=numbered or "(no usable sentences)",
        passages=block or "(none retrieved)",
        profile=_profile_lines(profile) if profile is not None else "(none)",
    )
    schema = answer_schema(
        len(listed), [p.id for p in retrieval.passages],
        criteria=sorted(profile.criteria) if profile is not None else None,
        deal_breakers=len(profile.deal_breakers) if profile is not None else 0,
        must_haves=len(profile.must_haves) if profile is not None else 0)
    return Prompt(version=version, sentences=cited, schema=schema,
                  messages=[("system", _load(version, "system").strip()), ("user", user.strip())])
