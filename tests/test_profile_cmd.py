"""`debrief profile`: init (questions and template), show, edit, check, and the TOML writer."""

from __future__ import annotations

import json
import shlex
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import assert_one_line_error, describe, run_cli
from hypothesis import given
from hypothesis import strategies as st

from pipeline.profile import BUILTIN, Criterion, Profile, Situation, parse_profile
from pipeline.profile.write import (
    DEFAULT_WEIGHTS,
    template_profile,
    template_text,
    to_toml,
    toml_string,
)


@pytest.fixture
def profile_file(debrief_env: Path) -> Path:
    return debrief_env / "profile.toml"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- init --template, check ------------------------------------------------------------------
def test_template_then_check_ok(profile_file: Path) -> None:
    result = run_cli("profile", "init", "--template")
    assert result.exit_code == 0, describe(result)
    assert str(profile_file) in result.stdout
    assert profile_file.read_text(encoding="utf-8") == template_text()
    result = run_cli("profile", "check")
    assert result.exit_code == 0, describe(result)
    assert result.stdout.strip() == (f"profile OK: 9 criteria, 2 must-haves, 1 deal-breaker "
                                     f"in {profile_file}")


def test_template_parses_and_teaches() -> None:
    text = template_text()
    prof = parse_profile(text, "template")
    assert prof == template_profile()
    assert set(prof.criteria) == set(BUILTIN) == set(DEFAULT_WEIGHTS)
    assert all(c.weight == DEFAULT_WEIGHTS[k] for k, c in prof.criteria.items())
    assert "at least my current pay" in prof.must_haves
    assert "no unpaid trial work" in prof.deal_breakers
    assert prof.current == Situation(status="employed")
    assert "[current]" in text and "# [criteria.four_day_week]" in text
    # the commented examples are valid once uncommented
    live = (text.replace("# [criteria.four_day_week]", "[criteria.four_day_week]")
            .replace("# weight = 7", "weight = 7").replace("# description =", "description =")
            .replace("# job =", "job =").replace("# pay =", "pay ="))
    prof = parse_profile(live, "template")
    assert prof.criteria["four_day_week"] == Criterion(weight=7, description="Whether I can work "
                                                       "four days a week")
    assert prof.current.job and prof.current.pay == "$68k"


def test_init_refuses_to_overwrite_without_force(profile_file: Path) -> None:
    write(profile_file, "[criteria]\npay = 3\n")
    for args in (["--template"], []):  # the questions are not even asked
        result = run_cli("profile", "init", *args)
        assert_one_line_error(result, "already exists", "--force", "debrief profile edit")
    assert profile_file.read_text(encoding="utf-8") == "[criteria]\npay = 3\n"
    result = run_cli("profile", "init", "--template", "--force")
    assert result.exit_code == 0, describe(result)
    assert profile_file.read_text(encoding="utf-8") == template_text()
    assert not [p for p in profile_file.parent.iterdir() if p.name.endswith(".tmp")]


# -- init: the questions -----------------------------------------------------------------------
TRICKY_DESCRIPTION = 'Say "yes" to C:\\temp\\new\tand é ñ 🚀 # not = [a comment]'


