"""The decision matrix: check what the engine proposed, then weigh it in code.

The model (or the offline engine) only proposes per-criterion scores and their evidence;
the weighted total, the deal-breaker override and the questions for unknowns are computed
here, deterministically, from the person's own weights.
"""

from __future__ import annotations

from pipeline.letters import withdrawal
from pipeline.notes import Notes
from pipeline.profile import HIGH_WEIGHT, Profile, criterion_question
from pipeline.retrieve import Retrieval
from pipeline.schema import (
    DecisionMatrix,
    MatrixDraft,
    MatrixRow,
    MustHaveCheck,
    NextStep,
    ProfiledDraft,
    Reason,
    ReflectionDraft,
)

MAX_QUESTIONS = 8


def _key(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .\"'")


def matrix_problems(m: MatrixDraft, profile: Profile, check_quote) -> list[str]:
    """Every reason the proposed matrix is unfit; ``check_quote(field, quote, ids)`` is the
    same verbatim-quote and retrieved-id check the reasons get (``ids=None``: quote only)."""
    found: list[str] = []
    seen: set[str] = set()
    for i, row in enumerate(m.criteria):
        field = f"matrix.criteria[{i}]"
        if row.criterion not in profile.criteria:
            found.append(f"{field}.criterion {row.criterion!r} is not in the profile "
                         f"({', '.join(profile.criteria)})")
            continue
        if row.criterion in seen:
            found.append(f"{field}.criterion {row.criterion!r} is scored twice")
        seen.add(row.criterion)
        if row.score is None:
            continue
        if not row.quote:
            found.append(f"{field} scores {row.criterion!r} without a quote; quote the notes or "
                         "use null for unknown")
            continue
        found += check_quote(field, row.quote, row.passage_ids)
    breakers = {_key(d): d for d in profile.deal_breakers}
    for i, hit in enumerate(m.deal_breakers):
        field = f"matrix.deal_breakers[{i}]"
        if _key(hit.deal_breaker) not in breakers:
            found.append(f"{field}.deal_breaker {hit.deal_breaker!r} is not one of the profile's "
                         f"deal-breakers ({'; '.join(profile.deal_breakers) or 'none'})")
            continue
        # a deal-breaker may cite no passage (the override cites one for it); any it cites
        # must have been retrieved
        found += check_quote(field, hit.quote, hit.passage_ids or None)
        if hit.resolved:
            if not hit.resolution_quote:
                found.append(f"{field} is marked resolved without a resolution_quote from the notes")
            else:
                found += check_quote(field + ".resolution", hit.resolution_quote, None)
    musts = {_key(x) for x in profile.must_haves}
    for i, chk in enumerate(m.must_haves):
        field = f"matrix.must_haves[{i}]"
        if _key(chk.must_have) not in musts:
            found.append(f"{field}.must_have {chk.must_have!r} is not one of the profile's "
                         f"must-haves ({'; '.join(profile.must_haves) or 'none'})")
        elif chk.status != "unknown":
            if not chk.quote:
                found.append(f"{field} says {chk.status!r} without a quote from the notes")
            else:
                found += check_quote(field, chk.quote, None)
    return found


