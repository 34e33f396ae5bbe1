"""A model server that misbehaves: it trickles, answers with nothing to read, or echoes the
key back. Each ends in one line and exit 2, in bounded time, and no secret is printed or
stored."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import assert_one_line_error, describe, run_cli
from fake_openai import FakeOpenAI

from pipeline.errors import DebriefError, redact

SECRET = "sk-test-" + "9" * 24
NOTE = """---
company: Fjordline
role: Data Analyst
---
- The manager explained the first three months clearly and wants weekly one-to-ones.
- Pay is a little under what I make now and they would not say how it is reviewed.
- The team seemed close and two of them have been there six years.
"""


@pytest.fixture
def note(tmp_path: Path) -> Path:
    path = tmp_path / "notes.md"
    path.write_text(NOTE, encoding="utf-8")
    return path


def test_a_trickling_server_cannot_outlast_the_timeout(indexed_home: Path, note: Path) -> None:
    with FakeOpenAI(plans=["trickle"], drip=0.5) as fake:
        started = time.monotonic()
        result = run_cli("reflect", note, "--provider", "openai", "--base-url", fake.url,
                         "--timeout", "2", "--max-retries", "1")
        took = time.monotonic() - started
    assert_one_line_error(result, "timed out")
    # two tries of two seconds each, plus the openai client's backoff between them; a per-read
    # timeout alone let the same server hold a request for minutes
    assert took < 15, f"took {took:.1f} s"


def test_an_answer_with_no_choices_is_one_line(indexed_home: Path, note: Path) -> None:
    with FakeOpenAI(plans=["no-choices"]) as fake:
        result = run_cli("reflect", note, "--provider", "openai", "--base-url", fake.url,
                         "--max-retries", "0")
    assert_one_line_error(result, "not a chat completion")


def test_an_echoed_key_is_never_printed_or_stored(indexed_home: Path, tmp_path: Path,
                                                  note: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with FakeOpenAI(plans=["echo-auth"]) as fake:
        one = run_cli("reflect", note, "--provider", "openai", "--base-url", fake.url,
                      "--max-retries", "0")
        folder = tmp_path / "n"
        folder.mkdir()
        (folder / "a.md").write_text(NOTE, encoding="utf-8")
        night = run_cli("batch", folder, "--provider", "openai", "--base-url", fake.url,
                        "--max-retries", "0", "--json")
    assert_one_line_error(one, "rejected the API key")
    assert SECRET not in one.output
    assert night.exit_code == 1, describe(night)
    assert SECRET not in night.output
    for path in (folder / ".debrief").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_credentials_in_urls_are_never_printed(indexed_home: Path, note: Path,
                                               unused_port: int) -> None:
    url = f"http://reader:hunter2hunter2@127.0.0.1:{unused_port}/v1?api-key=abcdef123456"
    result = run_cli("reflect", note, "--provider", "openai", "--base-url", url,
                     "--max-retries", "0", "--timeout", "2")
    line = assert_one_line_error(result)
    assert "hunter2" not in line and "abcdef123456" not in line


@pytest.mark.parametrize(("text", "leak"), [
    ("HTTP 401: bad header Authorization: Bearer sk-abcdefghijklmnop", "sk-abcdefghijklmnop"),
    ('{"authorization": "Basic dXNlcjpwYXNzd29yZA=="}', "dXNlcjpwYXNzd29yZA"),
    ("cannot reach http://bob:s3cretpass@host:8000/v1", "s3cretpass"),
    ("https://x.example/v1?token=abcdef123456&x=1", "abcdef123456"),
])
def test_redact(text: str, leak: str) -> None:
    assert leak not in redact(text)
    assert leak not in DebriefError(text).message


def test_redact_knows_the_configured_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "plain-looking-secret-value")
    assert "plain-looking" not in redact('server said: key "plain-looking-secret-value" invalid')
    assert json.dumps(redact("nothing secret here")) == '"nothing secret here"'
