"""`debrief compare`: rank the open processes of a notes folder (pipeline/compare.py and
pipeline/commands/compare_cmd.py).

A five-note folder (four companies, one with two rounds) is compared once per module with
the offline engine and a priorities profile; the tests that run it again work on a copy.
The pure ranking functions are tested on hand-built reflections.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result
from conftest import (
    LAKEMONT_ROUND_1_TEXT,
    NOTES_CLEAR,
    BuiltIndex,
    assert_one_line_error,
    describe,
    private_indexed_home,
    run_cli,
    tree,
)

from pipeline.evaluate.metrics import kendall_tau
from pipeline.rank import Ranking, rank_processes, stage
from pipeline.render.ranking import ranking_markdown
from pipeline.schema import (
    Angle,
    DecisionMatrix,
    MatrixRow,
    NextStep,
    NotesInfo,
    Reason,
    Reflection,
)

PROFILE = """\
must_haves = []
deal_breakers = ["no unpaid trial work"]

[criteria]
pay = 8
manager_team = 7
growth = 6
hours_flexibility = 5

[current]
pay = "$50k"
"""

LAKEMONT = "Lakemont Children's Hospital"
# file names sort against the dates on purpose: the front matter decides which round is latest
LAKEMONT_ROUND_1 = "lakemont-b-phone-screen.md"
LAKEMONT_ROUND_2 = "lakemont-a-second-round.md"
GENERATED = {
    LAKEMONT_ROUND_1: LAKEMONT_ROUND_1_TEXT,
    "corvid.md": """---
