"""The batch digest: every current reflection by company, newest first, then the failures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.render.markdown import cell


@dataclass
class RunSummary:
    """What the last run did, for the digest's first line."""

    processed: int
    skipped: int
    failed: int
    engine: str
    model: str | None


_NEXT = {"thank_you": "thank-you note", "withdrawal": "withdrawal note"}


def render_digest(rows: list[Mapping[str, Any]], run: RunSummary) -> str:
    """Reflections by company (the most recent first), then the notes that failed."""
    ok = [r for r in rows if r["status"] == "ok"]
    failed = sorted((r for r in rows if r["status"] != "ok"), key=lambda r: r["path"])
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in ok:
        groups.setdefault((r["company"] or "?").casefold(), []).append(r)
    for g in groups.values():
        g.sort(key=lambda r: r["path"])
        g.sort(key=lambda r: r["date"] or "", reverse=True)
    order = sorted(groups.values(), key=lambda g: (g[0]["company"] or "").casefold())
    order.sort(key=lambda g: g[0]["date"] or "", reverse=True)

    when = datetime.now().astimezone().isoformat(timespec="minutes")
    out = ["# Interview digest", "",
           f"_Last run {when}: {run.processed} processed, "
           f"{run.skipped} up to date or skipped, {run.failed} failed. "
           f"{len(ok)} reflection(s) from {len(groups)} compan{'y' if len(groups) == 1 else 'ies'}"
           f"; engine {run.engine}"
           f"{f' / {run.model}' if run.model else ''}._", ""]
    if not ok:
        out += ["No reflections yet.", ""]
    for g in order:
        out += [f"## {cell(g[0]['company'] or '?')}", "",
                "| date | notes | decision | confidence | next step |",
                "| --- | --- | --- | --- | --- |"]
        for r in g:
            when_ = r["date"] + (" (file date)" if r["date_from"] == "file" else "")
            verdict = "keep pursuing" if r["decision"] == "keep" else "decline"
            link = f"[{cell(r['path']).replace('[', '(').replace(']', ')')}](<{r['out_md']}>)"
            out.append(f"| {when_} | {link} | {verdict} | {r['confidence']:.2f} | "
                       f"{_NEXT.get(r['next_step'], r['next_step'] or '')} |")
        out.append("")
    if failed:
        out += [f"## Failed ({len(failed)})", "",
                "These notes have no current reflection; fix them and the next run retries "
                "them (a failed note is retried on every run).", ""]
        for r in failed:
            name = r["path"].replace("`", "'")
            out.append(f"- `{name}`: {cell(r['error'] or 'unknown error')}")
        out.append("")
    return "\n".join(out)