def answers(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def test_interactive_init_round_trips(profile_file: Path) -> None:
    weights = ["10", "", "", "0", "", "", "", "", "2"]  # pay 10, stability out, benefits 2
    result = run_cli("profile", "init", input=answers(
        *weights,
        "Four-day week!", TRICKY_DESCRIPTION, "9",
        "visa_sponsorship", "Whether they sponsor a visa \\o/", "",
        "",
        'at least £42,000 "gross"; 4-day week \\ maybe;  remote   days ',
        "unpaid trial, no 1:1s",
        "y", 'Lead "ops" at Ünïcødé & Co # [current]', "£42,000 + 10% bonus",
    ))
    assert result.exit_code == 0, describe(result)
    expected = Profile(
        criteria={
            "pay": Criterion(weight=10), "growth": Criterion(weight=6),
            "manager_team": Criterion(weight=7), "hours_flexibility": Criterion(weight=5),
            "commute_remote": Criterion(weight=4), "mission": Criterion(weight=4),
            "title_level": Criterion(weight=3), "benefits": Criterion(weight=2),
            "four_day_week": Criterion(weight=9, description=TRICKY_DESCRIPTION),
            "visa_sponsorship": Criterion(weight=5,
                                          description="Whether they sponsor a visa \\o/"),
        },
        must_haves=['at least £42,000 "gross"', "4-day week \\ maybe", "remote days"],
        deal_breakers=["unpaid trial", "no 1:1s"],
        current=Situation(status="employed", job='Lead "ops" at Ünïcødé & Co # [current]',
                          pay="£42,000 + 10% bonus"),
    )
    text = profile_file.read_text(encoding="utf-8")
    assert parse_profile(text, "written") == expected
    assert "pay = 10" in text and "[criteria.four_day_week]" in text  # readable, commented
    assert text.startswith("#")
    shown = json.loads(run_cli("profile", "show", "--json").stdout)
    assert shown["criteria"]["four_day_week"]["description"] == TRICKY_DESCRIPTION


def test_interactive_init_not_working_and_re_asks_bad_answers(profile_file: Path) -> None:
    result = run_cli("profile", "init", input=answers(
        "11", "8",                      # out of range: asked again
        *[""] * 8,
        "9lives", "pay", "remote ok",   # no letter first; taken; fine
        "   ", "Fully remote, any time zone", "", "",
        "ab; fine item",                # too short: asked again
        "no equity, no equity",         # twice: asked again
        "",
        "no equity",
        "n", "lots", "7",
    ))
    assert result.exit_code == 0, describe(result)
    assert "Error: 11 is not in the range" in result.output
    assert "starts with a letter" in result.output
    assert "pay is already one of your criteria" in result.output
    assert "please write a few words" in result.output
    assert "'ab': each one needs 3 to 200 characters" in result.output
    assert "listed twice" in result.output
    assert "a whole number of months" in result.output
    prof = parse_profile(profile_file.read_text(encoding="utf-8"), "written")
    assert prof.criteria["pay"].weight == 8
    assert prof.criteria["remote_ok"] == Criterion(weight=5,
                                                   description="Fully remote, any time zone")
    assert prof.must_haves == [] and prof.deal_breakers == ["no equity"]
    assert prof.current == Situation(status="not_working", savings_months=7)


def test_interactive_init_without_any_criterion(profile_file: Path) -> None:
    result = run_cli("profile", "init", input=answers(*["0"] * 9, ""))
    assert result.exit_code == 2
    assert "Error: a profile needs at least one criterion" in result.stderr
    assert not profile_file.exists()


def test_interactive_init_end_of_input_writes_nothing(profile_file: Path) -> None:
    result = run_cli("profile", "init", input="5\n")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert not profile_file.exists()


# -- show ------------------------------------------------------------------------------------
SAMPLE = """\
must_haves = ["at least my current pay", "a manager who does 1:1s"]
deal_breakers = ["no unpaid trial work"]
[criteria]
pay = 6
growth = 9
[criteria.four_day_week]
weight = 7
description = "Whether I can work [bold]four[/] days"
[current]
status = "not_working"
savings_months = 4
"""


def test_show_json(profile_file: Path) -> None:
    write(profile_file, SAMPLE)
    result = run_cli("profile", "show", "--json")
    assert result.exit_code == 0, describe(result)
    data = json.loads(result.stdout)
    assert set(data) == {"criteria", "must_haves", "deal_breakers", "current", "path"}
    assert data["path"] == str(profile_file)
    assert data["criteria"]["growth"] == {"weight": 9, "description": None}
    assert data["criteria"]["four_day_week"]["weight"] == 7
    assert data["must_haves"][1] == "a manager who does 1:1s"
    assert data["current"] == {"status": "not_working", "job": None, "pay": None,
                               "savings_months": 4}


def test_show_plain_is_sorted_by_weight(profile_file: Path) -> None:
    write(profile_file, SAMPLE)
    for args in (["profile", "show"], ["profile"]):  # the bare group shows
        result = run_cli(*args)
        assert result.exit_code == 0, describe(result)
        lines = result.stdout.splitlines()
        assert lines[0] == f"Profile {profile_file}"
        assert lines[2].split()[:4] == ["9", "Growth", "and", "learning"]
        assert "Four day week (four_day_week): Whether I can work [bold]four[/] days" in lines[3]
        assert lines[4].split()[:2] == ["6", "Pay"]
        assert "  - no unpaid trial work" in lines
        assert lines[-1] == "Now: not working, savings for 4 months"


def test_show_rich_table(profile_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.commands.profile_cmd import _show_rich

    _show_rich(parse_profile(SAMPLE, "x"), profile_file)
    out = capsys.readouterr().out
    assert "Growth and learning" in out and "[bold]four[/]" in out  # user text is not markup
    assert "Deal-breakers:" in out and "Now: not working" in out


@pytest.mark.parametrize("args", [["profile", "show"], ["profile"], ["profile", "check"],
                                  ["profile", "show", "--json"]])
def test_no_profile_is_one_line(args: list[str], profile_file: Path) -> None:
    result = run_cli(*args)
    assert_one_line_error(result, f"no profile at {profile_file}", "debrief profile init")


def test_show_invalid_profile_is_one_line(profile_file: Path) -> None:
    write(profile_file, "[criteria]\npay = 11\n")
    assert_one_line_error(run_cli("profile", "show"), "criteria.pay.weight",
                          "debrief profile check")


# -- check -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "needle"), [
    ("[criteria]\npay = 11\n", "criteria.pay.weight: 11 is out of range; write a whole number "
                              "from 1 (a little) to 10 (it decides)"),
    ("[criteria]\npay = 0\n", "criteria.pay.weight: 0 is out of range"),
    ("[criteria.pay]\nweight = 3.5\n", "criteria.pay.weight"),
    ('colour = "blue"\n[criteria]\npay = 5\n', "colour: not a profile setting"),
    ("[criteria]\npay = 5\n[criteria.four_day_week]\nweight = 7\n",
     "criteria.four_day_week: your own criterion has no description"),
    ("[criteria\npay = 5\n", "not valid TOML"),
    ("[criteria]\nFourDay = 5\n", "criteria.FourDay: 'FourDay' is not a valid criterion name; "
                              "use lower_snake_case (a-z, 0-9, _), e.g. four_day"),
    ('must_haves = ["ok"]\n[criteria]\npay = 5\n', 'must_haves[1]: "ok" is too short'),
    ('[criteria]\npay = 5\n[current]\nstatus = "retired"\n', "current.status"),
    ("[criteria]\n", "criteria: no criteria; add at least one"),
    ("must_haves = []\n", "criteria: missing"),
])
def test_check_names_the_field(profile_file: Path, text: str, needle: str) -> None:
    write(profile_file, text)
    result = run_cli("profile", "check")
    assert result.exit_code == 2, describe(result)
    assert needle in result.stdout, describe(result)
    assert result.stderr.strip().splitlines() == [
        f"Error: 1 problem in profile {profile_file}; 'debrief profile edit' opens the file."]
    assert "Traceback" not in result.output


