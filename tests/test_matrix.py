"""The decision matrix: the weighted total is code, the proposals are checked like quotes,
a deal-breaker in the notes decides, and no profile means no change at all."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import NOTES_CLEAR, ROOT, describe, run_cli
from hypothesis import given
from hypothesis import strategies as st

from pipeline.matrix import apply_matrix, build_matrix
from pipeline.notes import read_notes
from pipeline.profile import BUILTIN, HIGH_WEIGHT, Profile, parse_profile
from pipeline.prompts import PROFILE_PROMPT_VERSION, PROMPT_VERSION, build_prompt
from pipeline.retrieve import Passage, Retrieval, SentenceSignal
from pipeline.schema import (
    CriterionScore,
    DealBreakerHit,
    MatrixDraft,
    MustHaveCheck,
    NextStep,
    ProfiledDraft,
    Reason,
    Reflection,
)
from pipeline.validate import draft_problems

PROFILE = """
must_haves = ["a written orientation plan"]
deal_breakers = ["no weekend work", "no unpaid trial work"]

[criteria]
pay = 8
growth = 6
hours_flexibility = 9
commute_remote = 3

[criteria.four_day_week]
weight = 7
description = "A four-day week or compressed hours"

[current]
status = "employed"
job = "Staff pharmacist"
pay = "$61/hr"
"""

PAY_FIRST = """
[criteria]
pay = 10
growth = 8
hours_flexibility = 2

