"""The offline engine on the notes a new user wrote (issue: notes it was never tuned on).

Each test is one of the failures seen from outside, written as notes the engine has never
seen: a reason must agree with its quote, pay is read as figures, questions ask the employer
about what the notes leave open, drafts use what the notes say, and a profile reads the very
thing a must-have or deal-breaker names.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import describe, run_cli

from pipeline.schema import Reflection
from pipeline.text import normalize_ws

MIXED = """---
company: Harlow Analytics
role: BI Lead
date: 2026-11-28
interviewers: [Marta Kovacs (Head of Data)]
current_pay: £62,000
---
- I liked that they publish their on-call rota and nobody works late on Fridays.
- The office is 50 minutes each way and they want three days on site.
- Promotion track is vague: "we'll see after a year".
- The BI migration is funded and starts in January, and I'd lead it.
- The pay range they gave is fair for our field, £64-68k.
"""


def reflect(tmp_path: Path, text: str, *args: object, name: str = "notes.md") -> Reflection:
    notes = tmp_path / name
    notes.write_text(text, encoding="utf-8")
    result = run_cli("reflect", notes, "--json", "--provider", "offline", *args)
    assert result.exit_code == 0, describe(result)
    return Reflection.model_validate_json(result.stdout)


def test_a_reason_never_claims_more_than_its_quote(indexed_home: Path, tmp_path: Path) -> None:
    r = reflect(tmp_path, MIXED)
    for reason in r.reasons:
        # labels say only which way a line pushes: no topic the quote may not be about
        assert "weighs toward" in reason.point or "tips the call" in reason.point, reason.point
        way = "keeping" if reason.supports == "keep" else "declining"
        assert way in reason.point, (reason.point, reason.supports)
    rota = "I liked that they publish their on-call rota and nobody works late on Fridays."
    assert all(x.supports == "keep" for x in r.reasons if x.quote == rota)


def test_fair_pay_is_never_called_a_pay_cut(indexed_home: Path, tmp_path: Path) -> None:
    r = reflect(tmp_path, MIXED)
    pay = [x for x in r.reasons if "£64-68k" in x.quote]
    assert all(x.supports == "keep" for x in pay), pay
    assert not any("below your current pay" in x.point for x in r.reasons)


def test_pay_below_the_current_pay_is_read_from_the_figures(indexed_home: Path,
                                                           tmp_path: Path) -> None:
    r = reflect(tmp_path, MIXED.replace("£64-68k", "£48-52k"))
    pay = [x for x in r.reasons if "£48-52k" in x.quote]
    assert pay and all(x.supports == "decline" for x in pay)
    assert "below your current pay" in pay[0].point


def test_a_new_line_changes_the_reflection(indexed_home: Path, tmp_path: Path) -> None:
    without = MIXED.replace("- The BI migration is funded and starts in January, and I'd lead it.\n",
                            "")
    a = reflect(tmp_path, without, name="a.md")
    b = reflect(tmp_path, MIXED, name="b.md")
    assert (a.decision, a.confidence, [x.quote for x in a.reasons]) != \
        (b.decision, b.confidence, [x.quote for x in b.reasons])


def test_a_long_paragraph_is_quoted_by_its_clauses(indexed_home: Path, tmp_path: Path) -> None:
    body = ("Met the head of research and two designers, it was a relaxed chat but honestly a "
            "bit odd because when I asked how research feeds into the roadmap the head of "
            "product laughed and said we don't really do research here, we just ship, and then "
            "one of the designers mentioned that they have had three designers in the last "
            "eighteen months which nobody else picked up on, the office is nice though and I "
            "liked the people I met, they said they'd get back to me next week.")
    r = reflect(tmp_path, f"---\ncompany: Quill\nrole: UX Researcher\n---\n{body}\n")
    for quote in [x.quote for x in r.reasons] + [f.quote for f in r.red_flags]:
        assert len(quote) <= 240, quote
        assert quote.rstrip(",.").split()[-1] not in {"the", "and", "a", "of", "to"}, quote


def test_questions_ask_the_employer_about_what_is_open(indexed_home: Path,
                                                      tmp_path: Path) -> None:
    r = reflect(tmp_path, MIXED)
    terse = reflect(tmp_path, "---\ncompany: Ostrava Labs\n---\nrecruiter only, 25 min. "
                              "next step is a call with the team lead.\n", name="terse.md")
    assert r.questions_for_next_round != terse.questions_for_next_round
    for q in r.questions_for_next_round + terse.questions_for_next_round:
        assert q.endswith("?")
        assert not q.lower().startswith(("should i", "was it", "did i", "do i", "am i")), q
    # the terse note never says what the job pays, who manages it or what it is
    asked = " ".join(terse.questions_for_next_round).lower()
    assert "pay" in asked
    # the mixed note states the pay, so pay is not asked as an unknown
    assert not any(q.startswith("What is the pay range") for q in r.questions_for_next_round)


def test_drafts_use_what_the_notes_say(indexed_home: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBRIEF_NAME", "Robin Shaw")
    r = reflect(tmp_path, MIXED)
    draft = r.next_step.draft
    assert draft.startswith("Hi Marta,"), draft
    assert "Harlow Analytics" in draft and draft.rstrip().endswith("Robin Shaw")
    # the company named only by the file name keeps a capital, and a named person is greeted
    plain = reflect(tmp_path, "Met Priya, the hiring manager. She was kind and the team "
                              "seemed sharp. Pay is good.\n", name="2026-12-05-orbit.txt")
    assert plain.notes.company == "Orbit"
    assert plain.next_step.draft.startswith("Hi Priya,")
    assert "the role at orbit" not in plain.next_step.draft


def test_without_a_name_the_signature_is_a_visible_placeholder(indexed_home: Path,
                                                               tmp_path: Path) -> None:
    r = reflect(tmp_path, MIXED)
    assert r.next_step.draft.rstrip().endswith("[your name]")


PROFILE = """must_haves = ["fully remote", "the pay and title in a written offer"]
deal_breakers = ["no commute over 45 minutes each way"]

