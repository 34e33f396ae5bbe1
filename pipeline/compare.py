"""Rank the open processes: one entry per company, its latest round deciding, the earlier
rounds kept as history; which process gives leverage on which; which to withdraw from.

Pure functions over validated reflections, so the CLI, the batch outputs and the eval all
rank the same way.
"""

from __future__ import annotations

import re
from collections import defaultdict

from pydantic import BaseModel, Field

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


class Leverage(BaseModel):
    source: str
    target: str
    why: str


class Comparison(BaseModel):
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


def _order_key(r: Reflection) -> tuple:
    return (r.notes.date or "", stage(r), r.notes.path)


def _score(r: Reflection) -> float:
    if r.matrix is not None:
        return -1.0 if r.matrix.forced_decline else r.matrix.normalized
    return r.confidence if r.decision == "keep" else -r.confidence


def compare(reflections: list[Reflection]) -> Comparison:
    by_company: dict[str, list[Reflection]] = defaultdict(list)
    for r in reflections:
        by_company[r.notes.company.strip() or "unknown"].append(r)
    procs: list[Process] = []
    for company, rs in by_company.items():
        rs = sorted(rs, key=_order_key)
        last = rs[-1]
        rounds = [Round(path=r.notes.path, date=r.notes.date, round=r.notes.round,
                        decision=r.decision, confidence=r.confidence) for r in rs]
        m = last.matrix
        procs.append(Process(
            company=company, decision=last.decision, confidence=last.confidence,
            score=round(_score(last), 4), total=m.total if m else None, stage=stage(last),
            latest=rounds[-1], history=rounds[:-1], unknown=list(m.unknown) if m else [],
            unknown_high=[row.criterion for row in m.rows
                          if row.score is None and row.weight >= HIGH_WEIGHT] if m else [],
            forced_decline=m.forced_decline if m else None,
            withdraw=last.decision == "decline",
            withdrawal_draft=last.next_step.draft if last.decision == "decline" else None))
    # keeps first, then by score, then further along, then by name for a stable order
    procs.sort(key=lambda p: (p.decision != "keep", -p.score, -p.stage, p.company.lower()))
    for i, p in enumerate(procs, 1):
        p.rank = i
    latest = {p.company: next(r for r in by_company[p.company] if r.notes.path == p.latest.path)
              for p in procs}
    return Comparison(processes=procs, separating=_separating(procs, latest),
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


def kendall_tau(predicted: list[str], gold: list[str]) -> float:
    """Kendall's tau-a over the items both lists rank; 1 same order, -1 reversed.

    Hand-written: the formula is four lines, and scipy is not a dependency of this tool.
    """
    items = [g for g in gold if g in predicted]
    pos = {c: predicted.index(c) for c in items}
    n = len(items)
    if n < 2:
        return 0.0
    concordant = discordant = 0
    for i in range(n):
        for j in range(i + 1, n):
            if pos[items[i]] < pos[items[j]]:
                concordant += 1
            else:
                discordant += 1
    return round((concordant - discordant) / (n * (n - 1) / 2), 4)


# -- the report ('debrief compare', and anything else that wants it as Markdown) --------------
def stage_label(stage_: int) -> str:
    return "offer" if stage_ >= 9 else f"round {stage_}"


def round_label(r: Round) -> str:
    """'2026-06-16, round 2' from what the notes' front matter says."""
    parts = [r.date or "undated"]
    if r.round:
        parts.append(f"round {r.round}" if r.round[:1].isdigit() else r.round)
    return ", ".join(parts)


def verdict(decision: str) -> str:
    return "keep pursuing" if decision == "keep" else "decline"


def criterion_label(key: str) -> str:
    return key.replace("_", " ")


def withdraw_reason(p: Process) -> str:
    if p.forced_decline:
        return p.forced_decline
    return f"your latest reflection says decline (confidence {p.confidence:.2f})"


def _md(text: object) -> str:
    """One table cell or list item: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def separating_rows(c: Comparison) -> tuple[list[str], list[list[str]]]:
    """The separating criteria as (header, rows), shared by Markdown and the terminal."""
    keeps = [p.company for p in c.processes if p.decision == "keep"][:2]
    head = ["criterion", "weight", *keeps, "weighted gap"]
    rows = [[str(s.get("label") or s["criterion"]), str(s["weight"]),
             *(f"{s[k]:+d}" if s[k] else "0" for k in keeps), f"{s['weighted_gap']:+d}"]
            for s in c.separating]
    return head, rows


def to_markdown(c: Comparison, failed: list[tuple[str, str]] | None = None) -> str:
    """The ranking as a Markdown report: the table, what separates the top two, leverage,
    what to withdraw from (with the drafts), earlier rounds, and the notes that failed."""
    failed = failed or []
    n = len(c.processes)
    by = ("the weighted total of your priorities profile" if c.profile
          else "the confidence of each keep-or-decline call (no priorities profile)")
    out = ["# Your open processes, ranked", "",
           f"_{n} compan{'y' if n == 1 else 'ies'}, each by its latest round; keeps first, "
           f"then by {by}._", ""]
    if not c.processes:
        out += ["No reflections to rank.", ""]
    else:
        out += ["| # | company | decision | confidence | weighted total | score | stage "
                "| latest round | unknown, high weight |",
                "|---:|---|---|---:|---:|---:|---|---|---|"]
        for p in c.processes:
            total = "—" if p.total is None else f"{p.total:+d}"
            unknown = ", ".join(criterion_label(u) for u in p.unknown_high) or "—"
            flag = " (withdraw)" if p.withdraw else ""
            out.append(f"| {p.rank} | {_md(p.company)} | {verdict(p.decision)}{flag} | "
                       f"{p.confidence:.2f} | {total} | {p.score:+.2f} | "
                       f"{stage_label(p.stage)} | {_md(round_label(p.latest))} | "
                       f"{_md(unknown)} |")
        out.append("")
    if c.separating:
        head, rows = separating_rows(c)
        out += [f"## What separates {_md(head[2])} from {_md(head[3])}", "",
                "| " + " | ".join(_md(h) for h in head) + " |",
                "|---|---:|---:|---:|---:|"]
        out += ["| " + " | ".join(_md(x) for x in row) + " |" for row in rows]
        out.append("")
    if c.leverage:
        out += ["## Leverage", ""]
        out += [f"- **{_md(lv.source)} → {_md(lv.target)}**: {_md(lv.why)}" for lv in c.leverage]
        out.append("")
    quit_ = [p for p in c.processes if p.withdraw]
    if quit_:
        out += ["## Withdraw from", ""]
        for p in quit_:
            out += [f"### {_md(p.company)}", "", f"Why: {_md(withdraw_reason(p))}.", ""]
            if p.withdrawal_draft:
                out += [f"    {line}" if line else "" for line in
                        p.withdrawal_draft.splitlines()]
                out.append("")
    earlier = [p for p in c.processes if p.history]
    if earlier:
        out += ["## Earlier rounds", "",
                "Only the latest round of each company ranks; these came before it.", ""]
        for p in earlier:
            for r in p.history:
                out.append(f"- {_md(p.company)}: {_md(round_label(r))}: {verdict(r.decision)} "
                           f"({r.confidence:.2f}), `{r.path.replace('`', chr(39))}`")
        out.append("")
    if failed:
        out += [f"## Failed ({len(failed)})", "",
                "These notes have no reflection and are not ranked; fix them and run again.", ""]
        out += [f"- `{path.replace('`', chr(39))}`: {_md(error)}" for path, error in failed]
        out.append("")
    return "\n".join(out)
