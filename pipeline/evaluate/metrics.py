"""Scores, computed from labels and validated outputs only: no model judges another."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pydantic import BaseModel, Field

from pipeline.evaluate.cases import EvalCase


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
    quote_alignment: float | None = None  # a model's quotes that match the notes' words
    injection_ok: bool | None = None
    latency_s: float = 0.0
    tokens: int = 0
    error: str | None = None
    profile: str | None = None
    scores: dict[str, int | None] = Field(default_factory=dict)
    deal_breakers_found: list[str] = Field(default_factory=list)
    deal_breaker_recall: float | None = None
    score_agreement: float | None = None
    split: str = "authored"
    # reasons whose sentence people labelled, and how many of them carry that label
    reasons_labelled: int = 0
    reasons_agreeing: int = 0


class CompareResult(BaseModel):
    id: str
    profile: str
    split: str = "authored"
    gold: list[str]
    predicted: list[str] = Field(default_factory=list)
    kendall_tau: float = 0.0
    top_match: bool = False
    withdraw_gold: list[str] = Field(default_factory=list)
    withdraw_predicted: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)


def label_of(quote: str, stances: dict[str, str]) -> str | None:
    """The labelled stance of the note sentence a quote comes from (or lies within)."""
    if quote in stances:
        return stances[quote]
    q = " ".join(quote.split())
    for text, stance in stances.items():
        t = " ".join(text.split())
        if q in t or t in q:
            return stance
    return None


def reason_agreement(reasons: list[tuple[str, str]], stances: dict[str, str]) -> tuple[int, int]:
    """(labelled, agreeing): of the reasons whose sentence people labelled, how many carry
    that label. A reason on a sentence people called neutral does not agree."""
    labelled = agreeing = 0
    for quote, supports in reasons:
        gold = label_of(quote, stances)
        if gold is None:
            continue
        labelled += 1
        agreeing += gold == supports
    return labelled, agreeing


def brier(results: list[CaseResult]) -> float | None:
    """Mean squared error of P(keep) = the confidence of a keep (1 - that of a decline)
    against what the label says, over cases with a keep or decline label and an answer."""
    pairs = [((r.confidence if r.decision == "keep" else 1 - r.confidence),
              float(r.expected == "keep")) for r in results
             if r.decision and r.confidence is not None and r.expected in ("keep", "decline")]
    return round(sum((p - y) ** 2 for p, y in pairs) / len(pairs), 4) if pairs else None


def reliability(results: list[CaseResult]) -> list[dict[str, Any]]:
    """Confidence bins with how often the call in each was right."""
    out = []
    for lo in (0.5, 0.6, 0.7, 0.8, 0.9):
        hi = lo + 0.1
        rows = [r for r in results if r.confidence is not None and r.decision
                and r.expected in ("keep", "decline")
                and lo <= r.confidence < (hi if hi < 1.0 else 1.01)]
        out.append({"confidence": f"{lo:.1f}-{hi:.1f}", "n": len(rows),
                    "accuracy": _mean([float(r.correct) for r in rows]) if rows else None})
    return out


def by_split(results: list[CaseResult]) -> dict[str, Any]:
    """The decision metrics per split (held-out first), flat names for the gate."""
    out: dict[str, Any] = {}
    for split in ("heldout", "dev", "authored"):
        rows = [r for r in results if r.split == split]
        if not rows:
            continue
        hard = [r for r in rows if "hard" in r.tags]
        labelled = sum(r.reasons_labelled for r in rows)
        out[f"decision_accuracy_{split}"] = _mean([float(r.correct) for r in rows])
        if hard:
            out[f"hard_accuracy_{split}"] = _mean([float(r.correct) for r in hard])
        for cls in ("keep", "decline"):
            of = [r for r in rows if r.expected == cls]
            if of:
                out[f"{cls}_accuracy_{split}"] = _mean([float(r.correct) for r in of])
        if labelled:
            out[f"reason_precision_{split}"] = round(
                sum(r.reasons_agreeing for r in rows) / labelled, 4)
        if (b := brier(rows)) is not None:
            out[f"brier_{split}"] = b
        out[f"cases_{split}"] = len(rows)
    return out


def retrieval_scores(docs: list[str], gold: list[str]) -> tuple[float, float, bool, float]:
    ranked: list[str] = []
    for d in docs:
        if d not in ranked:
            ranked.append(d)
    hits = [d for d in ranked if d in gold]
    recall = len(set(hits)) / len(set(gold)) if gold else 0.0
    precision = len(hits) / len(ranked) if ranked else 0.0
    rr = next((1.0 / (i + 1) for i, d in enumerate(ranked) if d in gold), 0.0)
    return recall, precision, bool(hits), rr


def matrix_scores(res: CaseResult, case: EvalCase, matrix: Any) -> None:
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
        "quote_alignment": _mean([r.quote_alignment for r in results
                                  if r.quote_alignment is not None]),
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
    metrics.update(by_split(results))
    metrics["reliability_heldout"] = reliability([r for r in results if r.split == "heldout"])
    per_tag: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        for t in r.tags:
            per_tag[t].append(r.correct)
    metrics["accuracy_by_tag"] = {t: {"n": len(v), "accuracy": _mean([float(x) for x in v])}
                                  for t, v in sorted(per_tag.items())}
    return metrics


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
        **_profile_by_split(results, sets),
    }


def _profile_by_split(results: list[CaseResult], sets: list[CompareResult]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for split in ("heldout", "dev", "authored"):
        rows = [r for r in results if r.split == split]
        if rows:
            out[f"profile_decision_accuracy_{split}"] = _mean([float(r.correct) for r in rows])
            recall = [r.deal_breaker_recall for r in rows if r.deal_breaker_recall is not None]
            if recall:
                out[f"deal_breaker_recall_{split}"] = _mean(recall)
        of = [s for s in sets if s.split == split]
        if of:
            out[f"compare_kendall_tau_{split}"] = _mean([s.kendall_tau for s in of])
            out[f"compare_top_match_{split}"] = _mean([float(s.top_match) for s in of])
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