def test_check_lists_every_problem(profile_file: Path) -> None:
    write(profile_file, 'colour = 1\ndeal_breakers = ["x"]\n[criteria]\npay = 11\ngrowth = 0\n')
    result = run_cli("profile", "check")
    assert result.exit_code == 2
    fields = sorted(line.split(":")[0] for line in result.stdout.splitlines())
    assert fields == ["colour", "criteria.growth.weight", "criteria.pay.weight",
                      "deal_breakers[1]"]
    assert "4 problems in profile" in result.stderr


def test_check_unreadable_inputs_are_one_line(profile_file: Path, tmp_path: Path) -> None:
    profile_file.parent.mkdir(parents=True)
    profile_file.write_bytes(b"[criteria]\npay = 5\n# caf\xe9\n")
    assert_one_line_error(run_cli("profile", "check"), "not UTF-8")
    profile_file.write_bytes(b"#" * 70_000)
    assert_one_line_error(run_cli("profile", "check"), "a profile is a few lines")
    for cmd in ("check", "show", "edit", "init"):
        assert_one_line_error(run_cli("profile", cmd, "--path", tmp_path), "is a folder")


# -- --path, DEBRIEF_PROFILE, unwritable places ----------------------------------------------------
def test_path_option_and_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 profile_file: Path) -> None:
    other = tmp_path / "search" / "mine.toml"
    result = run_cli("profile", "init", "--template", "--path", other)
    assert result.exit_code == 0, describe(result)
    assert other.is_file() and not profile_file.exists()
    assert run_cli("profile", "check", "--path", other).exit_code == 0

    env_file = tmp_path / "env" / "p.toml"
    monkeypatch.setenv("DEBRIEF_PROFILE", str(env_file))
    assert run_cli("profile", "init", "--template").exit_code == 0
    assert env_file.is_file() and not profile_file.exists()
    assert json.loads(run_cli("profile", "show", "--json").stdout)["path"] == str(env_file)
    assert str(env_file) in run_cli("profile", "check").stdout
    # a flag beats the variable
    assert json.loads(run_cli("profile", "show", "--json", "--path", other).stdout)["path"] \
        == str(other)


def test_unwritable_places_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = write(tmp_path / "a-file", "x")
    result = run_cli("profile", "init", "--template", "--path", blocker / "profile.toml")
    assert_one_line_error(result, "cannot write", "is not a folder")
    result = run_cli("profile", "init", "--path", blocker / "deeper" / "profile.toml")
    assert_one_line_error(result, "is not a folder")  # before any question

    result = run_cli("profile", "init", "--template", "--path", "/dev/null", "--force")
    assert_one_line_error(result, "not a regular file")

    import pipeline.commands.profile_cmd as cmd

    monkeypatch.setattr(cmd.os, "access", lambda *a, **k: False)  # tests may run as root
    result = run_cli("profile", "init", "--template", "--path", tmp_path / "ro" / "p.toml")
    assert_one_line_error(result, "cannot write", "is not writable")
    # --path itself checks nothing (click would print a usage block); the command does
    result = run_cli("profile", "check", "--path", write(tmp_path / "p.toml", ""))
    assert result.exit_code == 2 and "Usage:" not in result.stderr, describe(result)
    assert result.stdout.startswith("criteria: missing")


