"""Rank the open processes: one entry per company, its latest round deciding, the earlier
rounds kept as history; which process gives leverage on which; which to withdraw from.

Pure functions over validated reflections, so the CLI and the eval rank the same way.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping

from pydantic import BaseModel, Field

from pipeline.notes import note_date
from pipeline.profile import HIGH_WEIGHT
from pipeline.schema import Reflection

_ROUND_NUM = re.compile(r"\d+")
_LAST = re.compile(r"final|last|offer", re.I)
_LATE = re.compile(r"onsite|on-site|loop|panel", re.I)  # a format: late only when unnumbered
_OFFER = re.compile(r"\boffer\b", re.I)


class Round(BaseModel):
    path: str
    date: str | None
    round: str | None
    decision: str
    confidence: float
    stale: str | None = Field(default=None, description="Why the last redo of this round's "
                                                         "notes failed; the reflection is the "
                                                         "last good one.")


class Process(BaseModel):
    company: str
    rank: int = 0
    decision: str
    confidence: float
    score: float = Field(description="matrix.normalized when a profile is set, else a "
                                     "signed confidence: +conf for keep, -conf for decline.")
    total: int | None = None
    stage: int = Field(description="How far along: the round number, 9 for an offer.")
    latest: Round
    history: list[Round] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list)
    unknown_high: list[str] = Field(
        default_factory=list, description="The unknown criteria weighted 7 or more: what to "
                                          "find out before the next round.")
    forced_decline: str | None = None
    withdraw: bool = False
    withdrawal_draft: str | None = None
    stale: str | None = Field(default=None, description="The latest round's last redo failed "
                                                        "(why); ranked on its last good "
                                                        "reflection.")


class Leverage(BaseModel):
    source: str
    target: str
    why: str


class Ranking(BaseModel):
    processes: list[Process]
    separating: list[dict] = Field(default_factory=list,
                                   description="Criteria whose scores differ most between the "
                                               "top two processes.")
    leverage: list[Leverage] = Field(default_factory=list)
    profile: bool = False


def stage(r: Reflection) -> int:
    """9 for an offer in hand, else the round number. 'final' counts as at least 4; so do
    'onsite', 'loop' or 'panel' without a number ('1 (panel)' is a first round)."""
    text = r.notes.round or ""
    if _OFFER.search(text):
        return 9
    m = _ROUND_NUM.search(text)
    n = int(m.group()) if m else 1
    if _LAST.search(text) or (m is None and _LATE.search(text)):
        n = max(n, 4)
    return min(n, 8)


def note_day(r: Reflection) -> str | None:
    """The note's date by pipeline.notes' rule, so a reflection stored before the file
    name's date counted gets it too."""
    return note_date(r.notes.date, r.notes.path)[0] or r.notes.date


def _order_key(r: Reflection) -> tuple:
    return (note_day(r) or "", stage(r), r.notes.path)


def _score(r: Reflection) -> float:
    if r.matrix is not None:
        return -1.0 if r.matrix.forced_decline else r.matrix.normalized
    return r.confidence if r.decision == "keep" else -r.confidence


def rank_processes(reflections: list[Reflection],
                   stale: Mapping[str, str] | None = None) -> Ranking:
    """``stale``: notes path -> why its last redo failed, for reflections that are the last
    good ones; they rank as they are, marked."""
    stale = stale or {}
    by_company: dict[str, list[Reflection]] = defaultdict(list)
    for r in reflections:
        by_company[r.notes.company.strip() or "unknown"].append(r)
    procs: list[Process] = []
    for company, rs in by_company.items():
        rs = sorted(rs, key=_order_key)
        last = rs[-1]
        rounds = [Round(path=r.notes.path, date=note_day(r), round=r.notes.round,
                        decision=r.decision, confidence=r.confidence,
                        stale=stale.get(r.notes.path)) for r in rs]
        m = last.matrix
        procs.append(Process(
            company=company, decision=last.decision, confidence=last.confidence,
            score=round(_score(last), 4), total=m.total if m else None, stage=stage(last),
            latest=rounds[-1], history=rounds[:-1], unknown=list(m.unknown) if m else [],
            unknown_high=[row.criterion for row in m.rows
                          if row.score is None and row.weight >= HIGH_WEIGHT] if m else [],
            forced_decline=m.forced_decline if m else None,
            withdraw=last.decision == "decline",
            withdrawal_draft=last.next_step.draft if last.decision == "decline" else None,
            stale=rounds[-1].stale))
    # keeps first, then by score, then further along, then by name for a stable order
    procs.sort(key=lambda p: (p.decision != "keep", -p.score, -p.stage, p.company.lower()))
    for i, p in enumerate(procs, 1):
        p.rank = i
    latest = {p.company: next(r for r in by_company[p.company] if r.notes.path == p.latest.path)
              for p in procs}
    return Ranking(processes=procs, separating=_separating(procs, latest),
                      leverage=_leverage(procs),
                      profile=any(r.matrix is not None for r in reflections))


def _separating(procs: list[Process], latest: dict[str, Reflection]) -> list[dict]:
    keeps = [p for p in procs if p.decision == "keep"][:2]
    if len(keeps) < 2:
        return []
    a, b = (latest[p.company].matrix for p in keeps)
    if a is None or b is None:
        return []
    rows_b = {r.criterion: r for r in b.rows}
    out = []
    for ra in a.rows:
        rb = rows_b.get(ra.criterion)
        if rb is None or ra.score is None or rb.score is None or ra.score == rb.score:
            continue
        out.append({"criterion": ra.criterion, "label": ra.label, "weight": ra.weight,
                    keeps[0].company: ra.score, keeps[1].company: rb.score,
                    "weighted_gap": ra.weight * (ra.score - rb.score)})
    return sorted(out, key=lambda d: -abs(d["weighted_gap"]))[:4]


def _leverage(procs: list[Process]) -> list[Leverage]:
    """An offer or a later round at one company, while another open process is slower,
    is something to mention there (the seeds: an offer in hand changes the conversation)."""
    open_ = [p for p in procs if p.decision == "keep"]
    out = []
    for src in open_:
        for dst in open_:
            if src is dst or src.stage <= dst.stage:
                continue
            if src.stage == 9:
                why = (f"You have an offer from {src.company}: tell {dst.company} you have an "
                       "offer and ask whether they can speed up their process.")
            elif src.stage - dst.stage >= 1:
                why = (f"{src.company} is further along (round {src.stage} against "
                       f"{dst.stage}): say so to {dst.company} to ask for their timeline.")
            else:
                continue
            out.append(Leverage(source=src.company, target=dst.company, why=why))
    return out