def build_matrix(m: MatrixDraft, profile: Profile) -> DecisionMatrix:
    """Rows in the profile's order of weight; total = sum(weight x score) over known rows."""
    proposed = {r.criterion: r for r in m.criteria if r.criterion in profile.criteria}
    order = sorted(profile.criteria, key=lambda k: (-profile.criteria[k].weight, k))
    rows = []
    for key in order:
        weight = profile.criteria[key].weight
        r = proposed.get(key)
        score = r.score if r is not None else None
        rows.append(MatrixRow(
            criterion=key, label=profile.label(key), weight=weight, score=score,
            weighted=None if score is None else weight * score,
            quote=r.quote if r is not None and score is not None else None,
            passage_ids=list(r.passage_ids) if r is not None and score is not None else []))
    total = sum(row.weighted or 0 for row in rows)
    max_total = 2 * sum(c.weight for c in profile.criteria.values())
    canon = {_key(d): d for d in profile.deal_breakers}
    hits = [h.model_copy(update={"deal_breaker": canon[_key(h.deal_breaker)]})
            for h in m.deal_breakers if _key(h.deal_breaker) in canon]
    musts = {_key(x): x for x in profile.must_haves}
    checks = {_key(c.must_have): c for c in m.must_haves if _key(c.must_have) in musts}
    must_rows = [checks[k].model_copy(update={"must_have": musts[k]}) if k in checks
                 else MustHaveCheck(must_have=musts[k], status="unknown") for k in musts]
    open_hits = [h for h in hits if not h.resolved]
    unmet = [c for c in must_rows if c.status == "unmet"]
    forced = None
    if open_hits:
        forced = f"deal-breaker in your profile: {open_hits[0].deal_breaker}"
    elif unmet:
        forced = f"must-have in your profile not met: {unmet[0].must_have}"
    return DecisionMatrix(
        rows=rows, total=total, max_total=max_total,
        normalized=round(total / max_total, 4) if max_total else 0.0,
        unknown=[row.criterion for row in rows if row.score is None],
        deal_breakers=hits, must_haves=must_rows, forced_decline=forced,
        profile_fingerprint=profile.fingerprint())


def apply_matrix(draft: ProfiledDraft, profile: Profile, notes: Notes,
                 retrieval: Retrieval) -> tuple[ReflectionDraft, DecisionMatrix]:
    """The plain draft with the profile's rules applied, and the computed matrix."""
    matrix = build_matrix(draft.matrix, profile)
    data = draft.model_dump(exclude={"matrix"})
    base = ReflectionDraft.model_validate(data)
    questions: list[str] = []
    for row in matrix.rows:  # already by weight: the weightiest unknowns ask first
        if row.score is None and row.weight >= HIGH_WEIGHT:
            questions.append(criterion_question(profile, row.criterion))
    for chk in matrix.must_haves:
        if chk.status == "unknown":
            questions.append(f"Your must-have “{chk.must_have}”: the notes do not say; ask "
                             "about it directly before the next round.")
    for q in base.questions_for_next_round:
        if q not in questions:
            questions.append(q)
    base.questions_for_next_round = questions[:MAX_QUESTIONS]
    if matrix.forced_decline:
        base = _force_decline(base, matrix, notes, retrieval)
    return base, matrix


def _force_decline(base: ReflectionDraft, matrix: DecisionMatrix, notes: Notes,
                   retrieval: Retrieval) -> ReflectionDraft:
    """A deal-breaker (or unmet must-have) the notes show decides, whatever else they say."""
    hit = next((h for h in matrix.deal_breakers if not h.resolved), None)
    reasons = list(base.reasons)
    if hit is not None:
        ids = hit.passage_ids or [retrieval.passage_for(hit.quote)]
        reasons.insert(0, Reason(point=f"This hits a deal-breaker in your profile: "
                                       f"{hit.deal_breaker}.", quote=hit.quote,
                                 passage_ids=ids, supports="decline"))
    else:
        chk = next(c for c in matrix.must_haves if c.status == "unmet")
        assert chk.quote is not None  # validated: 'unmet' always carries its quote
        reasons.insert(0, Reason(point=f"A must-have in your profile is not met: {chk.must_have}.",
                                 quote=chk.quote, passage_ids=[retrieval.passage_for(chk.quote)],
                                 supports="decline"))
    changed = base.decision != "decline"
    update = {"reasons": reasons[:8], "decision": "decline"}
    if changed:
        update["confidence"] = max(base.confidence, 0.8)
        update["summary"] = (f"Decline: the notes show a {matrix.forced_decline}. "
                             + base.summary)
        update["next_step"] = NextStep(kind="withdrawal", draft=withdrawal(notes))
    return base.model_copy(update=update)
