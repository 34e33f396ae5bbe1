"""The ranking of open processes as Markdown, and the labels its terminal view shares."""

from __future__ import annotations

from pipeline.rank import Process, Ranking, Round
from pipeline.render.markdown import cell


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


def separating_rows(c: Ranking) -> tuple[list[str], list[list[str]]]:
    """The separating criteria as (header, rows), shared by Markdown and the terminal."""
    keeps = [p.company for p in c.processes if p.decision == "keep"][:2]
    head = ["criterion", "weight", *keeps, "weighted gap"]
    rows = [[str(s.get("label") or s["criterion"]), str(s["weight"]),
             *(f"{s[k]:+d}" if s[k] else "0" for k in keeps), f"{s['weighted_gap']:+d}"]
            for s in c.separating]
    return head, rows


def ranking_markdown(c: Ranking, failed: list[tuple[str, str]] | None = None) -> str:
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
            flag += " (stale: its redo failed, see Failed)" if p.stale else ""
            out.append(f"| {p.rank} | {cell(p.company)} | {verdict(p.decision)}{flag} | "
                       f"{p.confidence:.2f} | {total} | {p.score:+.2f} | "
                       f"{stage_label(p.stage)} | {cell(round_label(p.latest))} | "
                       f"{cell(unknown)} |")
        out.append("")
    if c.separating:
        head, rows = separating_rows(c)
        out += [f"## What separates {cell(head[2])} from {cell(head[3])}", "",
                "| " + " | ".join(cell(h) for h in head) + " |",
                "|---|---:|---:|---:|---:|"]
        out += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
        out.append("")
    if c.leverage:
        out += ["## Leverage", ""]
        out += [f"- **{cell(lv.source)} → {cell(lv.target)}**: {cell(lv.why)}" for lv in c.leverage]
        out.append("")
    quit_ = [p for p in c.processes if p.withdraw]
    if quit_:
        out += ["## Withdraw from", ""]
        for p in quit_:
            out += [f"### {cell(p.company)}", "", f"Why: {cell(withdraw_reason(p))}.", ""]
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
                out.append(f"- {cell(p.company)}: {cell(round_label(r))}: {verdict(r.decision)} "
                           f"({r.confidence:.2f}), `{r.path.replace('`', chr(39))}`")
        out.append("")
    if failed:
        out += [f"## Failed ({len(failed)})", "",
                "These notes have no reflection and are not ranked; fix them and run again.", ""]
        out += [f"- `{path.replace('`', chr(39))}`: {cell(error)}" for path, error in failed]
        out.append("")
    return "\n".join(out)
