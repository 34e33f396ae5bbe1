"""Near-quotes: ``pipeline.text.align_quote`` and ``pipeline.validate.align_quotes``.

A v2 model quotes from a closed list of note sentences, so its quotes are verbatim by
construction; free quotes remain in the matrix and in drafts an engine writes itself. Such a
quote that is off by case, a dropped word or an ellipsis is replaced by the notes' own words
before validation; one off only by curly quotes or whitespace already matches the notes in
canonical form (pipeline.text.canon) and is kept; one with no close span is left as it is,
and refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.notes import Notes, read_notes
from pipeline.profile import parse_profile
from pipeline.retrieve import Passage, Retrieval
from pipeline.schema import (
    CriterionScore,
    DealBreakerHit,
    MatrixDraft,
    MustHaveCheck,
    NextStep,
    ProfiledDraft,
    Reason,
    RedFlag,
    ReflectionDraft,
)
from pipeline.text import align_quote, canon, normalize_ws
from pipeline.validate import align_quotes, draft_problems

BODY = """- The manager explained the on-call rotation clearly and it sounded fair to me.
- They offered a salary well above my current job, with a written raise path.
- The recruiter said "we don't do unpaid trials" when I asked about the process.
- Every third weekend is on call, and holidays rotate through the team.
"""
PROFILE = """
must_haves = ["a written raise path"]
deal_breakers = ["no weekend work"]