# -- edit ------------------------------------------------------------------------------------
def use_editor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, code: str) -> None:
    script = tmp_path / "editor.py"
    script.write_text("import pathlib, sys\np = pathlib.Path(sys.argv[1])\n" + code,
                      encoding="utf-8")
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}")


def test_edit_creates_from_template_then_checks(profile_file: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    use_editor(monkeypatch, tmp_path, 'p.write_text(p.read_text() + "\\n[criteria.visa]\\n'
                                      'weight = 9\\ndescription = \\"They sponsor a visa\\"\\n")')
    result = run_cli("profile", "edit")
    assert result.exit_code == 0, describe(result)
    assert f"Created {profile_file} from the template." in result.stderr
    assert result.stdout.strip() == (f"profile OK: 10 criteria, 2 must-haves, 1 deal-breaker "
                                     f"in {profile_file}")
    prof = parse_profile(profile_file.read_text(encoding="utf-8"), "edited")
    assert prof.criteria["visa"] == Criterion(weight=9, description="They sponsor a visa")


def test_edit_reports_problems(profile_file: Path, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    write(profile_file, template_text())
    use_editor(monkeypatch, tmp_path,
               'p.write_text(p.read_text().replace("pay = 8", "pay = 11"))')
    result = run_cli("profile", "edit")
    assert result.exit_code == 2, describe(result)
    assert result.stdout.strip() == ("criteria.pay.weight: 11 is out of range; write a whole "
                                     "number from 1 (a little) to 10 (it decides), without "
                                     "quotes")
    assert result.stderr.strip().splitlines() == [
        f"Error: 1 problem in profile {profile_file}; run 'debrief profile edit' again to fix "
        "them."]


def test_edit_with_a_failing_editor(profile_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(profile_file, template_text())
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f'{shlex.quote(sys.executable)} -c "raise SystemExit(3)"')
    assert_one_line_error(run_cli("profile", "edit"), "editing failed", "set EDITOR",
                          exit_code=1)


# -- help, the writer ----------------------------------------------------------------------------
def test_help_teaches() -> None:
    out = run_cli("profile", "--help").stdout
    assert "Examples:" in out and "debrief profile init --template" in out
    for key in BUILTIN:
        assert key in out
    for sub in ("init", "show", "edit", "check"):
        sub_help = run_cli("profile", sub, "--help").stdout
        assert "Examples:" in sub_help and "--path FILE" in sub_help


@given(st.text())
def test_toml_string_round_trips(value: str) -> None:
    assert tomllib.loads(f"x = {toml_string(value)}")["x"] == value


def test_toml_string_odd_characters() -> None:
    for value in ['"', "\\", "\x7f", "\x00", "a\r\nb", "'''", '"""', "\u2028é🚀", "\\u0041"]:
        assert tomllib.loads(f"x = {toml_string(value)}")["x"] == value


_items = st.text(min_size=3, max_size=40).map(lambda s: " ".join(s.split())).filter(
    lambda s: len(s) >= 3)


@st.composite
def profiles(draw: st.DrawFn) -> Profile:
    names = st.one_of(st.sampled_from(sorted(BUILTIN)),
                      st.from_regex(r"[a-z][a-z0-9_]{0,39}", fullmatch=True))
    criteria = {}
    for key in draw(st.lists(names, min_size=1, max_size=20, unique=True)):
        described = st.text(max_size=80).filter(str.strip)
        desc = draw(st.none() | described) if key in BUILTIN else draw(described)
        criteria[key] = {"weight": draw(st.integers(1, 10)), "description": desc}
    return Profile.model_validate({
        "criteria": criteria,
        "must_haves": draw(st.lists(_items, max_size=12, unique_by=str.lower)),
        "deal_breakers": draw(st.lists(_items, max_size=12, unique_by=str.lower)),
        "current": {"status": draw(st.sampled_from(["employed", "not_working"])),
                    "job": draw(st.none() | st.text(max_size=200)),
                    "pay": draw(st.none() | st.text(max_size=100)),
                    "savings_months": draw(st.none() | st.integers(0, 600))},
    })


@given(profiles())
def test_to_toml_round_trips(prof: Profile) -> None:
    assert parse_profile(to_toml(prof), "rendered") == prof
