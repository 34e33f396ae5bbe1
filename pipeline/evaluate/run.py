"""Run labelled cases through the pipeline and score them, deterministically.

No model judges another here: every metric is computed from labels, retrieval results
and the validated output, so the CI gate can trust it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.errors import DebriefError
from pipeline.evaluate.cases import EvalCase
from pipeline.evaluate.metrics import (
    CaseResult,
    CompareResult,
    kendall_tau,
    matrix_scores,
    reason_agreement,
    retrieval_scores,
)
from pipeline.llm.recording import current_case, current_prompt
from pipeline.notes import read_notes
from pipeline.profile import read_profile
from pipeline.prompts import prompt_version
from pipeline.rank import rank_processes
from pipeline.reflect import reflect_on
from pipeline.retrieve import RetrieveOptions, retrieve
from pipeline.text import align_quote, normalize_ws


def run_case(case: EvalCase, index: Any, provider: Any, k: int,
             profile: Any = None) -> CaseResult:
    res = CaseResult(id=case.id, expected=case.expected, tags=case.tags, gold=case.gold,
                     profile=case.profile, split=case.split)
    token = current_case.set(case.id)
    prompt_token = current_prompt.set(prompt_version(profile))
    started = time.perf_counter()
    try:
        notes = read_notes(Path(case.path))
        retrieval = retrieve(notes, index, RetrieveOptions(k=k))
        res.retrieved_docs = [p.doc_id for p in retrieval.passages]
        res.recall, res.precision, res.hit, res.rr = retrieval_scores(res.retrieved_docs, case.gold)
        trace: list = []
        try:
            out = reflect_on(notes, index, provider, trace=trace, retrieval=retrieval,
                          profile=profile)
            if profile is not None:
                matrix_scores(res, case, out.matrix)
            res.decision = out.decision
            res.confidence = out.confidence
            res.reasons_labelled, res.reasons_agreeing = reason_agreement(
                [(r.quote, r.supports) for r in out.reasons], case.stances)
            res.final_valid = True
        except DebriefError as exc:
            res.error = exc.message
            if profile is not None:
                matrix_scores(res, case, None)
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
            quotes = [pt.get("quote") for pt in (first.answer or {}).get("points", [])
                      if isinstance(pt, dict) and isinstance(pt.get("quote"), str)]
            if quotes:  # a model's own quotes: how many match words of the notes at all
                res.quote_alignment = sum(align_quote(q, notes.body) is not None
                                          for q in quotes) / len(quotes)
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


def run_compare_sets(sets: list[tuple[str, Path, dict[str, Any]]], profiles_dir: Path,
                     index: Any, provider: Any, *, k: int = 8,
                     progress: Callable[[str], None] | None = None) -> list[CompareResult]:
    """Reflect on every note of a set under its profile, rank with pipeline.compare, and
    score the ranking against the gold one (Kendall tau; a failed note counts as missing)."""
    cache: dict[str, Any] = {}
    out = []
    for name, folder, gold in sets:
        profile = _profile(profiles_dir, gold["profile"], cache)
        res = CompareResult(id=name, profile=gold["profile"], gold=list(gold["ranking"]),
                            split=gold.get("split", "authored"),
                            withdraw_gold=list(gold.get("withdraw") or []))
        reflections = []
        for path in sorted(folder.rglob("*.md")):
            token = current_case.set(f"{name}/{path.name}")
            prompt_token = current_prompt.set(prompt_version(profile))
            try:
                reflections.append(reflect_on(read_notes(path), index, provider, profile=profile,
                                           opts=RetrieveOptions(k=k)))
            except DebriefError as exc:
                res.errors.append(f"{path.name}: {exc.message}")
            finally:
                current_case.reset(token)
                current_prompt.reset(prompt_token)
        if reflections:
            comparison = rank_processes(reflections)
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
