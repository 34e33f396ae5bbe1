"""What a new user runs into first, tested as a user meets it: through the CLI in-process
(CliRunner) and as a real `python -m pipeline` subprocess with its own DEBRIEF_HOME.

1. a bad config file is blamed on the file, not on a flag; 2. a date starting a file name is
the note's date; 3. `reflect --corpus DIR` uses DIR; 4. `profile check` lists every problem;
5. front-matter errors in the user's terms; 6. --out follows its suffix, an empty folder is
an error, shell completion and quick tests are documented; 7. the README's synopsis and
option tables are the Click commands'.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from conftest import (
    NOTES_CLEAR,
    ROOT,
    assert_one_line_error,
    describe,
    run_cli,
    write_advice_doc,
)

from pipeline.notes import date_from_filename, note_date, parse_notes
from pipeline.profile import parse_profile
from pipeline.schema import Reflection

NOTES = NOTES_CLEAR / "keep-01.md"
BODY = parse_notes(NOTES.read_bytes(), "keep-01.md").body + "\n"


def run_proc(env: dict[str, str], *args: object, **extra_env: str) -> subprocess.CompletedProcess:
    """`python -m pipeline ARGS`, a real process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "pipeline", *(str(a) for a in args)],
                          capture_output=True, text=True, env={**env, **extra_env},
                          cwd=ROOT, timeout=180)


def one_line_proc(proc: subprocess.CompletedProcess, *needles: str, code: int = 2) -> str:
    """The CLI error contract for a subprocess: exit code, one 'Error:' line, no traceback."""
    shown = f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == code, shown
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), shown
    assert "Traceback" not in proc.stderr and "Usage:" not in proc.stderr, shown
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def no_flag_blamed(result: Result) -> None:
    assert "Usage:" not in result.stderr and "Invalid value for" not in result.stderr, \
        describe(result)


# -- 1. config errors are the config file's ------------------------------------------------
PROVIDER_TYPO = ("config.toml: provider = 'ofline' is not one of auto, offline, openai, local "
                 "(did you mean 'offline'?)")


def test_config_typo_is_blamed_on_the_file(debrief_env: Path, tmp_path: Path,
                                           cli_env: dict[str, str]) -> None:
    write_config(debrief_env, 'provider = "ofline"\n')
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text(BODY, encoding="utf-8")
    for args in (["reflect", NOTES], ["batch", tmp_path / "notes"],
                 ["compare", tmp_path / "notes"], ["index"]):
        result = run_cli(*args)
        assert_one_line_error(result, PROVIDER_TYPO)
        no_flag_blamed(result)
    assert not (tmp_path / "notes" / ".debrief").exists()
    one_line_proc(run_proc(cli_env, "reflect", NOTES), PROVIDER_TYPO)
    one_line_proc(run_proc(cli_env, "batch", tmp_path / "notes"), PROVIDER_TYPO)


@pytest.mark.parametrize(("text", "needle"), [
    ('base_url = "notaurl"\n',
     "base_url = 'notaurl' is not an http(s) URL like \"http://127.0.0.1:11434/v1\""),
    ('chroma_url = "http://"\n', "chroma_url = 'http://' is not an http(s) URL"),
    ('modle = "llama3.1"\n', "unknown key 'modle' (did you mean 'model'?)"),
    ('top_k = "5"\n', "top_k = '5' should be a whole number from 1 to 20, without quotes"),
    ("top_k = 50\n", "top_k = 50 should be a whole number from 1 to 20"),
    ("timeout = 0\n", "timeout = 0 should be a number from 0.1 to 3600"),
    ("concurrency = true\n", "concurrency = true should be a whole number from 1 to 64"),
    ('structured_output = "json"\n', "structured_output = 'json' is not one of auto, "
                                     "json_schema, function_calling, json_object, json_mode"),
    ("model = 3\n", 'model = 3 should be text in quotes'),
    ("corpus = 3\n", "corpus = 3 should be a folder or a list of folders"),
])
def test_config_values_are_checked_like_the_flags(debrief_env: Path, text: str,
                                                  needle: str) -> None:
    path = write_config(debrief_env, text)
    result = run_cli("reflect", NOTES)
    line = assert_one_line_error(result, needle)
    assert str(path) in line
    assert "--base-url" not in line and "OPENAI_BASE_URL" not in line
    no_flag_blamed(result)


