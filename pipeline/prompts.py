"""Versioned prompt templates, rendered into chat messages."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

from pipeline.errors import DebriefError
from pipeline.notes import Notes
from pipeline.profile import Profile
from pipeline.resources import prompts_dir
from pipeline.retrieve import Passage

PROMPT_VERSION = "reflect-v1"
PROFILE_PROMPT_VERSION = "reflect-profile-v1"  # used only when a priorities profile is set


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
    rows.append("Must-haves: " + ("; ".join(profile.must_haves) or "(none)"))
    rows.append("Deal-breakers: " + ("; ".join(profile.deal_breakers) or "(none)"))
    cur = profile.current
    if cur.status == "employed":
        now = "employed" + (f" as {cur.job}" if cur.job else "") + (f", paid {cur.pay}" if cur.pay else "")
    else:
        now = "not working" + (f", savings for {cur.savings_months} months"
                               if cur.savings_months is not None else "")
    rows.append(f"Current situation (the alternative): {now}")
    return "\n".join(rows)


def prompt_version(profile: Profile | None) -> str:
    return PROFILE_PROMPT_VERSION if profile is not None else PROMPT_VERSION


def render_messages(notes: Notes, passages: list[Passage], version: str | None = None,
                    profile: Profile | None = None) -> list[tuple[str, str]]:
    """(role, content) pairs; the notes go in as delimited data, never into the system part."""
    version = version or prompt_version(profile)
    block = "\n\n".join(
        f"[{p.id}] {p.title} — {p.heading} (stance: {p.stance})\n{p.text}" for p in passages
    )
    body = notes.body.replace("NOTES>>>", "NOTES >>>")  # the notes cannot close their own fence
    user = Template(_load(version, "user")).safe_substitute(
        meta=_meta_lines(notes), notes=body.strip(), passages=block or "(none retrieved)",
        profile=_profile_lines(profile) if profile is not None else "(none)",
    )
    return [("system", _load(version, "system").strip()), ("user", user.strip())]
