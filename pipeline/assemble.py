"""A model's answer into a reflection draft.

The model quotes note sentences from a closed list and cites advice passages by id, and
weighs each point;
this module turns that into reasons whose quotes are the notes' own sentences, derives the
call and its confidence from the weights, and writes the parts a small model does badly
(the drafts to send, the notes on each angle) from templates. What cannot be turned into a
valid draft is returned as problems, which are fed back to the model for one retry.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pydantic import ValidationError

from pipeline.letters import ANGLE_NOTES, thank_you, withdrawal
from pipeline.notes import Notes
from pipeline.profile import Profile
from pipeline.prompts import Prompt
from pipeline.questions import open_questions
from pipeline.retrieve import Retrieval
from pipeline.schema import (
    Angle,
    CriterionScore,
    DealBreakerHit,
    MatrixDraft,
    ModelAnswer,
    MustHaveCheck,
    NextStep,
    ProfiledDraft,
    Reason,
    RedFlag,
    ReflectionDraft,
)
from pipeline.text import align_quote

# confidence = 0.5 + 0.45 * tanh(|net weight| / SCALE): one decisive point (weight 3) alone
# gives about 0.84. A prior, not yet fitted to a model's recorded answers.
CONFIDENCE_SCALE = 3.0
StanceCheck = Callable[[str, str], bool]  # (sentence, stance) -> does the stance fit it?
CONTRADICTS = 0.75  # P(the other stance) from which the sentence model overrules a label


def stance_check(retrieval: Retrieval) -> StanceCheck:
    """A point's stance fits its sentence unless the sentence model is sure of the opposite:
    a model that calls "the pay is fair for our field" a reason to decline loses that point."""
    signals = {s.text: s for s in retrieval.sentences}

    def fits(sentence: str, stance: str) -> bool:
        sig = signals.get(sentence)
        if sig is None:
            return True
        other = sig.stance[1] if stance == "keep" else sig.stance[0]
        return other < CONTRADICTS

    return fits


def summarize(decision: str, points: list[tuple[str, int, str]]) -> str:
    """The call and what carries it, in two sentences, from the points themselves."""
    verdict = "Keep pursuing" if decision == "keep" else "Decline"
    pro = [why for stance, _, why in points if stance == decision and why.strip()]
    con = [why for stance, _, why in points if stance != decision and why.strip()]
    out = f"{verdict}: {pro[0].strip().rstrip('.')}." if pro else f"{verdict}."
    if con:
        out += f" Against it: {con[0].strip().rstrip('.')}."
    return out


def confidence(net: float) -> float:
    return round(0.5 + 0.45 * math.tanh(abs(net) / CONFIDENCE_SCALE), 2)


def _errors(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}"
            for e in exc.errors()[:8]]


def assemble(answer: dict, prompt: Prompt, notes: Notes, retrieval: Retrieval,
             profile: Profile | None = None, left_out: list[str] | None = None
             ) -> tuple[ReflectionDraft | None, list[str]]:
    """(draft, []) when the answer can be used; (None, problems) when it cannot. The points
    a usable draft leaves out are added to ``left_out``, so the user can be told."""
    stance_fits = stance_check(retrieval)
    try:
        ans = ModelAnswer.model_validate(answer)
    except ValidationError as exc:
        return None, _errors(exc)
    ids = {p.id for p in retrieval.passages}
    problems: list[str] = []
    dropped: list[str] = []

    ignored = "\n".join(retrieval.ignored)

    def injected(quote: str) -> bool:
        return bool(ignored) and align_quote(quote, ignored) is not None

    points = []
    contradicted = 0
    seen: set[str] = set()
    for i, pt in enumerate(ans.points):
        if pt.passage not in ids:
            problems.append(f"points[{i}] cites passage {pt.passage!r}, which is not listed "
                            f"({', '.join(sorted(ids))})")
        text = prompt.resolve(pt.quote)
        if text is None and injected(pt.quote):
            # an answer that rests on a line instructing the tool has been steered by it, in
            # its other points too: refused and fed back, never used in part
            problems.append(f"points[{i}].quote is not one of the listed note sentences; it "
                            f"is a line that instructs the tool: {pt.quote[:100]!r}")
            continue
        if text is None:
            # a point whose quote matches nothing in the notes is left out, never shown; only
            # when no point is left is the answer refused (and fed back)
            dropped.append(f"points[{i}].quote is not one of the listed note sentences: "
                           f"{pt.quote[:100]!r}")
            continue
        if text in seen:
            continue
        seen.add(text)
        if not stance_fits(text, pt.stance):
            contradicted += 1  # a label that contradicts its own quote is worse than no reason
            continue
        points.append((pt, text))
    if problems:  # refused anyway: the feedback names every point that did not hold
        return None, problems + dropped
    if not points:
        return None, dropped or ["no point is left that rests on a note sentence with a fitting stance; "
                      "cite the sentences that decide the call"]

    if left_out is not None:
        left_out += [*(["quoting words that are not in your notes"] * len(dropped)),
                     *(["labelled the opposite of what its own sentence says"] * contradicted)]
    net = sum(pt.weight * (1 if pt.stance == "keep" else -1) for pt, _ in points)
    # a tie keeps the process open: the advice is not to decide from a first impression
    decision = "keep" if net >= 0 else "decline"
    points.sort(key=lambda x: (x[0].stance != decision, -x[0].weight))
    reasons = [Reason(point=pt.why.strip() or "See the quote.", quote=text,
                      passage_ids=[pt.passage], supports=pt.stance) for pt, text in points]
    red_flags = [RedFlag(flag=pt.why.strip()[:120] or "A red flag", quote=text,
                         passage_ids=[pt.passage],
                         severity="high" if pt.weight == 3 else "medium")
                 for pt, text in points if pt.stance == "decline" and pt.weight >= 2]
    fields = dict(
        decision=decision, confidence=confidence(net),
        summary=summarize(decision, [(pt.stance, pt.weight, pt.why) for pt, _ in points]),
        reasons=reasons[:8], red_flags=red_flags[:8],
        practice_value=Angle(rating=ans.practice, note=ANGLE_NOTES["practice"][ans.practice]),
        leverage_value=Angle(rating=ans.leverage, note=ANGLE_NOTES["leverage"][ans.leverage]),
        clarity_value=Angle(rating=ans.clarity, note=ANGLE_NOTES["clarity"][ans.clarity]),
        practice_plan=[],
        questions_for_next_round=open_questions(retrieval, [t for _, t in points]),
        next_step=(NextStep(kind="thank_you", draft=thank_you(notes)) if decision == "keep"
                   else NextStep(kind="withdrawal", draft=withdrawal(notes))),
    )
    if profile is None:
        return ReflectionDraft(**fields), []
    unverified: list[str] = []
    matrix = _matrix(ans, profile, retrieval, prompt.resolve, unverified)
    if left_out is not None:
        left_out += ["scoring your profile on words that are not in your notes"] * len(unverified)
    return ProfiledDraft(**fields, matrix=matrix), []


def _matrix(ans: ModelAnswer, profile: Profile, retrieval: Retrieval,
            resolve: Callable[[str], str | None], unverified: list[str]) -> MatrixDraft:
    """The model's matrix with quotes filled in. A score, status or deal-breaker that rests
    on no note sentence is read as unknown rather than refused (the notes did not show it)
    and added to ``unverified``."""

    def sentence(field: str, quote: str | None) -> str | None:
        if quote is None:
            return None
        text = resolve(quote)
        if text is None:
            unverified.append(field)
        return text

    criteria = []
    for i, c in enumerate(ans.criteria):
        quote = sentence(f"criteria[{i}]", c.quote)
        known = c.score is not None and quote is not None
        criteria.append(CriterionScore(
            criterion=c.criterion, score=c.score if known else None,
            quote=quote if known else None,
            passage_ids=[retrieval.passage_for(quote)] if known and quote else []))
    breakers = []
    for i, d in enumerate(ans.deal_breakers):
        quote = sentence(f"deal_breakers[{i}]", d.quote)
        settled = sentence(f"deal_breakers[{i}].resolved_by", d.resolved_by)
        if not 1 <= d.deal_breaker <= len(profile.deal_breakers) or quote is None:
            continue
        breakers.append(DealBreakerHit(
            deal_breaker=profile.deal_breakers[d.deal_breaker - 1], quote=quote,
            passage_ids=[retrieval.passage_for(quote)], resolved=settled is not None,
            resolution_quote=settled))
    musts = []
    for i, m in enumerate(ans.must_haves):
        quote = sentence(f"must_haves[{i}]", m.quote)
        if not 1 <= m.must_have <= len(profile.must_haves):
            continue
        status = m.status if quote is not None else "unknown"
        musts.append(MustHaveCheck(must_have=profile.must_haves[m.must_have - 1],
                                   status=status, quote=quote if status != "unknown" else None))
    return MatrixDraft(criteria=criteria, deal_breakers=breakers, must_haves=musts)
