"""The offline engine's proposal for the decision matrix: a score per criterion, and which
must-haves and deal-breakers the notes show, each resting on the note sentence it reads.

A sentence speaks to a criterion when the sentence model puts it under the criterion's topic
or its meaning is close to the criterion's own description (MiniLM cosine); a sentence that
could serve two criteria of one topic (hours or commute) goes to the nearer description. The
score follows the sentences' lean, so a long commute scores against "commute or remote" and
"fully remote" for it. A must-have or deal-breaker is met, unmet or shown by the sentence
closest in meaning to that very item, and by which way that sentence leans; pay floors are
compared as figures.
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np

from pipeline.llm.offline.evidence import Evidence
from pipeline.llm.offline.facts import amounts, current_pay
from pipeline.profile import Profile
from pipeline.retrieve import Retrieval
from pipeline.schema import CriterionScore, DealBreakerHit, MatrixDraft, MustHaveCheck

CRITERION_TOPICS = {
    "pay": ("pay",), "benefits": ("pay",), "growth": ("growth",),
    "manager_team": ("manager", "team"), "stability": ("security",),
    "hours_flexibility": ("flexibility",), "commute_remote": ("flexibility",),
    "mission": ("mission",), "title_level": ("role",),
}
TOPIC_MIN = 0.4  # topic probability from which a sentence counts as being about a topic
NEAR = 0.45  # cosine from which a sentence is about a criterion's or an item's meaning
LOOSE = 0.3  # from which it may be, when it also reads as a worry
SURE = 0.5  # P(keep) or P(decline) from which a lean counts
LEANS = 0.2  # |lean| from which a sentence says met or unmet, shown or settled
# the weighted matrix (-1..1 of its best) counts this many times a sure line of evidence:
# the person's priorities, not the count of good and bad lines, should settle a profiled
# call (profile cases, dev and authored: 0.62 at 24, 0.53 at 3; the pairs' notes are equal)
MATRIX_WEIGHT = 24.0
BELOW_SAME = 0.97  # an offer under 97% of the last pay is below it
_NEGATION = re.compile(r"^\s*(no|not|never|avoid|without)\s+", re.I)
# a sentence that denies what it mentions ("no weekend work", "never on call") does not
# show it; grammar, not a list of topics
_DENIES = re.compile(r"\b(no|not|never|without|none|nothing)\b|n't\b", re.I)


@cache
def _vectors(texts: tuple[str, ...]) -> np.ndarray:
    from pipeline.index.embedding import get_embedder  # heavy: chromadb's ONNX class

    return np.asarray(get_embedder().embed(list(texts), cached=True), dtype=np.float64)


def _sure(e: Evidence) -> bool:
    return e.fact != "" or max(e.sig.stance[0], e.sig.stance[1]) >= SURE


def _pay_score(ratio: float) -> int:
    return -2 if ratio < 0.9 else -1 if ratio < 0.97 else 2 if ratio > 1.15 else \
        1 if ratio > 1.05 else 0


def _pay_without_work(offer: float, last: float, profile: Profile) -> int:
    """Someone not working weighs pay against no income: +2 at or above the last salary,
    +1 above their floor (a must-have's figure), 0 below it."""
    floor = max((a for m in profile.must_haves for a in amounts(m)), default=0.0)
    return 2 if offer >= last * BELOW_SAME else 1 if offer >= floor else 0


def propose(evidence: list[Evidence], profile: Profile, retrieval: Retrieval) -> MatrixDraft:
    texts = tuple(e.sig.text for e in evidence)
    keys = list(profile.criteria)
    if not texts:
        return MatrixDraft(criteria=[CriterionScore(criterion=k, score=None) for k in keys])
    sents = _vectors(texts)
    descs = _vectors(tuple(f"{k.replace('_', ' ')}: {profile.description(k)}" for k in keys))
    near = sents @ descs.T  # (sentences, criteria)
    candidates: dict[str, list[int]] = {k: [] for k in keys}
    for i, e in enumerate(evidence):
        by_topic = [j for j, k in enumerate(keys)
                    if e.sig.topic in CRITERION_TOPICS.get(k, ()) and e.sig.topic_p >= TOPIC_MIN]
        by_meaning = [j for j in range(len(keys)) if near[i, j] >= NEAR]
        if len(by_topic) > 1:  # one topic, two criteria: the nearer description takes it
            by_topic = [max(by_topic, key=lambda j: near[i, j])]
        for j in set(by_topic) | set(by_meaning):
            candidates[keys[j]].append(i)
    current = current_pay(profile.current.pay)
    rows = []
    for key in keys:
        hits = [evidence[i] for i in candidates[key]]
        sure = [e for e in hits if _sure(e)]
        if not hits:
            rows.append(CriterionScore(criterion=key, score=None))
            continue
        lead = max(sure or hits, key=lambda e: (abs(e.lean), -e.sig.index))
        score = max(-2, min(2, round(2 * sum(e.lean for e in sure) / len(sure)))) if sure else 0
        if key == "pay" and current:
            figures = [(a, e) for e in hits for a in amounts(e.sig.text)
                       if 0.4 * current <= a <= 3 * current]
            if figures:
                offer, lead = max(figures, key=lambda x: x[0])
                score = (_pay_score(offer / current) if profile.current.status == "employed"
                         else _pay_without_work(offer, current, profile))
        rows.append(CriterionScore(criterion=key, score=score, quote=lead.sig.text,
                                   passage_ids=[lead.sig.best_passage or
                                                retrieval.passage_for(lead.sig.text)]))
    return MatrixDraft(criteria=rows,
                       deal_breakers=_deal_breakers(evidence, sents, profile, retrieval),
                       must_haves=_must_haves(evidence, sents, profile, current))


_CLAUSE = re.compile(r"[,;:]\s+|\s+(?:and|but|though)\s+")


def _nearest(item: str, evidence: list[Evidence], sents: np.ndarray,
             floor: float = NEAR) -> list[int]:
    """Indices of the sentences close in meaning to ``item``, nearest first. An item names
    one thing and a sentence often several, so a sentence is as near as its nearest clause."""
    target = _vectors((_NEGATION.sub("", item) or item,))[0]
    sims = sents @ target
    for i, e in enumerate(evidence):
        clauses = tuple(c for c in _CLAUSE.split(e.sig.text) if len(c.split()) >= 2)
        if len(clauses) > 1:
            sims[i] = max(sims[i], float((_vectors(clauses) @ target).max()))
    return [int(i) for i in np.argsort(-sims, kind="stable") if sims[i] >= floor]


def _deal_breakers(evidence: list[Evidence], sents: np.ndarray, profile: Profile,
                   retrieval: Retrieval) -> list[DealBreakerHit]:
    hits = []
    for item in profile.deal_breakers:
        near = _nearest(item, evidence, sents)
        loose = _nearest(item, evidence, sents, LOOSE)
        # the notes state the very thing the person rules out and do not deny it, or say
        # something like it that reads as a worry
        shown = [i for i in loose if (i in near and not _DENIES.search(evidence[i].sig.text))
                 or (evidence[i].lean <= -LEANS and _sure(evidence[i]))]
        if not shown:
            continue
        first = evidence[shown[0]]
        # settled by a later line on the same thing that denies it or reads as good news
        settled = [i for i in near if evidence[i].sig.index > first.sig.index
                   and (_DENIES.search(evidence[i].sig.text)
                        or (evidence[i].lean >= LEANS and _sure(evidence[i])))]
        hits.append(DealBreakerHit(
            deal_breaker=item, quote=first.sig.text,
            passage_ids=[first.sig.best_passage or retrieval.passage_for(first.sig.text)],
            resolved=bool(settled),
            resolution_quote=evidence[settled[0]].sig.text if settled else None))
    return hits


def _must_haves(evidence: list[Evidence], sents: np.ndarray, profile: Profile,
                current: float | None) -> list[MustHaveCheck]:
    checks = []
    for item in profile.must_haves:
        floor = max(amounts(item), default=None)
        if floor is None and current and re.search(r"\bcurrent\b|\bwhat i (earn|make)\b",
                                                    item, re.I):
            floor = current
        if floor:
            offers = [(a, e) for e in evidence for a in amounts(e.sig.text)
                      if 0.4 * floor <= a <= 3 * floor]
            if offers:
                offer, e = max(offers, key=lambda x: x[0])
                checks.append(MustHaveCheck(must_have=item, quote=e.sig.text,
                                            status="met" if offer >= floor else "unmet"))
                continue
        near = [i for i in _nearest(item, evidence, sents) if _sure(evidence[i])
                and abs(evidence[i].lean) >= LEANS]
        if not near:
            checks.append(MustHaveCheck(must_have=item, status="unknown"))
            continue
        e = evidence[near[0]]
        checks.append(MustHaveCheck(must_have=item, quote=e.sig.text,
                                    status="met" if e.lean > 0 else "unmet"))
    return checks


def combined(net: float, matrix: MatrixDraft, profile: Profile | None) -> float:
    """The call's score with the person's priorities: the notes' net lean, plus the weighted
    matrix (-1..1 of its best) counted as MATRIX_WEIGHT sure lines; an open deal-breaker or
    an unmet must-have declines whatever else the notes say (matrix.apply_matrix says why)."""
    if profile is None:
        return net
    if any(not h.resolved for h in matrix.deal_breakers) or any(
            c.status == "unmet" for c in matrix.must_haves):
        return min(net, -1.0)
    known = [(profile.criteria[r.criterion].weight, r.score) for r in matrix.criteria
             if r.score is not None and r.criterion in profile.criteria]
    if not known:
        return net
    max_total = 2 * sum(c.weight for c in profile.criteria.values())
    return net + MATRIX_WEIGHT * sum(w * s for w, s in known) / max_total
