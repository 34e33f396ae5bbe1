"""The batch digest: every current reflection by company, newest first, then the failures.

A note whose redo failed keeps its last good reflection in the table, marked stale, with
the failure beside it; a note that never had one is listed only under the failures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
    # (path, why) for what failed without a state row: an unreadable folder, a bad name
    problems: list[tuple[str, str]] = field(default_factory=list)


_NEXT = {"thank_you": "thank-you note", "withdrawal": "withdrawal note"}


def render_digest(rows: list[Mapping[str, Any]], run: RunSummary) -> str:
    """Reflections by company (the most recent first), then the notes that failed."""
    ok = [r for r in rows if r["status"] == "ok" or _stale(r)]
    failed = sorted((r for r in rows if r["status"] != "ok"), key=lambda r: r["path"])
    stale = sum(1 for r in ok if _stale(r))
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
           f"{f' ({stale} stale: their last redo failed)' if stale else ''}"
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
            if _stale(r):
                made = f" of {_get(r, 'ok_at')[:10]}" if _get(r, "ok_at") else ""
                link += (f" **stale**: the reflection{made}; the redo failed: "
                         f"{cell(r['error'] or 'unknown error')}")
            out.append(f"| {when_} | {link} | {verdict} | {r['confidence']:.2f} | "
                       f"{_NEXT.get(r['next_step'], r['next_step'] or '')} |")
        out.append("")
    if failed or run.problems:
        out += [f"## Failed ({len(failed) + len(run.problems)})", "",
                "These have no current reflection (a stale one is shown above, marked); fix "
                "them and the next run retries them (a failed note is retried on every run).",
                ""]
        stale_paths = {r["path"] for r in failed if _stale(r)}
        for path, error in sorted([(r["path"], r["error"]) for r in failed] + run.problems):
            name = path.replace("`", "'")
            stale_ = (" (its last good reflection is shown above, marked stale)"
                      if path in stale_paths else "")
            out.append(f"- `{name}`: {cell(error or 'unknown error')}{stale_}")
        out.append("")
    return "\n".join(out)


def _stale(r: Mapping[str, Any]) -> bool:
    """A failed redo of a note that has a last good reflection, shown marked stale."""
    return r["status"] != "ok" and bool(_get(r, "out_md")) and r["decision"] is not None


def _get(r: Mapping[str, Any], key: str) -> Any:
    try:
        return r[key]
    except (KeyError, IndexError):
        return None