[criteria]
commute_remote = 9
pay = 7
growth = 5

[current]
status = "employed"
job = "BI analyst"
pay = "£62,000"
"""


def test_a_profile_reads_the_very_thing_it_names(indexed_home: Path, tmp_path: Path) -> None:
    profile = tmp_path / "profile.toml"
    profile.write_text(PROFILE, encoding="utf-8")
    r = reflect(tmp_path, MIXED, "--profile", profile)
    assert r.matrix is not None
    musts = {m.must_have: m for m in r.matrix.must_haves}
    # the office line is about remote work and says no: it cannot meet "fully remote"
    assert musts["fully remote"].status != "met", musts["fully remote"]
    # a salary line says nothing about a written offer
    assert musts["the pay and title in a written offer"].status != "met"
    rows = {row.criterion: row for row in r.matrix.rows}
    assert rows["commute_remote"].score is not None and rows["commute_remote"].score < 0


def test_a_profile_changes_confidence_only_by_changing_the_call(indexed_home: Path,
                                                                 tmp_path: Path) -> None:
    plain = reflect(tmp_path, MIXED)
    profile = tmp_path / "p.toml"
    profile.write_text(PROFILE.replace('deal_breakers = ["no commute over 45 minutes each way"]',
                                       "deal_breakers = []").replace(
        'must_haves = ["fully remote", "the pay and title in a written offer"]',
        "must_haves = []"), encoding="utf-8")
    profiled = reflect(tmp_path, MIXED, "--profile", profile)
    if profiled.decision == plain.decision:
        assert profiled.confidence == plain.confidence


def test_quotes_are_the_notes_own_words(indexed_home: Path, tmp_path: Path) -> None:
    r = reflect(tmp_path, MIXED)
    body = normalize_ws(MIXED.split("---", 2)[2])
    for quote in [x.quote for x in r.reasons] + [f.quote for f in r.red_flags]:
        assert normalize_ws(quote) in body