def test_every_config_problem_in_one_line(debrief_env: Path) -> None:
    write_config(debrief_env, 'provider = "ofline"\nmodle = "x"\ntop_k = 0\n')
    line = assert_one_line_error(run_cli("reflect", NOTES), "provider = 'ofline'",
                                 "unknown key 'modle'", "top_k = 0")
    assert line.count(";") >= 2


def test_good_config_values_still_reach_the_commands(debrief_env: Path) -> None:
    write_config(debrief_env, 'provider = "openai"\ntimeout = 30\nmax_tokens = 512\n'
                              'corpus = "~/advice"\nchroma_url = "127.0.0.1:8000"\n')
    assert_one_line_error(run_cli("reflect", NOTES), "needs OPENAI_API_KEY")


def test_doctor_reports_a_bad_config_and_goes_on(debrief_env: Path,
                                                 cli_env: dict[str, str]) -> None:
    write_config(debrief_env, 'provider = "ofline"\n')
    result = run_cli("doctor", "--json")
    assert result.exit_code == 1, describe(result)
    no_flag_blamed(result)
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["config"]["status"] == "fail"
    assert PROVIDER_TYPO in checks["config"]["detail"]
    assert {"python", "packages", "home", "profile", "provider"} <= checks.keys()
    proc = run_proc(cli_env, "doctor")
    assert proc.returncode == 1, proc.stderr
    assert "Usage:" not in proc.stderr and "Traceback" not in proc.stderr
    assert re.search(r"^FAIL  config: .*config\.toml: provider = 'ofline'", proc.stdout, re.M)
    assert re.search(r"^ok    python: ", proc.stdout, re.M)


