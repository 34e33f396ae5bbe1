"""The command surface: help, `python -m`, lazy imports, and where settings come from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    NOTES_CLEAR,
    BuiltIndex,
    assert_one_line_error,
    describe,
    run_cli,
    write_advice_doc,
)

from pipeline import __version__
from pipeline.schema import Reflection

NOTES = NOTES_CLEAR / "keep-01.md"
NO_KEY = "needs OPENAI_API_KEY"


# -- help and entry points --------------------------------------------------------------------
def test_root_help() -> None:
    result = run_cli("--help")
    assert result.exit_code == 0, describe(result)
    out = result.stdout
    assert "Quick start:" in out
    assert "debrief reflect notes/2026-11-20-acme.md" in out
    assert "reflect" in out and "index" in out
    assert "DEBRIEF_HOME" in out


@pytest.mark.parametrize(("command", "example"), [
    ("reflect", "debrief reflect notes.md --json"),
    ("index", "debrief index --rebuild"),
])
def test_command_help_has_examples(command: str, example: str) -> None:
    result = run_cli(command, "--help")
    assert result.exit_code == 0, describe(result)
    assert "Examples:" in result.stdout
    assert example in result.stdout


def test_reflect_help_documents_exit_codes_and_env() -> None:
    out = run_cli("reflect", "-h").stdout
    assert "Exit codes" in out
    for option in ("--provider", "--structured-output", "--out", "--show-sources", "--max-retries"):
        assert option in out


def test_version() -> None:
    result = run_cli("--version")
    assert result.exit_code == 0 and __version__ in result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = run_cli("frobnicate")
    assert result.exit_code == 2
    assert "No such command" in result.stderr and "Traceback" not in result.output


def test_python_dash_m(cli_env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pipeline", "--help"], capture_output=True,
                          text=True, env=cli_env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: debrief" in proc.stdout and "Quick start:" in proc.stdout


def test_python_dash_m_error_is_one_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pipeline", "reflect", str(tmp_path / "no.md")],
                          capture_output=True, text=True, env=cli_env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [f"Error: {tmp_path / 'no.md'}: no such file."]


def test_importing_the_cli_is_light(cli_env: dict[str, str], tmp_path: Path) -> None:
    code = ("import sys, pipeline.cli; print([m for m in ('chromadb', 'langchain_openai', "
            "'onnxruntime', 'openai') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=cli_env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# -- settings: flags > DEBRIEF_* > config file > defaults ----------------------------------
def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_file_is_read(debrief_env: Path) -> None:
    write_config(debrief_env, 'provider = "openai"\n')
    assert_one_line_error(run_cli("reflect", NOTES), NO_KEY)


def test_flag_beats_config_file(indexed_home: Path) -> None:
    write_config(indexed_home, 'provider = "openai"\n')
    result = run_cli("reflect", NOTES, "--json", "--provider", "offline")
    assert result.exit_code == 0, describe(result)
    assert Reflection.model_validate_json(result.stdout).engine == "offline"


def test_env_var_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBRIEF_PROVIDER", "openai")
    assert_one_line_error(run_cli("reflect", NOTES), NO_KEY)


def test_flag_beats_env_var(indexed_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBRIEF_PROVIDER", "openai")
    result = run_cli("reflect", NOTES, "--json", "--provider", "offline")
    assert result.exit_code == 0, describe(result)
    assert Reflection.model_validate_json(result.stdout).engine == "offline"


def test_env_var_beats_config_file(debrief_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(debrief_env, 'provider = "offline"\n')
    monkeypatch.setenv("DEBRIEF_PROVIDER", "openai")
    assert_one_line_error(run_cli("reflect", NOTES), NO_KEY)


def test_config_values_reach_the_command(indexed_home: Path) -> None:
    write_config(indexed_home, "top_k = 2\n")
    result = run_cli("reflect", NOTES, "--json")
    assert result.exit_code == 0, describe(result)
    assert 1 <= len(Reflection.model_validate_json(result.stdout).sources) <= 2


def test_debrief_config_points_at_another_file(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    other = write_config(tmp_path / "elsewhere", 'provider = "openai"\n')
    monkeypatch.setenv("DEBRIEF_CONFIG", str(other))
    assert_one_line_error(run_cli("reflect", NOTES), NO_KEY)


def test_unknown_config_key(debrief_env: Path) -> None:
    path = write_config(debrief_env, 'provider = "offline"\nprovder = "openai"\n')
    line = assert_one_line_error(run_cli("reflect", NOTES), "unknown key 'provder' (did you mean 'provider'?)")
    assert str(path) in line
    # every command reads the file, so `index` says the same
    assert_one_line_error(run_cli("index"), "provder")


def test_invalid_toml_config(debrief_env: Path) -> None:
    path = write_config(debrief_env, 'provider = "openai\n')
    line = assert_one_line_error(run_cli("reflect", NOTES), "not valid TOML")
    assert str(path) in line


def test_debrief_corpus_env_var_adds_a_folder(indexed_home: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              built_index: BuiltIndex) -> None:
    user = tmp_path / "mine"
    write_advice_doc(user)
    monkeypatch.setenv("DEBRIEF_CORPUS", str(user))
    result = run_cli("index", "--json")
    assert result.exit_code == 0, describe(result)
    assert json.loads(result.stdout)["docs"] == built_index.docs + 1


def test_config_corpus_key_adds_a_folder(indexed_home: Path, tmp_path: Path,
                                         built_index: BuiltIndex) -> None:
    user = tmp_path / "mine"
    write_advice_doc(user)
    write_config(indexed_home, f"corpus = [{json.dumps(str(user))}]\n")
    result = run_cli("index", "--json")
    assert result.exit_code == 0, describe(result)
    assert json.loads(result.stdout)["docs"] == built_index.docs + 1



# -- unexpected failures ------------------------------------------------------------------------
def test_unexpected_error_is_one_line_exit_1(indexed_home: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.reflect

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(pipeline.reflect, "reflect_on", boom)
    line = assert_one_line_error(run_cli("reflect", NOTES), "unexpected error",
                                 "RuntimeError: boom", "--debug", exit_code=1)
    assert "second line" in line  # the message is folded onto the one line


def test_debug_shows_the_real_exception(indexed_home: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.reflect

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline.reflect, "reflect_on", boom)
    with pytest.raises(RuntimeError, match="boom"):
        run_cli("--debug", "reflect", NOTES)


def test_tests_cannot_reach_beyond_loopback() -> None:
    """The autouse guard in conftest keeps the suite hermetic."""
    import socket

    with pytest.raises(OSError, match="only 127.0.0.1"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