company: Corvid Labs
role: Backend engineer
date: 2026-04-18
round: 2
---
The team lead answered every question about on-call openly and the rotation is one week in six.
They showed me the promotion rubric and how two people on the team moved up last year.
The offer range is ten percent above what I make now.
I explained the caching design clearly and they asked good follow-up questions.
""",
}
COPIED = {LAKEMONT_ROUND_2: "keep-01.md", "ashgrove.md": "keep-03.md",
          "glowroot.md": "decline-01.md"}
COMPANIES = {LAKEMONT, "Corvid Labs", "Ashgrove Public Library", "Glowroot Skincare"}
RELS = sorted([*GENERATED, *COPIED])


def make_notes(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for rel, text in GENERATED.items():
        (folder / rel).write_text(text, encoding="utf-8")
    for rel, fixture in COPIED.items():
        shutil.copyfile(NOTES_CLEAR / fixture, folder / rel)


def notes_only(t: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in t.items() if k != ".debrief" and not k.startswith(".debrief/")}


def notes_tree(root: Path) -> dict[str, str]:
    return tree(root)  # skips .debrief/


def compare_json(*args: object) -> tuple[Result, dict]:
    result = run_cli("compare", *args, "--json")
    try:
        return result, json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(describe(result)) from None


def by_company(data: dict) -> dict[str, dict]:
    return {p["company"]: p for p in data["processes"]}


# -- one real run, shared -------------------------------------------------------------------
@dataclass
class FirstRun:
    notes: Path
    profile: Path
    before: dict[str, str]
    result: Result
    data: dict


@pytest.fixture(scope="module")
def first_run(built_index: BuiltIndex, tmp_path_factory: pytest.TempPathFactory) -> FirstRun:
    base = tmp_path_factory.mktemp("compare-first-run")
    notes = base / "notes"
    make_notes(notes)
    before = tree(notes, skip=None)
    profile = base / "profile.toml"
    profile.write_text(PROFILE, encoding="utf-8")
    with private_indexed_home(base, built_index):
        result, data = compare_json(notes, "--profile", profile)
    return FirstRun(notes, profile, before, result, data)


@pytest.fixture
def copied(first_run: FirstRun, indexed_home: Path, tmp_path: Path) -> Path:
    """A copy of the folder after the first run (notes, reflections, state), mtimes kept."""
    dest = tmp_path / "notes"
    shutil.copytree(first_run.notes, dest)
    return dest


def test_every_company_is_ranked_exactly_once(first_run: FirstRun) -> None:
    assert first_run.result.exit_code == 0, describe(first_run.result)
    procs = first_run.data["processes"]
    assert sorted(p["company"] for p in procs) == sorted(COMPANIES)
    assert [p["rank"] for p in procs] == [1, 2, 3, 4]
    # every note was reflected on, once, by the batch
    out = first_run.notes / ".debrief"
    for rel in RELS:
        r = Reflection.model_validate_json((out / rel.replace(".md", ".json")).read_bytes())
        assert r.notes.path == rel and r.matrix is not None
    assert first_run.data["profile"] is True
    assert "reflected" not in first_run.result.stderr  # --json: no progress lines


def test_the_latest_round_decides_and_earlier_ones_are_history(first_run: FirstRun) -> None:
    lakemont = by_company(first_run.data)[LAKEMONT]
    assert lakemont["latest"]["path"] == LAKEMONT_ROUND_2
    assert lakemont["latest"]["date"] == "2026-06-16"
    assert [h["path"] for h in lakemont["history"]] == [LAKEMONT_ROUND_1]
    assert lakemont["stage"] == 2
    for company in COMPANIES - {LAKEMONT}:
        assert by_company(first_run.data)[company]["history"] == []
    # the latest round's own reflection is the one ranked
    r = Reflection.model_validate_json(
        (first_run.notes / ".debrief" / LAKEMONT_ROUND_2.replace(".md", ".json")).read_bytes())
    assert lakemont["confidence"] == r.confidence
    assert r.matrix is not None and lakemont["total"] == r.matrix.total


def test_a_deal_breaker_ranks_after_the_keeps_and_is_withdrawn(first_run: FirstRun) -> None:
    procs = first_run.data["processes"]
    glowroot = by_company(first_run.data)["Glowroot Skincare"]
    assert glowroot["decision"] == "decline" and glowroot["withdraw"] is True
    assert "no unpaid trial work" in glowroot["forced_decline"]
    assert "withdraw" in glowroot["withdrawal_draft"].lower()
    keeps = [p for p in procs if p["decision"] == "keep"]
    assert keeps, "the other companies should be keeps under this profile"
    assert glowroot["rank"] > max(p["rank"] for p in keeps)
    assert all(not p["withdraw"] and p["withdrawal_draft"] is None for p in keeps)
    # keeps are ordered by the weighted score
    assert [p["score"] for p in keeps] == sorted((p["score"] for p in keeps), reverse=True)


def test_json_has_the_fields(first_run: FirstRun) -> None:
    data = first_run.data
    assert set(data) == {"processes", "separating", "leverage", "profile", "failed"}
    assert data["failed"] == []
    Ranking.model_validate({k: v for k, v in data.items() if k != "failed"})
    for p in data["processes"]:
        assert {"rank", "company", "decision", "confidence", "score", "total", "stage",
                "latest", "history", "unknown", "unknown_high", "withdraw",
                "withdrawal_draft"} <= set(p)
        assert isinstance(p["total"], int)
    for s in data["separating"]:
        assert {"criterion", "weight", "weighted_gap"} <= set(s)
    for lv in data["leverage"]:
        assert set(lv) == {"source", "target", "why"}


def test_the_notes_are_left_byte_for_byte(first_run: FirstRun) -> None:
    assert notes_tree(first_run.notes) == first_run.before


def test_a_second_run_reflects_nothing_and_an_edit_redoes_one(
        first_run: FirstRun, copied: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.batch import run as batch_run
    from pipeline.index import embedding

    before = tree(copied, skip=None)

    def forbidden(*a: object, **k: object) -> None:
        raise AssertionError("a compare with nothing new opened the model, index or provider")

    with monkeypatch.context() as mp:
        for mod, name in ((batch_run, "make_provider"), (batch_run, "open_index"),
                          (embedding, "get_embedder")):
            mp.setattr(mod, name, forbidden)
        result, data = compare_json(copied, "--profile", first_run.profile)
    assert result.exit_code == 0, describe(result)
    assert data == first_run.data
    after = tree(copied, skip=None)
    reflections = [k for k in before if k.startswith(".debrief/") and k.endswith(".json")]
    assert len(reflections) == len(RELS)
    assert {k: after[k] for k in reflections} == {k: before[k] for k in reflections}

    # one edited note is reflected on again, and only that one
    note = copied / "corvid.md"
    note.write_text(note.read_text(encoding="utf-8")
                    + "They want a full unpaid trial week before making any offer.\n",
                    encoding="utf-8")
    edited = tree(copied, skip=None)
    result = run_cli("compare", copied, "--profile", first_run.profile)
    assert result.exit_code == 0, describe(result)
    assert "1 reflected, 4 up to date, 0 failed; 4 companies ranked" in result.stderr
    assert "reflected corvid.md" in result.stderr
    after = tree(copied, skip=None)
    changed = {k for k in reflections if after[k] != before[k]}
    assert changed == {".debrief/corvid.json"}
    assert notes_tree(copied) == notes_only(edited) != notes_only(before)
    # the edit shows an open deal-breaker: Corvid Labs is now to withdraw from, ranked last
    assert "### Corvid Labs" in result.stdout.split("## Withdraw from", 1)[1]


def test_piped_output_is_markdown_and_out_writes_it(first_run: FirstRun, copied: Path,
                                                    tmp_path: Path) -> None:
    report = tmp_path / "reports" / "ranking.md"
    result = run_cli("compare", copied, "--profile", first_run.profile, "--out", report)
    assert result.exit_code == 0, describe(result)
    md = report.read_text(encoding="utf-8")
    assert md == result.stdout
    assert md.startswith("# Your open processes, ranked\n")
    lines = md.splitlines()
    table = [line for line in lines if line.startswith("| ") and line[2:3].isdigit()]
    assert len(table) == 4
    assert table[-1].startswith("| 4 | Glowroot Skincare | decline (withdraw) |")
    assert "## Withdraw from" in md and "### Glowroot Skincare" in md
    assert "Why: deal-breaker in your profile: no unpaid trial work." in md
    assert f"- {LAKEMONT}: 2026-05-30, round 1: keep pursuing" in md
    assert "## Failed" not in md
    assert f"wrote {report}" in result.stderr
    assert not list(report.parent.glob(".*.tmp"))


def test_out_never_lands_on_or_among_the_notes(first_run: FirstRun, copied: Path) -> None:
    before = tree(copied, skip=None)
    for target, needle in ((copied / "corvid.md", "one of your notes"),
                           (copied / "ranking.md", "take it for a note"),
                           (copied / ".debrief" / "corvid.json", "the batch writes"),
                           (copied / ".debrief" / "digest.md", "the batch writes"),
                           (copied, "is a folder")):
        result = run_cli("compare", copied, "--profile", first_run.profile, "--out", target)
        assert_one_line_error(result, needle)
    assert tree(copied, skip=None) == before  # refused before any work
    # a hidden place inside the folder is fine: the batch never reads it as a note
    result = run_cli("compare", copied, "--profile", first_run.profile, "--out",
                     copied / ".debrief" / "ranking.md")
    assert result.exit_code == 0, describe(result)
    assert (copied / ".debrief" / "ranking.md").is_file()


def test_failed_notes_are_listed_never_dropped(first_run: FirstRun, copied: Path) -> None:
    (copied / "empty.md").write_bytes(b"")
    result, data = compare_json(copied, "--profile", first_run.profile)
    assert result.exit_code == 1, describe(result)
    assert data["failed"] == [{"path": "empty.md", "error": "the notes file is empty."}]
    assert len(data["processes"]) == 4  # the others are still ranked
    assert "failed empty.md" in result.stderr

    result = run_cli("compare", copied, "--profile", first_run.profile)
    assert result.exit_code == 1
    assert "## Failed (1)" in result.stdout
    assert "- `empty.md`: the notes file is empty." in result.stdout

    # a reflection that cannot be read back is a failure too, not a silent gap
    (copied / ".debrief" / "glowroot.json").write_text("{}", encoding="utf-8")
    from pipeline.batch.outputs import load_reflections

    reflections, failed = load_reflections(copied / ".debrief")
    assert len(reflections) == 4
    assert [p for p, _ in failed] == ["empty.md", "glowroot.md"]
    assert "not valid" in failed[1][1]


def test_bad_folders_are_usage_errors(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("compare", tmp_path / "nope"), "no such folder")
    (tmp_path / "file.md").write_text("notes", encoding="utf-8")
    assert_one_line_error(run_cli("compare", tmp_path / "file.md"), "is a file")
    empty = tmp_path / "empty"
    (empty / ".hidden").mkdir(parents=True)
    (empty / ".hidden" / "note.md").write_text("not looked at", encoding="utf-8")
    (empty / "readme.pdf").write_bytes(b"%PDF")
    assert_one_line_error(run_cli("compare", empty), "no notes to compare")
    assert not (empty / ".debrief").exists()


def test_help_teaches() -> None:
    result = run_cli("compare", "--help")
    assert result.exit_code == 0
    for text in ("Examples:", "debrief compare ~/interviews --out ~/ranking.md", "Exit codes",
                 "latest round", "--profile", "--json", "--force", "--concurrency",
                 "--chroma-url", "--corpus"):
        assert text in result.stdout
    assert "compare" in run_cli("--help").stdout


def test_terminal_view_shows_every_section(first_run: FirstRun, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.commands.compare_cmd import _show

    monkeypatch.setenv("COLUMNS", "200")

    data = {k: v for k, v in first_run.data.items() if k != "failed"}
    _show(Ranking.model_validate(data), [("bad.md", "the notes file is empty.")])
    out = capsys.readouterr().out
    for text in (*COMPANIES, "Withdraw from Glowroot Skincare", "Earlier rounds",
                 LAKEMONT_ROUND_1, "Failed (1)", "bad.md: the notes file is empty."):
        assert text in out, text


# -- the pure functions, on hand-built reflections ------------------------------------------
def reflection(company: str, decision: str = "keep", confidence: float = 0.8, *,
               date: str | None = "2026-01-01", round_: str | None = "1",
               path: str | None = None, scores: dict[str, int | None] | None = None,
               forced: str | None = None) -> Reflection:
    draft = "I am withdrawing." if decision == "decline" else "Thank you."
    matrix = None
    if scores is not None:
        weights = {"pay": 8, "growth": 6, "manager_team": 7}
        rows = [MatrixRow(criterion=k, label=k.title(), weight=weights[k], score=s,
                          weighted=None if s is None else weights[k] * s)
                for k, s in scores.items()]
        total = sum(r.weighted or 0 for r in rows)
        max_total = 2 * sum(weights[k] for k in scores)
        matrix = DecisionMatrix(rows=rows, total=total, max_total=max_total,
                                normalized=round(total / max_total, 4),
                                unknown=[r.criterion for r in rows if r.score is None],
                                forced_decline=forced, profile_fingerprint="x")
    return Reflection(
        decision=decision, confidence=confidence, summary="s",
        reasons=[Reason(point="p", quote="q", passage_ids=["a#1"], supports=decision)],
        practice_value=Angle(rating="low", note="n"), leverage_value=Angle(rating="low", note="n"),
        clarity_value=Angle(rating="low", note="n"),
        next_step=NextStep(kind="withdrawal" if decision == "decline" else "thank_you",
                           draft=draft),
        engine="offline", prompt_version="t", sources=[], matrix=matrix,
        notes=NotesInfo(path=path or f"{company}-{round_}.md", company=company, date=date,
                        round=round_, sha256="0"))


def test_compare_without_a_profile_ranks_keeps_by_confidence() -> None:
    c = rank_processes([reflection("B", confidence=0.6), reflection("A", confidence=0.9),
                 reflection("C", "decline", 0.95), reflection("D", confidence=0.6)])
    assert [p.company for p in c.processes] == ["A", "B", "D", "C"]  # a tie: by name
    assert [p.score for p in c.processes] == [0.9, 0.6, 0.6, -0.95]
    assert c.profile is False and c.separating == []
    withdraw = [p for p in c.processes if p.withdraw]
    assert [(p.company, p.withdrawal_draft) for p in withdraw] == [("C", "I am withdrawing.")]


def test_compare_takes_the_latest_round_by_date_then_stage() -> None:
    c = rank_processes([reflection("Acme", "decline", 0.7, date="2026-03-01", round_="2", path="c.md"),
                 reflection("Acme", "keep", 0.9, date="2026-02-01", round_="1", path="b.md"),
                 reflection("Acme", "keep", 0.8, date="2026-03-01", round_="1", path="a.md")])
    (p,) = c.processes
    assert (p.latest.date, p.latest.round, p.decision) == ("2026-03-01", "2", "decline")
    assert [(h.date, h.round) for h in p.history] == [("2026-02-01", "1"), ("2026-03-01", "1")]
    assert p.withdraw


def test_compare_with_a_matrix_separates_the_top_two_and_finds_leverage() -> None:
    c = rank_processes([
        reflection("Low", scores={"pay": 1, "growth": 1, "manager_team": None}, round_="1"),
        reflection("High", scores={"pay": 2, "growth": 0, "manager_team": 1}, round_="offer"),
        reflection("Broken", "decline", scores={"pay": 2, "growth": 2, "manager_team": 2},
                   forced="deal-breaker in your profile: no unpaid trial work"),
    ])
    assert [p.company for p in c.processes] == ["High", "Low", "Broken"]
    assert c.processes[-1].score == -1.0 and c.processes[-1].withdraw
    assert c.processes[1].unknown_high == ["manager_team"]  # weight 7: worth finding out
    assert [s["criterion"] for s in c.separating] == ["pay", "growth"]  # by weighted gap
    assert c.separating[0]["High"] == 2 and c.separating[0]["Low"] == 1
    assert [(lv.source, lv.target) for lv in c.leverage] == [("High", "Low")]
    assert "offer" in c.leverage[0].why

    md = ranking_markdown(c, [("x.md", "broken | badly")])
    assert "## What separates High from Low" in md
    assert "| Pay | 8 | +2 | +1 | +8 |" in md
    assert "| 2 | Low | keep pursuing | 0.80 | +14 | +0.33 | round 1 |" in md
    assert "manager team |" in md
    assert "## Leverage" in md and "## Withdraw from" in md and "    I am withdrawing." in md
    assert "- `x.md`: broken \\| badly" in md


@pytest.mark.parametrize(("round_", "expected"), [
    (None, 1), ("2", 2), ("3 of 4", 3), ("1 (panel)", 1), ("2 (onsite)", 2), ("onsite", 4),
    ("final", 4), ("3 (final loop, virtual)", 4), ("5 (final)", 5), ("offer call", 9),
    ("12", 8)])
def test_stage(round_: str | None, expected: int) -> None:
    assert stage(reflection("A", round_=round_)) == expected


def test_kendall_tau() -> None:
    gold = ["a", "b", "c", "d"]
    assert kendall_tau(gold, gold) == 1.0
    assert kendall_tau(gold[::-1], gold) == -1.0
    assert kendall_tau(["a", "c", "b", "d"], gold) == round(4 / 6, 4)  # one pair swapped
    # only the items both rank count: x is ignored, d is missing
    assert kendall_tau(["x", "b", "a", "c"], gold) == round(1 / 3, 4)
    assert kendall_tau(["a"], gold) == 0.0 and kendall_tau([], gold) == 0.0


def test_markdown_of_nothing_says_so() -> None:
    md = ranking_markdown(rank_processes([]), [("a.md", "the notes file is empty.")])
    assert "No reflections to rank." in md and "## Failed (1)" in md
