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
    # with a priorities profile (eval/profile-cases, eval/compare)
    "profile_decision_accuracy", "deal_breaker_recall", "score_agreement", "compare_kendall_tau",
]
DEFAULT_TOLERANCE = 0.02


PROFILE_INFO = ["profile_cases", "profile_pairs_both_right", "profile_errors", "compare_sets",
                "compare_top_match", "compare_errors"]


class EvalCase(BaseModel):
    id: str
    path: str
    expected: str = Field(pattern="^(keep|decline|either)$")
    gold: list[str]
    tags: list[str] = Field(default_factory=list)
    # profile cases only (eval/profile-cases): the profile's file stem and the matrix labels
    profile: str | None = None
    gold_scores: dict[str, int | None] = Field(default_factory=dict)
    gold_deal_breakers: list[str] = Field(default_factory=list)


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
    profile: str | None = None
    scores: dict[str, int | None] = Field(default_factory=dict)
    deal_breakers_found: list[str] = Field(default_factory=list)
    deal_breaker_recall: float | None = None
    score_agreement: float | None = None


def load_cases(folder: Path) -> list[EvalCase]:
    import yaml

    if not folder.is_dir():
        raise DebriefError(f"no eval cases folder at {folder}; run from a checkout or pass --cases.")
    cases = []
    for md in sorted(p for p in folder.glob("*.md") if p.name != "README.md"):
        label = md.with_suffix(".yaml")
        if not label.is_file():
            raise DebriefError(f"eval case {md.name} has no label file {label.name}.")
        data = yaml.safe_load(label.read_text(encoding="utf-8")) or {}
        try:
            cases.append(EvalCase(id=md.stem, path=str(md), expected=data.get("expected"),
                                  gold=data.get("gold") or [], tags=data.get("tags") or [],
                                  profile=data.get("profile"),
                                  gold_scores=data.get("gold_scores") or {},
                                  gold_deal_breakers=data.get("gold_deal_breakers") or []))
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


def _matrix_scores(res: CaseResult, case: EvalCase, matrix: Any) -> None:
    """Deal-breaker recall and per-criterion agreement: within one point of the gold score,
    or both unknown. An error leaves the case at zero on both, not out of the mean."""
    res.deal_breaker_recall = 0.0 if case.gold_deal_breakers else None
    res.score_agreement = 0.0 if case.gold_scores else None
    if matrix is None:
        return
    res.scores = {r.criterion: r.score for r in matrix.rows}
    res.deal_breakers_found = [h.deal_breaker for h in matrix.deal_breakers if not h.resolved]
    found = {d.lower() for d in res.deal_breakers_found}
    if case.gold_deal_breakers:
        res.deal_breaker_recall = (sum(d.lower() in found for d in case.gold_deal_breakers)
                                   / len(case.gold_deal_breakers))
    agree = []
    for crit, gold in case.gold_scores.items():
        got = res.scores.get(crit)
        agree.append(float(got is None and gold is None) if got is None or gold is None
                     else float(abs(got - gold) <= 1))
    if agree:
        res.score_agreement = sum(agree) / len(agree)


def run_case(case: EvalCase, index: Any, provider: Any, k: int,
             profile: Any = None) -> CaseResult:
    from pipeline.notes import normalize_ws, read_notes
    from pipeline.prompts import prompt_version
    from pipeline.recording import current_case, current_prompt
    from pipeline.reflect import reflect
    from pipeline.retrieve import RetrieveOptions, retrieve

    res = CaseResult(id=case.id, expected=case.expected, tags=case.tags, gold=case.gold,
                     profile=case.profile)
    token = current_case.set(case.id)
    prompt_token = current_prompt.set(prompt_version(profile))
    started = time.perf_counter()
    try:
        notes = read_notes(Path(case.path))
        retrieval = retrieve(notes, index, RetrieveOptions(k=k))
        res.retrieved_docs = [p.doc_id for p in retrieval.passages]
        res.recall, res.precision, res.hit, res.rr = _retrieval_scores(res.retrieved_docs, case.gold)
        trace: list = []
        try:
            out = reflect(notes, index, provider, trace=trace, retrieval=retrieval,
                          profile=profile)
            if profile is not None:
                _matrix_scores(res, case, out.matrix)
            res.decision = out.decision
            res.confidence = out.confidence
            res.final_valid = True
        except DebriefError as exc:
            res.error = exc.message
            if profile is not None:
                _matrix_scores(res, case, None)
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
        current_prompt.reset(prompt_token)
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


# --- profiles: the matrix and compare ------------------------------------------------

def _profile(profiles_dir: Path, name: str | None, cache: dict[str, Any]) -> Any:
    from pipeline.profile import read_profile

    if not name:
        raise DebriefError("a profile case needs 'profile:' in its label.")
    if name not in cache:
        cache[name] = read_profile(profiles_dir / f"{name}.toml")
    return cache[name]


def run_profile_cases(cases: list[EvalCase], profiles_dir: Path, index: Any, provider: Any,
                      *, k: int = 8, progress: Callable[[str], None] | None = None
                      ) -> list[CaseResult]:
    cache: dict[str, Any] = {}
    out = []
    for case in cases:
        out.append(run_case(case, index, provider, k, _profile(profiles_dir, case.profile, cache)))
        if progress:
            progress(case.id)
    return out


class CompareResult(BaseModel):
    id: str
    profile: str
    gold: list[str]
    predicted: list[str] = Field(default_factory=list)
    kendall_tau: float = 0.0
    top_match: bool = False
    withdraw_gold: list[str] = Field(default_factory=list)
    withdraw_predicted: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)


