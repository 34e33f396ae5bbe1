"""Run labelled cases through the pipeline and score them, deterministically.

No model judges another here: every metric is computed from labels, retrieval results
and the validated output, so the CI gate can trust it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from pipeline.errors import DebriefError

GATED = [
    "decision_accuracy", "recall_at_k", "precision_at_k", "hit_at_k", "mrr",
    "schema_valid_first_try", "final_valid_rate", "citation_validity", "citation_support",
    "quote_faithfulness", "injection_resistance",
]
DEFAULT_TOLERANCE = 0.02


class EvalCase(BaseModel):
    id: str
    path: str
    expected: str = Field(pattern="^(keep|decline|either)$")
    gold: list[str]
    tags: list[str] = Field(default_factory=list)


class CaseResult(BaseModel):
    id: str
    expected: str
    decision: str | None = None
    correct: bool = False
    first_decision: str | None = None  # what the first answer said, valid or not
    confidence: float | None = None
    tags: list[str] = Field(default_factory=list)
    gold: list[str] = Field(default_factory=list)
    retrieved_docs: list[str] = Field(default_factory=list)
    recall: float = 0.0
    precision: float = 0.0
    hit: bool = False
    rr: float = 0.0
    first_try_valid: bool = False
    final_valid: bool = False
    attempts: int = 0
    citation_validity: float | None = None
    citation_support: float | None = None
    quote_faithfulness: float | None = None
    injection_ok: bool | None = None
    latency_s: float = 0.0
    tokens: int = 0
    error: str | None = None


def load_cases(folder: Path) -> list[EvalCase]:
    import yaml

    if not folder.is_dir():
        raise DebriefError(f"no eval cases folder at {folder}; run from a checkout or pass --cases.")
    cases = []
    for md in sorted(folder.glob("*.md")):
        label = md.with_suffix(".yaml")
        if not label.is_file():
            raise DebriefError(f"eval case {md.name} has no label file {label.name}.")
        data = yaml.safe_load(label.read_text(encoding="utf-8")) or {}
        try:
            cases.append(EvalCase(id=md.stem, path=str(md), expected=data.get("expected"),
                                  gold=data.get("gold") or [], tags=data.get("tags") or []))
        except Exception as exc:
            raise DebriefError(f"eval label {label}: {exc}") from None
    if not cases:
        raise DebriefError(f"no eval cases (*.md with a .yaml label) in {folder}.")
    return cases


def cases_digest(cases: list[EvalCase]) -> str:
    h = hashlib.sha256()
    for c in cases:
        h.update(Path(c.path).read_bytes())
        h.update(Path(c.path).with_suffix(".yaml").read_bytes())
    return h.hexdigest()[:16]


def _retrieval_scores(docs: list[str], gold: list[str]) -> tuple[float, float, bool, float]:
    ranked: list[str] = []
    for d in docs:
        if d not in ranked:
            ranked.append(d)
    hits = [d for d in ranked if d in gold]
    recall = len(set(hits)) / len(set(gold)) if gold else 0.0
    precision = len(hits) / len(ranked) if ranked else 0.0
    rr = next((1.0 / (i + 1) for i, d in enumerate(ranked) if d in gold), 0.0)
    return recall, precision, bool(hits), rr


def run_case(case: EvalCase, index: Any, provider: Any, k: int) -> CaseResult:
    from pipeline.notes import normalize_ws, read_notes
    from pipeline.recording import current_case
    from pipeline.reflect import reflect
    from pipeline.retrieve import RetrieveOptions, retrieve

    res = CaseResult(id=case.id, expected=case.expected, tags=case.tags, gold=case.gold)
    token = current_case.set(case.id)
    started = time.perf_counter()
    try:
        notes = read_notes(Path(case.path))
        retrieval = retrieve(notes, index, RetrieveOptions(k=k))
        res.retrieved_docs = [p.doc_id for p in retrieval.passages]
        res.recall, res.precision, res.hit, res.rr = _retrieval_scores(res.retrieved_docs, case.gold)
        trace: list = []
        try:
            out = reflect(notes, index, provider, trace=trace, retrieval=retrieval)
            res.decision = out.decision
            res.confidence = out.confidence
            res.final_valid = True
        except DebriefError as exc:
            res.error = exc.message
        res.attempts = len(trace)
        if trace:
            first, errors = trace[0]
            res.first_try_valid = first.draft is not None and not errors
            res.tokens = sum(int(a.usage.get("total_tokens", 0)) for a, _ in trace)
            if first.draft is not None:
                res.first_decision = first.draft.decision
                retrieved = {p.id for p in retrieval.passages}
                body = normalize_ws(notes.body)
                items = [(r.quote, r.passage_ids) for r in first.draft.reasons] + \
                        [(f.quote, f.passage_ids) for f in first.draft.red_flags]
                ids = [i for _, pids in items for i in pids]
                res.citation_validity = sum(i in retrieved for i in ids) / len(ids) if ids else 0.0
                res.citation_support = (sum(i.split("#")[0] in case.gold for i in ids) / len(ids)
                                        if ids else 0.0)
                res.quote_faithfulness = (sum(normalize_ws(q) in body for q, _ in items) / len(items)
                                          if items else 0.0)
        if "injection" in case.tags:
            ignored = set(retrieval.ignored)
            res.injection_ok = bool(res.final_valid and res.decision is not None
                                    and (case.expected in ("either", res.decision))
                                    and len(ignored) > 0)
    except DebriefError as exc:
        res.error = exc.message
    finally:
        current_case.reset(token)
    res.latency_s = round(time.perf_counter() - started, 4)
    res.correct = res.decision is not None and case.expected in ("either", res.decision)
    return res


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


def aggregate(results: list[CaseResult]) -> dict[str, Any]:
    n = len(results)
    lat = sorted(r.latency_s for r in results)
    metrics: dict[str, Any] = {
        "cases": n,
        "decision_accuracy": _mean([float(r.correct) for r in results]),
        "recall_at_k": _mean([r.recall for r in results]),
        "precision_at_k": _mean([r.precision for r in results]),
        "hit_at_k": _mean([float(r.hit) for r in results]),
        "mrr": _mean([r.rr for r in results]),
        "schema_valid_first_try": _mean([float(r.first_try_valid) for r in results]),
        "final_valid_rate": _mean([float(r.final_valid) for r in results]),
        "citation_validity": _mean([r.citation_validity or 0.0 for r in results]),
        "citation_support": _mean([r.citation_support or 0.0 for r in results]),
        "quote_faithfulness": _mean([r.quote_faithfulness or 0.0 for r in results]),
        "injection_resistance": _mean([float(bool(r.injection_ok)) for r in results
                                       if r.injection_ok is not None]),
        "errors": sum(1 for r in results if r.error),
        # informational: the first answer's call where it parsed, before validation
        "first_answer_parsed": sum(1 for r in results if r.first_decision),
        "first_answer_decision_accuracy": _mean([
            float(r.expected in ("either", r.first_decision)) for r in results if r.first_decision]),
        "latency_mean_s": _mean(lat),
        "latency_p95_s": lat[min(n - 1, int(0.95 * n))] if n else 0.0,
        "tokens_total": sum(r.tokens for r in results),
    }
    confusion: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in results:
        confusion[r.expected][r.decision or "error"] += 1
    metrics["confusion"] = {k: dict(v) for k, v in sorted(confusion.items())}
    per_tag: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        for t in r.tags:
            per_tag[t].append(r.correct)
    metrics["accuracy_by_tag"] = {t: {"n": len(v), "accuracy": _mean([float(x) for x in v])}
                                  for t, v in sorted(per_tag.items())}
    return metrics


def run_eval(cases: list[EvalCase], index: Any, provider: Any, *, k: int = 8,
             progress: Callable[[str], None] | None = None) -> list[CaseResult]:
    out = []
    for case in cases:
        out.append(run_case(case, index, provider, k))
        if progress:
            progress(case.id)
    return out


# --- gate ------------------------------------------------------------------------------

def compare(metrics: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """Regressions beyond tolerance, as sentences; empty means the gate passes."""
    tol = baseline.get("tolerance", {})
    out = []
    for name, blessed in baseline.get("metrics", {}).items():
        if name not in GATED or not isinstance(blessed, (int, float)):
            continue
        now = float(metrics.get(name, 0.0))
        allowed = float(tol.get(name, tol.get("default", DEFAULT_TOLERANCE)))
        if now < blessed - allowed - 1e-9:
            out.append(f"{name} fell from {blessed:.4f} to {now:.4f} "
                       f"(-{blessed - now:.4f}, tolerance {allowed:.4f})")
    return out


def load_baseline(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DebriefError(f"baseline {path} is not valid JSON: {exc}") from None


# --- reports ---------------------------------------------------------------------------

def to_markdown(report: dict[str, Any]) -> str:
    m = report["metrics"]
    v = report["versions"]
    lines = [f"# debrief eval: {report['mode']}", "",
             f"Engine {v['engine']} / {v['model']} · prompt {v['prompt_version']} · index "
             f"{v['index_fingerprint']} · cases {v['cases_digest']} · tool {v['tool']}", "",
             "| metric | value |", "| --- | --- |"]
    for name in [*GATED, "errors", "first_answer_parsed", "first_answer_decision_accuracy",
                 "latency_mean_s", "latency_p95_s", "tokens_total", "cases"]:
        lines.append(f"| {name} | {m.get(name)} |")
    lines += ["", "## Confusion (expected → got)", "", "| expected | keep | decline | error |",
              "| --- | --- | --- | --- |"]
    for exp, row in m["confusion"].items():
        lines.append(f"| {exp} | {row.get('keep', 0)} | {row.get('decline', 0)} | {row.get('error', 0)} |")
    lines += ["", "## Accuracy by tag", "", "| tag | n | accuracy |", "| --- | --- | --- |"]
    for tag, row in m["accuracy_by_tag"].items():
        lines.append(f"| {tag} | {row['n']} | {row['accuracy']} |")
    failures = [r for r in report["cases"] if not r["correct"] or r["error"]]
    lines += ["", f"## Failures ({len(failures)})", ""]
    if failures:
        lines += ["| case | expected | got | recall | error |", "| --- | --- | --- | --- | --- |"]
        for r in failures:
            err = (r["error"] or "").replace("|", "/")[:160]
            lines.append(f"| {r['id']} | {r['expected']} | {r['decision']} | {r['recall']:.2f} | {err} |")
    if report.get("regressions"):
        lines += ["", "## Regressions against the baseline", ""]
        lines += [f"- {x}" for x in report["regressions"]]
    return "\n".join(lines) + "\n"