[criteria]
pay = 8
hours_flexibility = 6
"""
# (what an engine wrote, the notes' own words it stands for)
# equal once quote marks and whitespace are folded: they pass validation as written, and
# align_quotes still replaces them with the notes' exact words, which is what is shown
CANON_EQUAL = {"curly quotes", "whitespace"}
NEAR = {
    "case": ("THE MANAGER EXPLAINED THE ON-CALL ROTATION CLEARLY",
             "The manager explained the on-call rotation clearly"),
    "curly quotes": ("The recruiter said “we don’t do unpaid trials”",
                     'The recruiter said "we don\'t do unpaid trials"'),
    "whitespace": ("They offered   a salary\nwell above   my current job",
                   "They offered a salary well above my current job,"),
    "dropped word": ("They offered a salary above my current job, with a written raise path",
                     "They offered a salary well above my current job, with a written raise "
                     "path."),
    "ellipsis": ("The manager explained ... sounded fair to me",
                 "The manager explained the on-call rotation clearly and it sounded fair to "
                 "me."),
    "unicode ellipsis": ("The manager explained… sounded fair to me",
                         "The manager explained the on-call rotation clearly and it sounded "
                         "fair to me."),
    "quoted, lower case": ('"every third weekend is on call, and holidays rotate"',
                           "Every third weekend is on call, and holidays rotate"),
}
INVENTED = "The foreman promised a corner office with a sea view."


@pytest.mark.parametrize("kind", sorted(NEAR))
def test_align_quote_finds_the_exact_words(kind: str) -> None:
    quote, exact = NEAR[kind]
    assert align_quote(quote, BODY) == exact
    assert exact in BODY.replace("\n- ", " ")  # verbatim from the notes


@pytest.mark.parametrize("quote", [INVENTED, "", "...", "They offered a corner office"])
def test_align_quote_gives_up_on_words_the_notes_do_not_have(quote: str) -> None:
    assert align_quote(quote, BODY) is None


def test_an_exact_quote_aligns_to_itself() -> None:
    line = "Every third weekend is on call, and holidays rotate through the team."
    assert align_quote(line, BODY) == line


# -- through a draft, as reflect.generate() runs it: align, then validate ---------------------
def _setup(tmp_path: Path) -> tuple[Notes, Retrieval]:
    f = tmp_path / "notes.md"
    f.write_text(BODY, encoding="utf-8")
    ids = ["total-compensation#0", "commute-and-hours#1", "red-flag-unpaid-trial-work#0"]
    passages = [Passage(id=i, doc_id=i.split("#")[0], title="t", heading="h", text="x",
                        stance="neutral", source="s", tags=[], score=1.0) for i in ids]
    return read_notes(f), Retrieval(passages=passages, sentences=[], ignored=[])


def _draft(quotes: list[str], matrix: MatrixDraft | None = None) -> ReflectionDraft:
    fields = dict(
        decision="keep", confidence=0.7, summary="Keep pursuing.",
        reasons=[Reason(point=f"Reason {i}.", quote=q, passage_ids=["total-compensation#0"],
                        supports="keep") for i, q in enumerate(quotes)],
        red_flags=[RedFlag(flag="Weekends", quote=quotes[-1],
                           passage_ids=["commute-and-hours#1"], severity="medium")],
        practice_value={"rating": "low", "note": "n"},
        leverage_value={"rating": "low", "note": "n"},
        clarity_value={"rating": "low", "note": "n"},
        next_step=NextStep(kind="thank_you", draft="Thank you for your time."))
    if matrix is None:
        return ReflectionDraft(**fields)
    return ProfiledDraft(**fields, matrix=matrix)


def test_near_quotes_in_reasons_and_red_flags_are_replaced_then_pass(tmp_path: Path) -> None:
    notes, ret = _setup(tmp_path)
    draft = _draft([q for q, _ in NEAR.values()])
    before = draft_problems(draft, notes, ret)
    assert [p.split(".quote")[0] for p in before] == \
        [f"reasons[{i}]" for i, k in enumerate(NEAR) if k not in CANON_EQUAL] + ["red_flags[0]"]
    assert all("does not occur verbatim" in p for p in before), before
    fixed = align_quotes(draft, notes.body)
    assert [r.quote for r in fixed.reasons] == [
        normalize_ws(q) if k == "whitespace" else exact for k, (q, exact) in NEAR.items()]
    for kind in CANON_EQUAL:
        quote, exact = NEAR[kind]
        assert canon(quote) in canon(exact) and canon(quote) in canon(notes.body)
    assert fixed.red_flags[0].quote == NEAR["quoted, lower case"][1]
    assert draft_problems(fixed, notes, ret) == []
    assert type(fixed) is ReflectionDraft
    # everything but the quotes is as the engine wrote it
    assert fixed.model_dump(exclude={"reasons", "red_flags"}) == \
        draft.model_dump(exclude={"reasons", "red_flags"})


def test_a_quote_with_no_close_span_is_left_and_refused(tmp_path: Path) -> None:
    notes, ret = _setup(tmp_path)
    fixed = align_quotes(_draft([NEAR["ellipsis"][0], INVENTED]), notes.body)
    assert fixed.reasons[0].quote == NEAR["ellipsis"][1]
    assert fixed.reasons[1].quote == INVENTED
    problems = draft_problems(fixed, notes, ret)
    assert problems == [f"reasons[1].quote does not occur verbatim in the notes: {INVENTED!r}",
                        f"red_flags[0].quote does not occur verbatim in the notes: {INVENTED!r}"]


def test_near_quotes_in_the_matrix_are_replaced_then_pass(tmp_path: Path) -> None:
    notes, ret = _setup(tmp_path)
    profile = parse_profile(PROFILE, "test")
    matrix = MatrixDraft(
        criteria=[CriterionScore(criterion="pay", score=2, quote=NEAR["dropped word"][0],
                                 passage_ids=["total-compensation#0"]),
                  CriterionScore(criterion="hours_flexibility", score=None)],
        deal_breakers=[DealBreakerHit(deal_breaker="no weekend work",
                                      quote="every THIRD weekend is on call",
                                      passage_ids=["commute-and-hours#1"], resolved=True,
                                      resolution_quote="holidays   rotate … the team")],
        must_haves=[MustHaveCheck(must_have="a written raise path", status="met",
                                  quote="“with a written raise path”"),
                    ])
    draft = _draft([NEAR["curly quotes"][0]], matrix)
    assert draft_problems(draft, notes, ret, profile)  # refused as written
    fixed = align_quotes(draft, notes.body)
    assert type(fixed) is ProfiledDraft
    m = fixed.matrix
    assert m.criteria[0].quote == NEAR["dropped word"][1]
    assert m.criteria[1].quote is None and m.criteria[1].score is None
    assert m.deal_breakers[0].quote == "Every third weekend is on call,"
    assert m.deal_breakers[0].resolution_quote == "holidays rotate through the team."
    assert m.must_haves[0].quote == "with a written raise path."  # the notes' own marks
    assert draft_problems(fixed, notes, ret, profile) == []
    for quote in (m.criteria[0].quote, m.deal_breakers[0].quote,
                  m.deal_breakers[0].resolution_quote):
        assert quote in normalize_ws(notes.body)