def test_missing_debrief_config_file_is_said(tmp_path: Path, cli_env: dict[str, str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere" / "config.toml"
    monkeypatch.setenv("DEBRIEF_CONFIG", str(missing))
    needle = f"DEBRIEF_CONFIG points at {missing}, which does not exist"
    assert_one_line_error(run_cli("reflect", NOTES), needle)
    checks = {c["name"]: c for c in json.loads(run_cli("doctor", "--json").stdout)["checks"]}
    assert checks["config"]["status"] == "fail" and needle in checks["config"]["detail"]
    one_line_proc(run_proc(cli_env, "reflect", NOTES, DEBRIEF_CONFIG=str(missing)), needle)


def test_help_works_whatever_the_config_says(debrief_env: Path, cli_env: dict[str, str]) -> None:
    write_config(debrief_env, 'provider = "ofline"\n')
    for args in (["reflect", "--help"], ["batch", "-h"], ["--help"]):
        result = run_cli(*args)
        assert result.exit_code == 0 and "Usage:" in result.stdout, describe(result)
    proc = run_proc(cli_env, "compare", "--help")
    assert proc.returncode == 0 and "Usage: debrief compare" in proc.stdout, proc.stderr


# -- 2. a date at the start of a file name is the note's date --------------------------------
def test_the_one_date_rule() -> None:
    assert date_from_filename("2026-12-05-orbit.txt") == "2026-12-05"
    assert date_from_filename("2026-12-05.md") == "2026-12-05"
    assert date_from_filename("2026-13-45-orbit.md") is None  # not a day
    assert date_from_filename("orbit-2026-12-05.md") is None  # not at the start
    assert date_from_filename("20261205-orbit.md") is None
    assert note_date("2026-11-20", "2026-12-05-orbit.txt") == ("2026-11-20", "notes")
    assert note_date("next Tuesday", "2026-12-05-orbit.txt") == ("2026-12-05", "name")
    assert note_date(None, "sub/2026-12-05_orbit.md", 0.0) == ("2026-12-05", "name")
    assert note_date(None, "orbit.md", 0.0)[1] == "file"
    assert note_date(None, "orbit.md") == (None, "")
    notes = parse_notes(BODY.encode(), "2026-12-05-orbit.txt")
    assert (notes.date, notes.company) == ("2026-12-05", "Orbit")


@pytest.fixture
def dated_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "interviews"
    folder.mkdir()
    note = folder / "2026-12-05-orbit.txt"
    note.write_text(BODY, encoding="utf-8")
    os.utime(note, (1_764_547_200, 1_764_547_200))  # modified 2025-12-01
    return folder


def test_file_name_date_in_batch_digest_compare_and_since(indexed_home: Path,
                                                          dated_folder: Path,
                                                          cli_env: dict[str, str]) -> None:
    late = run_cli("batch", dated_folder, "--since", "2026-12-06", "--json")
    assert late.exit_code == 0, describe(late)
    summary = json.loads(late.stdout)
    assert (summary["processed"], summary["results"][0]["status"]) == (0, "skipped")

    result = run_cli("batch", dated_folder, "--since", "2026-12-05", "--json")
    assert result.exit_code == 0, describe(result)
    assert json.loads(result.stdout)["processed"] == 1
    digest = (dated_folder / ".debrief" / "digest.md").read_text(encoding="utf-8")
    assert "| 2026-12-05 | [2026-12-05-orbit.txt]" in digest
    assert "(file date)" not in digest
    stored = json.loads((dated_folder / ".debrief" / "2026-12-05-orbit.json").read_text())
    assert stored["notes"]["date"] == "2026-12-05"

    ranked = run_cli("compare", dated_folder, "--json")
    assert ranked.exit_code == 0, describe(ranked)
    latest = json.loads(ranked.stdout)["processes"][0]["latest"]
    assert latest["date"] == "2026-12-05"
    shown = run_cli("compare", dated_folder)
    assert "undated" not in shown.stdout and "2026-12-05" in shown.stdout

    for since, shown in (("2026-12-05", "would process 2026-12-05-orbit.txt (forced)"),
                         ("2026-12-06", "dry run: 0 to do, 1 up to date or skipped")):
        proc = run_proc(cli_env, "batch", dated_folder, "--since", since, "--dry-run", "--force")
        assert proc.returncode == 0 and shown in proc.stdout, proc.stdout + proc.stderr


def test_stored_reflections_get_the_file_name_date(indexed_home: Path,
                                                   dated_folder: Path) -> None:
    """Reflections and digest rows recorded before the name's date counted show it too."""
    from pipeline.batch.run import _dated
    from pipeline.rank import rank_processes

    reflection = Reflection.model_validate_json(
        run_cli("reflect", dated_folder / "2026-12-05-orbit.txt", "--json").stdout)
    old = reflection.model_copy(update={"notes": reflection.notes.model_copy(
        update={"date": None, "path": "2026-12-05-orbit.txt"})})
    assert rank_processes([old]).processes[0].latest.date == "2026-12-05"
    row = {"path": "2026-12-05-orbit.txt", "date": "2025-12-01", "date_from": "file"}
    assert _dated(row)["date"] == "2026-12-05" and _dated(row)["date_from"] == "name"


# -- 3. reflect --corpus DIR uses DIR ---------------------------------------------------------
SNACK_NOTES = ("- The office kitchen was stocked with good snacks and fresh fruit.\n"
               "- They buy the whole team lunch every friday, which felt generous.\n"
               "- The manager was kind and answered every question I had clearly.\n")


def test_reflect_corpus_indexes_the_folder_on_the_fly(indexed_home: Path,
                                                      tmp_path: Path) -> None:
    user = tmp_path / "my-advice"
    write_advice_doc(user, "test-snack-advice")
    note = tmp_path / "snacks.md"
    note.write_text(SNACK_NOTES, encoding="utf-8")
    result = run_cli("reflect", note, "--json", "--corpus", user)
    assert result.exit_code == 0, describe(result)
    assert "test-snack-advice" in {s.doc_id for s in
                                   Reflection.model_validate_json(result.stdout).sources}
    assert f"indexed the advice in {user}" in result.stderr
    again = run_cli("reflect", note, "--json", "--corpus", user)  # nothing new to embed
    assert again.exit_code == 0 and "indexed the advice" not in again.stderr, describe(again)


def test_invalid_advice_document_fails_reflect_like_index(indexed_home: Path, tmp_path: Path,
                                                          cli_env: dict[str, str]) -> None:
    user = tmp_path / "bad-advice"
    user.mkdir()
    (user / "broken.md").write_text("---\ntitle: No id here\n---\n# Body\n", encoding="utf-8")
    from_index = assert_one_line_error(run_cli("index", "--corpus", user), "broken.md")
    from_reflect = assert_one_line_error(run_cli("reflect", NOTES, "--corpus", user))
    assert from_reflect == from_index
    assert one_line_proc(run_proc(cli_env, "reflect", NOTES, "--corpus", user)) == from_index


# -- 4. profile check lists every problem ------------------------------------------------------
BAD_PROFILE = """\
colour = "blue"
must_haves = ["ok"]

[criteria]
pay = 11
grwth = 5
hours_flexibility = 0

[criteria.four_day_week]
weight = 7

[current]
status = "retired"
pay = 95000
"""
EVERY_FIELD = ["colour", "must_haves[1]", "criteria.pay.weight", "criteria.grwth",
               "criteria.hours_flexibility.weight", "criteria.four_day_week", "current.status"]


def test_profile_check_lists_every_problem_at_once(tmp_path: Path,
                                                   cli_env: dict[str, str]) -> None:
    path = tmp_path / "profile.toml"
    path.write_text(BAD_PROFILE, encoding="utf-8")
    result = run_cli("profile", "check", "--path", path)
    assert result.exit_code == 2, describe(result)
    lines = result.stdout.splitlines()
    assert [line.split(": ")[0] for line in lines] == EVERY_FIELD
    by_field = dict(line.split(": ", 1) for line in lines)
    assert by_field["criteria.grwth"].startswith(
        "not a built-in criterion (did you mean 'growth'?); write growth = 5")
    assert by_field["criteria.four_day_week"].startswith("your own criterion has no "
                                                         "description; write")
    assert "did you mean 'employed'" not in by_field["current.status"]
    for line in lines:  # field: what is wrong; what to write instead
        assert "; " in line and "Input should" not in line and "Dictionary" not in line
    assert result.stderr.strip() == (f"Error: 7 problems in profile {path}; 'debrief profile "
                                     "edit' opens the file.")

    proc = run_proc(cli_env, "profile", "check", "--path", path, "--json")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    found = json.loads(proc.stdout)
    assert [p["field"] for p in found] == EVERY_FIELD
    assert all(set(p) == {"field", "problem", "fix"} and p["problem"] and p["fix"]
               for p in found)


def test_profile_json_is_empty_when_valid_and_pay_may_be_a_number(tmp_path: Path) -> None:
    path = tmp_path / "profile.toml"
    path.write_text('[criteria]\npay = 8\n[current]\npay = 95000\n', encoding="utf-8")
    result = run_cli("profile", "check", "--path", path, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == [], describe(result)
    assert parse_profile(path.read_text(encoding="utf-8"), "p").current.pay == "95000"
    assert "pay 95000" in run_cli("profile", "show", "--path", path).stdout


def test_reflect_refuses_a_bad_profile_with_its_first_problem(tmp_path: Path) -> None:
    path = tmp_path / "profile.toml"
    path.write_text(BAD_PROFILE, encoding="utf-8")
    assert_one_line_error(run_cli("reflect", NOTES, "--profile", path),
                          "colour: not a profile setting", "(and 6 more problem(s))",
                          "debrief profile check")


# -- 5. front matter errors in the user's terms ---------------------------------------------------
@pytest.mark.parametrize(("text", "needle"), [
    ("---\ncompany: Acme\nround: 2\n- nice team, sharp manager\n",
     "the front matter that starts with '---' on line 1 is never closed; add a line with "
     "just '---'"),
    ("<!-- template -->\n---\ncompany: Acme\n- nice team, sharp manager\n",
     "starts with '---' on line 2 is never closed"),
    ("---\ncompany: Acme\nround: [1, 2]\n---\n- nice team, sharp manager\n",
     "front matter 'round' (line 3) should be a single value, not a list; write e.g. round: 2"),
    ("---\ncompany: Acme\ninterviewers: {lead: Dana}\n---\n- nice team, sharp manager\n",
     "front matter 'interviewers' (line 3) should be a list of names"),
    ("---\n- company\n- Acme\n---\n- nice team, sharp manager\n",
     "front matter must be key: value lines"),
])
def test_front_matter_errors_name_the_field_and_line(tmp_path: Path, cli_env: dict[str, str],
                                                     text: str, needle: str) -> None:
    note = tmp_path / "2026-11-20-acme.md"
    note.write_text(text, encoding="utf-8")
    line = assert_one_line_error(run_cli("reflect", note), f"{note}: ", needle)
    for internal in ("unpack", "expected 3", "got list", "got dict", "ValueError"):
        assert internal not in line
    one_line_proc(run_proc(cli_env, "reflect", note), needle)


# -- 6. small things ------------------------------------------------------------------------------
def test_compare_out_follows_its_suffix(indexed_home: Path, dated_folder: Path,
                                        tmp_path: Path) -> None:
    as_json, as_md = tmp_path / "rank.json", tmp_path / "rank.md"
    for _ in range(2):  # the second run replaces what the first wrote
        result = run_cli("compare", dated_folder, "--out", as_json)
        assert result.exit_code == 0, describe(result)
    data = json.loads(as_json.read_text(encoding="utf-8"))
    assert data["processes"][0]["company"] == "Orbit" and data["failed"] == []
    assert run_cli("compare", dated_folder, "--out", as_md).exit_code == 0
    assert as_md.read_text(encoding="utf-8").startswith("# ")
    mine = tmp_path / "mine.json"
    mine.write_text('{"processes": "mine"}', encoding="utf-8")
    assert_one_line_error(run_cli("compare", dated_folder, "--out", mine), "mine.json")


def test_batch_on_a_folder_without_notes(tmp_path: Path, cli_env: dict[str, str]) -> None:
    empty = tmp_path / "empty"
    (empty / ".hidden").mkdir(parents=True)
    (empty / ".hidden" / "note.md").write_text("not looked at", encoding="utf-8")
    (empty / "cv.pdf").write_bytes(b"%PDF")
    needle = f"no notes found in {empty} (*.md or *.txt"
    assert_one_line_error(run_cli("batch", empty), needle)
    assert_one_line_error(run_cli("batch", empty, "--dry-run"), needle)
    one_line_proc(run_proc(cli_env, "batch", empty), needle)
    assert not (empty / ".debrief").exists()


README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_shell_completion_is_documented_and_works(cli_env: dict[str, str]) -> None:
    section = README.split("### Shell completion", 1)[1].split("\n## ", 1)[0]
    for shell in ("bash", "zsh", "fish"):
        assert f"_DEBRIEF_COMPLETE={shell}_source debrief" in section
    proc = run_proc(cli_env, _DEBRIEF_COMPLETE="bash_source")
    assert proc.returncode == 0 and "_debrief_completion" in proc.stdout, proc.stderr
    proc = run_proc(cli_env, _DEBRIEF_COMPLETE="bash_complete", COMP_WORDS="debrief re",
                    COMP_CWORD="1")
    assert proc.stdout.split() == ["plain,reflect"], proc.stderr


def test_quick_tests_are_documented_and_ci_runs_everything() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    quick = makefile.split("\ntest-quick:", 1)[1].split("\n\n", 1)[0]
    assert '-m "not slow"' in quick
    full = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "pytest -q" in full and "slow" not in full
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    dev = README.split("## Development", 1)[1]
    assert "make test-quick" in dev and "5 to 12 minutes" in dev and "slow" in dev
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"slow: ' in pyproject


# -- 7. the README's synopsis and option tables are the commands' ------------------------------
def _generator():  # noqa: ANN202 - a module loaded from docs/
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "docs" / "gen_cli_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_cli_docs_match_the_commands() -> None:
    gen = _generator()
    _, changed = gen.rewrite(README)
    absent = gen.missing(README)
    problems = [f"the README's 'cli:{name}' region differs from `debrief {name} --help`"
                for name in changed if name != "synopsis"]
    problems += ["the README's command synopsis ('cli:synopsis') differs from the commands"
                 ] if "synopsis" in changed else []
    problems += [f"the README has no 'cli:{name}' region for `debrief {name}`" for name in absent]
    assert not problems, "; ".join(problems) + f"; run {gen.REGENERATE} to regenerate it."


def test_the_docs_check_names_a_drifted_command(cli_env: dict[str, str]) -> None:
    gen = _generator()
    drifted = README.replace("| `--show-sources` |", "| `--show-source` |", 1)
    assert drifted != README
    assert gen.rewrite(drifted)[1] == ["reflect"]
    proc = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_cli_docs.py"), "--check"],
                          capture_output=True, text=True, env=cli_env, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr
