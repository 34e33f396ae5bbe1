"""Reflection -> Markdown (for people and files) or JSON (for programs)."""

from __future__ import annotations

from pipeline.render.markdown import cell
from pipeline.schema import DecisionMatrix, Reflection

_RATING = {"none": "none", "low": "low", "medium": "medium", "high": "high"}


def reflection_json(r: Reflection) -> str:
    return r.model_dump_json(indent=2) + "\n"


def _cite(ids: list[str]) -> str:
    return " ".join(f"[{i}]" for i in ids)


def _signed(n: int | None) -> str:
    return "unknown" if n is None else f"{n:+d}" if n else "0"


def matrix_markdown(m: DecisionMatrix) -> list[str]:
    """The matrix as a Markdown table; renders as a table in a terminal through rich too."""
    out = ["", "## Your priorities", ""]
    if m.forced_decline:
        out += [f"**Decline forced by your profile: {m.forced_decline}.**", ""]
    out += ["| Criterion | Weight | Score | Weighted | From your notes |",
            "|---|---:|---:|---:|---|"]
    for row in m.rows:
        quote = f"“{cell(row.quote)}” {_cite(row.passage_ids)}" if row.quote else "—"
        out.append(f"| {cell(row.label)} | {row.weight} | {_signed(row.score)} | "
                   f"{_signed(row.weighted)} | {quote} |")
    out += ["", f"Weighted total **{m.total:+d}** of a possible ±{m.max_total} "
                f"({m.normalized:+.2f}); scores compare with your current situation."]
    for hit in m.deal_breakers:
        state = f"resolved: “{hit.resolution_quote}”" if hit.resolved else "not resolved"
        out.append(f"- Deal-breaker **{hit.deal_breaker}**: “{hit.quote}” ({state})")
    for chk in m.must_haves:
        seen = f": “{chk.quote}”" if chk.quote else ""
        out.append(f"- Must-have **{chk.must_have}**: {chk.status}{seen}")
    return out


def reflection_markdown(r: Reflection, *, show_sources: bool = True) -> str:
    who = r.notes.company + (f" — {r.notes.role}" if r.notes.role else "")
    verdict = "KEEP PURSUING" if r.decision == "keep" else "DECLINE"
    out = [f"# {who}: {verdict} (confidence {r.confidence:.2f})", ""]
    out += [f"> **Note:** {notice}\n" for notice in r.notices]
    out += [r.summary, ""]
    out += ["## Why", ""]
    for reason in r.reasons:
        arrow = "+" if reason.supports == "keep" else "−"
        out.append(f"- ({arrow}) {reason.point}  ")
        out.append(f"  > “{reason.quote}” {_cite(reason.passage_ids)}")
    if r.red_flags:
        out += ["", "## Red flags", ""]
        for f in r.red_flags:
            out.append(f"- **{f.flag}** ({f.severity}): “{f.quote}” {_cite(f.passage_ids)}")
    if r.matrix is not None:
        out += matrix_markdown(r.matrix)
    out += ["", "## What this interview is worth", ""]
    for name, angle in (("Practice", r.practice_value), ("Leverage", r.leverage_value),
                        ("Clarity", r.clarity_value)):
        out.append(f"- **{name}** ({_RATING[angle.rating]}): {angle.note}")
    if r.practice_plan:
        out += ["", "## Practice plan", ""]
        for item in r.practice_plan:
            out.append(f"- {item.went_badly} → {item.rehearse}")
    if r.questions_for_next_round:
        out += ["", "## Questions for the next round", ""]
        out += [f"- {q}" for q in r.questions_for_next_round]
    title = "Thank-you note" if r.next_step.kind == "thank_you" else "Withdrawal note"
    out += ["", f"## Next step: {title.lower()}", ""]
    out += [f"    {line}" if line else "" for line in r.next_step.draft.splitlines()]
    if show_sources and r.sources:
        out += ["", "## Sources", ""]
        for s in r.sources:
            out.append(f"- [{s.id}] {s.title} — {s.heading} (score {s.score:.2f}; {s.source})")
    if r.ignored_lines:
        out += ["", "## Ignored lines", "", "These lines read as instructions to the tool and were "
                "treated as data, not evidence:", ""]
        out += [f"- {line}" for line in r.ignored_lines]
    model = f"{r.engine}" + (f" / {r.model}" if r.model else "")
    out += ["", "---", f"_Engine: {model} · prompt {r.prompt_version} · schema "
            f"{r.schema_version} · {r.attempts} attempt(s)_", ""]
    return "\n".join(out)