[current]
pay = "$58/hr"
"""


def profile() -> Profile:
    return parse_profile(PROFILE, "test")


def passage(pid: str) -> Passage:
    doc = pid.split("#")[0]
    return Passage(id=pid, doc_id=doc, title=doc, heading="h", text="t", stance="neutral",
                   source="s", tags=[], score=1.0)


NOTES_TEXT = ("- Pay is $63/hr, slightly above what I make now.\n"
              "- Schedule is 8s, every third weekend, holidays rotate.\n"
              "- Farah has a written 8-week orientation for every new hire.\n")


def notes_and_retrieval(tmp_path: Path) -> tuple:
    f = tmp_path / "n.md"
    f.write_text(NOTES_TEXT, encoding="utf-8")
    notes = read_notes(f)
    ret = Retrieval(passages=[passage("total-compensation#0"), passage("commute-and-hours#1")],
                    sentences=[SentenceSignal(text="x", index=0)], ignored=[])
    return notes, ret


def draft(matrix: MatrixDraft, decision: str = "keep") -> ProfiledDraft:
    kind = "thank_you" if decision == "keep" else "withdrawal"
    return ProfiledDraft(
        decision=decision, confidence=0.7, summary="s",
        reasons=[Reason(point="p", quote="Pay is $63/hr, slightly above what I make now.",
                        passage_ids=["total-compensation#0"], supports=decision)],
        practice_value={"rating": "low", "note": "n"}, leverage_value={"rating": "low", "note": "n"},
        clarity_value={"rating": "low", "note": "n"},
        next_step=NextStep(kind=kind, draft="Thank you."), matrix=matrix)


# -- the total is computed in code ----------------------------------------------------------
def test_total_is_weights_times_scores_and_unknowns_are_listed_by_weight() -> None:
    p = profile()
    m = build_matrix(MatrixDraft(criteria=[
        CriterionScore(criterion="pay", score=1, quote="q" * 9, passage_ids=["a#0"]),
        CriterionScore(criterion="hours_flexibility", score=-2, quote="q" * 9, passage_ids=["a#0"]),
        CriterionScore(criterion="growth", score=None),
    ]), p)
    assert m.total == 8 * 1 + 9 * -2
    assert m.max_total == 2 * (8 + 6 + 9 + 3 + 7)
    assert m.normalized == round(m.total / m.max_total, 4)
    # rows follow the person's weights; unknown keeps that order (commute and four-day were
    # never proposed, so they are unknown too)
    assert [r.criterion for r in m.rows] == ["hours_flexibility", "pay", "four_day_week",
                                             "growth", "commute_remote"]
    assert m.unknown == ["four_day_week", "growth", "commute_remote"]
    assert m.forced_decline is None
    assert m.must_haves == [MustHaveCheck(must_have="a written orientation plan", status="unknown")]


@given(weights=st.dictionaries(st.sampled_from(sorted(BUILTIN)), st.integers(1, 10), min_size=1),
       scores=st.lists(st.one_of(st.none(), st.integers(-2, 2)), min_size=9, max_size=9),
       seed=st.randoms(use_true_random=False))
def test_total_for_any_weights_and_scores_in_any_order(weights: dict[str, int],
                                                       scores: list[int | None], seed) -> None:
    p = Profile(criteria={k: {"weight": w} for k, w in weights.items()})
    proposals = [CriterionScore(criterion=k, score=s, quote=None if s is None else "a quote here",
                                passage_ids=[] if s is None else ["x#0"])
                 for k, s in zip(sorted(weights), scores, strict=False)]
    shuffled = list(proposals)
    seed.shuffle(shuffled)
    a = build_matrix(MatrixDraft(criteria=proposals), p)
    b = build_matrix(MatrixDraft(criteria=shuffled), p)
    assert a == b
    expect = sum(weights[c.criterion] * c.score for c in proposals if c.score is not None)
    assert a.total == expect
    assert -1.0 <= a.normalized <= 1.0


# -- proposals are validated like every other piece of evidence ------------------------------
@pytest.mark.parametrize(("matrix", "needle"), [
    (MatrixDraft(criteria=[CriterionScore(criterion="salary", score=1, quote="Pay is $63/hr",
                                          passage_ids=["total-compensation#0"])]),
     "'salary' is not in the profile"),
    (MatrixDraft(criteria=[CriterionScore(criterion="pay", score=2)]), "without a quote"),
    (MatrixDraft(criteria=[CriterionScore(criterion="pay", score=2, quote="Pay is $99/hr, wow",
                                          passage_ids=["total-compensation#0"])]),
     "does not occur verbatim"),
    (MatrixDraft(criteria=[CriterionScore(criterion="pay", score=2,
                                          quote="Pay is $63/hr, slightly above",
                                          passage_ids=["made-up#9"])]),
     "not among the retrieved"),
    (MatrixDraft(criteria=[CriterionScore(criterion="pay", score=2,
                                          quote="Pay is $63/hr, slightly above")]),
     "cites no passage"),
    (MatrixDraft(deal_breakers=[DealBreakerHit(deal_breaker="no nights",
                                               quote="every third weekend, holidays rotate")]),
     "not one of the profile's deal-breakers"),
    (MatrixDraft(deal_breakers=[DealBreakerHit(deal_breaker="no weekend work",
                                               quote="every third weekend, holidays rotate",
                                               resolved=True)]),
     "without a resolution_quote"),
    (MatrixDraft(must_haves=[MustHaveCheck(must_have="a written orientation plan",
                                           status="met")]),
     "without a quote"),
])
def test_matrix_problems_are_named(tmp_path: Path, matrix: MatrixDraft, needle: str) -> None:
    notes, ret = notes_and_retrieval(tmp_path)
    found = draft_problems(draft(matrix), notes, ret, profile())
    assert any(needle in f for f in found), found


def test_a_valid_matrix_passes_and_a_missing_one_does_not(tmp_path: Path) -> None:
    notes, ret = notes_and_retrieval(tmp_path)
    good = MatrixDraft(
        criteria=[CriterionScore(criterion="pay", score=1,
                                 quote="Pay is $63/hr, slightly above what I make now.",
                                 passage_ids=["total-compensation#0"]),
                  CriterionScore(criterion="growth", score=None)],
        deal_breakers=[DealBreakerHit(deal_breaker="No weekend work",  # case is forgiven
                                      quote="every third weekend, holidays rotate")],
        must_haves=[MustHaveCheck(must_have="a written orientation plan", status="met",
                                  quote="a written 8-week orientation")])
    assert draft_problems(draft(good), notes, ret, profile()) == []
    plain = draft(good).model_dump(exclude={"matrix"})
    from pipeline.schema import ReflectionDraft

    assert "matrix is missing" in draft_problems(ReflectionDraft(**plain), notes, ret, profile())[0]
    assert draft_problems(ReflectionDraft(**plain), notes, ret, None) == []


# -- the profile's rules -------------------------------------------------------------------
def test_an_open_deal_breaker_forces_decline_with_a_withdrawal(tmp_path: Path) -> None:
    notes, ret = notes_and_retrieval(tmp_path)
    hit = DealBreakerHit(deal_breaker="no weekend work", quote="every third weekend",
                         passage_ids=["commute-and-hours#1"])
    base, m = apply_matrix(draft(MatrixDraft(deal_breakers=[hit])), profile(), notes, ret)
    assert base.decision == "decline" and base.next_step.kind == "withdrawal"
    assert m.forced_decline == "deal-breaker in your profile: no weekend work"
    assert base.reasons[0].quote == "every third weekend" and base.reasons[0].supports == "decline"
    assert not draft_problems(base, notes, ret)  # the forced result is itself valid


def test_a_resolved_deal_breaker_does_not(tmp_path: Path) -> None:
    notes, ret = notes_and_retrieval(tmp_path)
    hit = DealBreakerHit(deal_breaker="no weekend work", quote="every third weekend",
                         resolved=True, resolution_quote="holidays rotate")
    base, m = apply_matrix(draft(MatrixDraft(deal_breakers=[hit])), profile(), notes, ret)
    assert base.decision == "keep" and m.forced_decline is None


def test_unmet_must_have_forces_decline(tmp_path: Path) -> None:
    notes, ret = notes_and_retrieval(tmp_path)
    chk = MustHaveCheck(must_have="a written orientation plan", status="unmet",
                        quote="a written 8-week orientation")
    base, m = apply_matrix(draft(MatrixDraft(must_haves=[chk])), profile(), notes, ret)
    assert base.decision == "decline" and "must-have" in (m.forced_decline or "")


def test_a_forced_reason_cites_the_passage_its_quote_fits(tmp_path: Path) -> None:
    notes, _ = notes_and_retrieval(tmp_path)
    onboarding = passage("onboarding-support#0")
    red_flags = passage("red-flags#2").model_copy(update={"stance": "decline"})
    ret = Retrieval(
        passages=[passage("total-compensation#0"), red_flags, onboarding],
        sentences=[SentenceSignal(text="Pay is $63/hr, slightly above what I make now.", index=0,
                                  best_passage="total-compensation#0", passage_sim=0.7),
                   SentenceSignal(text="Farah has a written 8-week orientation for every new "
                                       "hire.", index=2, best_passage="onboarding-support#0",
                                  passage_sim=0.6)],
        ignored=[])
    chk = MustHaveCheck(must_have="a written orientation plan", status="unmet",
                        quote="a written 8-week orientation")
    base, _ = apply_matrix(draft(MatrixDraft(must_haves=[chk])), profile(), notes, ret)
    assert base.reasons[0].passage_ids == ["onboarding-support#0"]
    assert not draft_problems(base, notes, ret)

    # a deal-breaker citing nothing, in a sentence retrieval did not score: the first
    # retrieved passage that argues for declining
    hit = DealBreakerHit(deal_breaker="no weekend work", quote="every third weekend")
    base, _ = apply_matrix(draft(MatrixDraft(deal_breakers=[hit])), profile(), notes, ret)
    assert base.reasons[0].passage_ids == ["red-flags#2"]


def test_heavy_unknowns_and_unknown_must_haves_become_the_first_questions(tmp_path: Path) -> None:
    notes, ret = notes_and_retrieval(tmp_path)
    base, m = apply_matrix(draft(MatrixDraft()), profile(), notes, ret)
    heavy = [r.criterion for r in m.rows if r.weight >= HIGH_WEIGHT]
    assert heavy == ["hours_flexibility", "pay", "four_day_week"]
    qs = base.questions_for_next_round
    assert qs[0] == BUILTIN["hours_flexibility"].question
    assert qs[1] == BUILTIN["pay"].question
    assert "four-day week" in qs[2]
    assert "a written orientation plan" in qs[3]


# -- prompts -------------------------------------------------------------------------------
def test_without_a_profile_the_prompt_is_unchanged(tmp_path: Path) -> None:
    notes, ret = notes_and_retrieval(tmp_path)
    plain = build_prompt(notes, ret)
    assert build_prompt(notes, ret, version=PROMPT_VERSION) == plain
    assert plain.version == PROMPT_VERSION
    assert "priorities" not in plain.messages[0][1] + plain.messages[1][1]
    assert not {"criteria", "deal_breakers", "must_haves"} & set(plain.schema["properties"])
    prof = build_prompt(notes, ret, profile=profile())
    assert prof.version == PROFILE_PROMPT_VERSION and prof.messages != plain.messages
    assert prof.sentences == plain.sentences  # the same notes are cited the same way
    user = prof.messages[1][1]
    assert "- hours_flexibility: Working hours, on-call, and control over your schedule; " \
           "weight 9" in user
    # deal-breakers and must-haves are listed by number, and cited by it
    assert "Deal-breakers:\n- D1: no weekend work\n- D2: no unpaid trial work" in user
    assert "Must-haves:\n- M1: a written orientation plan" in user
    props = prof.schema["properties"]
    assert props["deal_breakers"]["items"]["properties"]["deal_breaker"]["enum"] == [1, 2]
    assert props["must_haves"]["items"]["properties"]["must_have"]["enum"] == [1]
    assert sorted(props["criteria"]["items"]["properties"]["criterion"]["enum"]) == \
        sorted(profile().criteria)
    assert (ROOT / "prompts" / PROFILE_PROMPT_VERSION / "system.md").is_file()


# -- end to end, offline ----------------------------------------------------------------------
def reflect_json(*args: object) -> dict:
    result = run_cli("reflect", "--json", *args)
    assert result.exit_code == 0, describe(result)
    return json.loads(result.stdout)


def test_same_notes_two_profiles_two_calls(indexed_home: Path, tmp_path: Path) -> None:
    hours = tmp_path / "hours.toml"
    hours.write_text(PROFILE, encoding="utf-8")
    pay = tmp_path / "pay.toml"
    pay.write_text(PAY_FIRST, encoding="utf-8")
    note = NOTES_CLEAR / "keep-01.md"
    before = note.read_bytes()
    a = reflect_json(note, "--profile", hours)
    b = reflect_json(note, "--profile", pay)
    assert a["decision"] == "decline" and b["decision"] == "keep"
    assert a["matrix"]["forced_decline"] == "deal-breaker in your profile: no weekend work"
    hit = a["matrix"]["deal_breakers"][0]
    assert "weekend" in hit["quote"] and hit["resolved"] is False
    assert a["next_step"]["kind"] == "withdrawal"
    assert b["matrix"]["forced_decline"] is None
    pay_row = next(r for r in b["matrix"]["rows"] if r["criterion"] == "pay")
    assert pay_row["score"] == 1  # $63/hr against $58/hr: 8.6% more
    assert pay_row["weighted"] == 10 and "$63/hr" in pay_row["quote"]
    assert b["matrix"]["total"] == sum(r["weighted"] or 0 for r in b["matrix"]["rows"])
    for r in (a, b):
        Reflection.model_validate(r)
        assert r["prompt_version"] == PROFILE_PROMPT_VERSION
    assert note.read_bytes() == before


def test_no_profile_means_no_matrix_and_the_same_reflection(indexed_home: Path,
                                                            tmp_path: Path) -> None:
    note = NOTES_CLEAR / "decline-01.md"
    plain = reflect_json(note)
    assert plain["matrix"] is None and plain["prompt_version"] == PROMPT_VERSION
    (indexed_home / "profile.toml").write_text(PROFILE, encoding="utf-8")
    profiled = reflect_json(note)  # the default profile is picked up
    assert profiled["matrix"] is not None
    assert reflect_json(note, "--no-profile") == plain


def test_matrix_renders_as_a_table(indexed_home: Path, tmp_path: Path) -> None:
    prof = tmp_path / "p.toml"
    prof.write_text(PROFILE, encoding="utf-8")
    result = run_cli("reflect", NOTES_CLEAR / "keep-01.md", "--profile", prof)
    assert result.exit_code == 0, describe(result)
    assert "| Criterion | Weight | Score | Weighted | From your notes |" in result.stdout
    assert "Decline forced by your profile: deal-breaker in your profile: no weekend work" \
        in result.stdout


@pytest.mark.parametrize(("text", "needle"), [
    ("[criteria]\npay = 11\n", "criteria.pay.weight"),
    ("[criteria]\nmy_thing = 3\n", "criteria.my_thing: your own criterion has no description"),
    ("nonsense = [", "not valid TOML"),
])
def test_a_bad_profile_is_one_line(indexed_home: Path, tmp_path: Path, text: str,
                                   needle: str) -> None:
    from conftest import assert_one_line_error

    prof = tmp_path / "p.toml"
    prof.write_text(text, encoding="utf-8")
    assert_one_line_error(run_cli("reflect", NOTES_CLEAR / "keep-01.md", "--profile", prof),
                          needle)


def test_missing_profile_path_is_one_line(indexed_home: Path, tmp_path: Path) -> None:
    from conftest import assert_one_line_error

    assert_one_line_error(run_cli("reflect", NOTES_CLEAR / "keep-01.md", "--profile",
                                  tmp_path / "nope.toml"), "does not exist")


# -- the openai path with a profile, against the fake server over real HTTP -------------------
def test_openai_provider_with_a_profile(indexed_home: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from fake_openai import FakeOpenAI

    prof = tmp_path / "p.toml"
    prof.write_text(PROFILE, encoding="utf-8")
    with FakeOpenAI(model="fake") as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dummy")
        out = reflect_json(NOTES_CLEAR / "keep-01.md", "--profile", prof, "--model", "fake")
        assert fake.requests == 1
    assert out["engine"] == "openai" and out["prompt_version"] == PROFILE_PROMPT_VERSION
    rows = {r["criterion"]: r for r in out["matrix"]["rows"]}
    assert set(rows) == {"pay", "growth", "hours_flexibility", "commute_remote", "four_day_week"}
    # the fake scores only the first criterion it is shown (the heaviest): +1 x weight 9
    assert out["matrix"]["total"] == 9 and rows["hours_flexibility"]["score"] == 1
    assert os.environ["OPENAI_BASE_URL"] == fake.url