def load_compare_sets(folder: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    import yaml

    sets = []
    for gold in sorted(folder.glob("*/gold.yaml")):
        data = yaml.safe_load(gold.read_text(encoding="utf-8")) or {}
        if not data.get("profile") or not data.get("ranking"):
            raise DebriefError(f"compare set {gold} needs 'profile' and 'ranking'.")
        sets.append((gold.parent.name, gold.parent, data))
    return sets


def run_compare_sets(sets: list[tuple[str, Path, dict[str, Any]]], profiles_dir: Path,
                     index: Any, provider: Any, *, k: int = 8,
                     progress: Callable[[str], None] | None = None) -> list[CompareResult]:
    """Reflect on every note of a set under its profile, rank with pipeline.compare, and
    score the ranking against the gold one (Kendall tau; a failed note counts as missing)."""
    from pipeline.compare import compare as rank
    from pipeline.compare import kendall_tau
    from pipeline.notes import read_notes
    from pipeline.prompts import prompt_version
    from pipeline.recording import current_case, current_prompt
    from pipeline.reflect import reflect
    from pipeline.retrieve import RetrieveOptions

    cache: dict[str, Any] = {}
    out = []
    for name, folder, gold in sets:
        profile = _profile(profiles_dir, gold["profile"], cache)
        res = CompareResult(id=name, profile=gold["profile"], gold=list(gold["ranking"]),
                            withdraw_gold=list(gold.get("withdraw") or []))
        reflections = []
        for path in sorted(folder.rglob("*.md")):
            token = current_case.set(f"{name}/{path.name}")
            prompt_token = current_prompt.set(prompt_version(profile))
            try:
                reflections.append(reflect(read_notes(path), index, provider, profile=profile,
                                           opts=RetrieveOptions(k=k)))
            except DebriefError as exc:
                res.errors.append(f"{path.name}: {exc.message}")
            finally:
                current_case.reset(token)
                current_prompt.reset(prompt_token)
        if reflections:
            comparison = rank(reflections)
            res.predicted = [p.company for p in comparison.processes]
            res.withdraw_predicted = [p.company for p in comparison.processes if p.withdraw]
        # companies that errored are missing from the prediction: ranked last, in gold order
        full = res.predicted + [c for c in res.gold if c not in res.predicted]
        res.kendall_tau = kendall_tau(full, res.gold) if res.predicted else 0.0
        res.top_match = bool(res.predicted) and res.predicted[0] == res.gold[0]
        out.append(res)
        if progress:
            progress(name)
    return out


def aggregate_profile(results: list[CaseResult], sets: list[CompareResult]) -> dict[str, Any]:
    pairs: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        for t in r.tags:
            if t.startswith("pair:"):
                pairs[t].append(r.correct)
    return {
        "profile_cases": len(results),
        "profile_decision_accuracy": _mean([float(r.correct) for r in results]),
        "profile_pairs_both_right": _mean([float(all(v)) for v in pairs.values()]),
        "deal_breaker_recall": _mean([r.deal_breaker_recall for r in results
                                      if r.deal_breaker_recall is not None]),
        "score_agreement": _mean([r.score_agreement for r in results
                                  if r.score_agreement is not None]),
        "profile_errors": sum(1 for r in results if r.error),
        "compare_sets": len(sets),
        "compare_kendall_tau": _mean([s.kendall_tau for s in sets]),
        "compare_top_match": _mean([float(s.top_match) for s in sets]),
        "compare_errors": sum(len(s.errors) for s in sets),
    }


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
    prompt = v["prompt_version"]
    if v.get("profile_prompt_version"):  # reports before it was recorded lack it
        prompt += f" (with a profile: {v['profile_prompt_version']})"
    lines = [f"# debrief eval: {report['mode']}", "",
             f"Engine {v['engine']} / {v['model']} · prompt {prompt} · index "
             f"{v['index_fingerprint']} · cases {v['cases_digest']} · tool {v['tool']}", "",
             "| metric | value |", "| --- | --- |"]
    for name in [*GATED, "errors", "first_answer_parsed", "first_answer_decision_accuracy",
                 "latency_mean_s", "latency_p95_s", "tokens_total", "cases", *PROFILE_INFO]:
        if name in m:
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
    if report.get("profile_cases"):
        lines += ["", "## Profile cases (decision matrix)", "",
                  "| case | profile | expected | got | deal-breakers found | score agreement | error |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in report["profile_cases"]:
            err = (r["error"] or "").replace("|", "/")[:120]
            agree = "" if r["score_agreement"] is None else f"{r['score_agreement']:.2f}"
            lines.append(f"| {r['id']} | {r['profile']} | {r['expected']} | {r['decision']} | "
                         f"{'; '.join(r['deal_breakers_found'])} | {agree} | {err} |")
    if report.get("compare_sets"):
        lines += ["", "## Compare sets", "", "| set | gold ranking | predicted | tau | errors |",
                  "| --- | --- | --- | --- | --- |"]
        for c in report["compare_sets"]:
            lines.append(f"| {c['id']} | {' > '.join(c['gold'])} | {' > '.join(c['predicted'])} "
                         f"| {c['kendall_tau']} | {len(c['errors'])} |")
    if report.get("regressions"):
        lines += ["", "## Regressions against the baseline", ""]
        lines += [f"- {x}" for x in report["regressions"]]
    return "\n".join(lines) + "\n"
