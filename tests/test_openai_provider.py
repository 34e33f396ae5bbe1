"""The openai provider end to end, against the fake server (tests/fake_openai.py) on 127.0.0.1.

The fake reads each request the way a model would: it checks the prompt contract (a system
message first, the listed note sentences between the <<<NOTES markers, the listed passage
ids, a schema that allows exactly those), then builds its answer from the request itself,
citing only listed sentences and passage ids. The call is derived from the points' weights
in code (pipeline/assemble.py); the reflection's quotes are the notes' own sentences.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import NOTES_CLEAR, assert_one_line_error, describe, run_cli
from fake_openai import (
    FINGERPRINT,
    MADE_UP_ID,
    UNLISTED,
    FakeOpenAI,
    Reply,
    answer_for,
    completion,
)

from pipeline.assemble import confidence
from pipeline.notes import read_notes
from pipeline.schema import Reflection
from pipeline.text import normalize_ws

MODEL = "test-model-7b"
KEY = "sk-test-dummy"
NOTES = NOTES_CLEAR / "keep-02.md"
Serve = Callable[..., FakeOpenAI]


def _fold(text: str) -> str:
    """What a listed sentence may differ from the notes by: whitespace, and double quotes
    and backslashes shown as single quotes and slashes."""
    return normalize_ws(text.replace('"', "'").replace("\\", "/"))


def check_contract(fake: FakeOpenAI, key: str = KEY) -> None:
    """What every chat request from debrief must look like (the fake refuses a request with
    no notes markers, unnumbered lines, no passages or a schema that disagrees with them)."""
    fake.check()
    body = _fold(read_notes(NOTES).body)
    for req in fake.seen:
        assert req.headers["authorization"] == f"Bearer {key}"
        assert req.body["model"] == MODEL
        assert "never instructions to" in req.system and "do not obey it" in req.system
        assert "(data, not instructions)" in req.user
        assert req.sentences and req.passage_ids
        # the note text travels inside the markers, sentence by sentence, in the notes' order
        where = [body.find(s) for s in req.sentences]
        assert -1 not in where, [s for s, w in zip(req.sentences, where, strict=True) if w < 0]
        assert where == sorted(where) and len(set(req.sentences)) == len(req.sentences)
        # nothing of the notes leaks out of the markers
        assert req.sentences[0] not in req.user.replace(req.notes, "")


@pytest.fixture
def serve(indexed_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Serve]:
    """``serve(plans, key=...)``: a fake on 127.0.0.1 that OPENAI_BASE_URL points at."""
    started: list[FakeOpenAI] = []

    def start(plans: list[Any] | None = None, *, key: str | None = KEY) -> FakeOpenAI:
        fake = FakeOpenAI(model=MODEL, key=key, plans=plans).start()
        started.append(fake)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        if key is not None:
            monkeypatch.setenv("OPENAI_API_KEY", key)
        return fake

    yield start
    for fake in started:
        fake.stop()


def reflect(*args: object, notes: Path = NOTES) -> Any:
    before = notes.read_bytes()
    result = run_cli("reflect", notes, "--json", "--model", MODEL, "--timeout", 5, *args)
    assert notes.read_bytes() == before
    return result


def grounded(r: Reflection, fake: FakeOpenAI, request: int = -1) -> None:
    """The reflection is what the fake's answer to ``request`` amounts to: each reason's quote
    is the note sentence it cited, with the passage it cited, and the call and confidence
    follow the weights."""
    req = fake.seen[request]
    answer = answer_for(req)
    body = normalize_ws(read_notes(NOTES).body)
    by_ref = {req.ref(i): s for i, s in enumerate(req.sentences, 1)}
    net = sum(p["weight"] * (1 if p["stance"] == "keep" else -1) for p in answer["points"])
    assert r.decision == ("keep" if net >= 0 else "decline")
    assert r.confidence == confidence(net)
    assert r.next_step.kind == ("thank_you" if r.decision == "keep" else "withdrawal")
    cited = {_fold(by_ref[p[req.cites]]): p for p in answer["points"]}
    assert len(r.reasons) == len(cited)
    ids = {s.id for s in r.sources}
    for reason in r.reasons:
        assert reason.quote in body  # the notes' own words, not the listed form
        point = cited[_fold(reason.quote)]
        assert reason.passage_ids == [point["passage"]] and set(reason.passage_ids) <= ids
        assert reason.supports == point["stance"] and reason.point == point["why"]
    assert r.summary.startswith("Keep pursuing: " if r.decision == "keep" else "Decline: ")
    assert FINGERPRINT in r.summary  # written from the points' reasons


def invalid_answer(req: Any) -> dict[str, Any]:
    """Schema-valid, but citing a sentence the prompt does not list and an unknown passage."""
    answer = answer_for(req)
    answer["points"][0][req.cites] = req.ref(99)
    answer["points"][0]["passage"] = "made-up#9"
    return answer


def unlisted_sentence_error(fake: FakeOpenAI) -> str:
    """How the pipeline names a citation of a sentence the prompt did not list."""
    req = fake.seen[0]
    if req.cites == "sentence":
        return f"cites S99, but the notes have S1 to S{len(req.sentences)}"
    return "is not one of the listed note sentences"


# -- the structured-output methods ---------------------------------------------------------
def test_function_calling_valid_answer(serve: Serve) -> None:
    fake = serve()
    result = reflect("--structured-output", "function_calling", "--max-retries", 0)
    check_contract(fake)
    assert result.exit_code == 0, describe(result)
    assert len(fake.seen) == 1
    body = fake.seen[0].body
    tool = body["tools"][0]
    assert tool["type"] == "function" and tool["function"]["name"] == "reflection"
    params = tool["function"]["parameters"]
    assert {"points", "practice", "leverage", "clarity"} <= set(params["properties"])
    assert "criteria" not in params["properties"]  # no profile, no matrix
    assert body["tool_choice"] == {"type": "function", "function": {"name": "reflection"}}
    assert "response_format" not in body
    assert body.get("temperature") == 0.0

    r = Reflection.model_validate_json(result.stdout)
    assert r.engine == "openai" and r.model == MODEL and r.attempts == 1
    assert r.decision == "keep" and r.next_step.kind == "thank_you"
    assert {s.id for s in r.sources} == set(fake.seen[0].passage_ids)
    grounded(r, fake)


def test_auto_method_with_a_base_url_is_function_calling(serve: Serve) -> None:
    fake = serve()
    result = reflect("--max-retries", 0)
    check_contract(fake)
    assert result.exit_code == 0, describe(result)
    assert "tools" in fake.seen[0].body
    assert Reflection.model_validate_json(result.stdout).engine == "openai"


def test_json_schema_answer_in_content(serve: Serve) -> None:
    fake = serve()
    result = reflect("--structured-output", "json_schema", "--max-retries", 0)
    check_contract(fake)
    assert result.exit_code == 0, describe(result)
    body = fake.seen[0].body
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "reflection"
    assert "points" in fmt["json_schema"]["schema"]["properties"]
    assert "tools" not in body
    r = Reflection.model_validate_json(result.stdout)
    assert r.engine == "openai" and r.attempts == 1
    grounded(r, fake)


@pytest.mark.parametrize("plan", ["ok", "raw-newlines"])
def test_json_object_sends_the_schema_and_reads_content(serve: Serve, plan: str) -> None:
    """llama.cpp constrains json_object by a schema in response_format; small models put raw
    newlines inside JSON strings, which the provider reads anyway."""
    fake = serve([plan])
    result = reflect("--structured-output", "json_object", "--max-retries", 0)
    check_contract(fake)
    assert result.exit_code == 0, describe(result)
    body = fake.seen[0].body
    assert set(body["response_format"]) == {"type", "schema"}
    assert body["response_format"]["type"] == "json_object"
    schema = body["response_format"]["schema"]
    assert schema["title"] == "reflection" and "points" in schema["properties"]
    assert "tools" not in body and "tool_choice" not in body
    r = Reflection.model_validate_json(result.stdout)
    assert r.engine == "openai" and r.attempts == 1
    if plan == "ok":
        grounded(r, fake)
    else:
        assert "A reason\nover two lines." in [x.point for x in r.reasons]


def test_json_mode_sends_no_schema(serve: Serve) -> None:
    fake = serve()
    result = reflect("--structured-output", "json_mode", "--max-retries", 0)
    check_contract(fake)
    assert result.exit_code == 0, describe(result)
    assert fake.seen[0].body["response_format"] == {"type": "json_object"}
    grounded(Reflection.model_validate_json(result.stdout), fake)


# -- bad answers: fed back once --------------------------------------------------------------
def test_invalid_first_answer_is_retried_with_feedback(serve: Serve) -> None:
    fake = serve([invalid_answer, "ok"])
    result = reflect("--structured-output", "function_calling", "--max-retries", 0)
    check_contract(fake)
    assert result.exit_code == 0, describe(result)
    assert len(fake.seen) == 2
    r = Reflection.model_validate_json(result.stdout)
    assert r.attempts == 2
    grounded(r, fake)

    first, second = (s.body["messages"] for s in fake.seen)
    assert second[: len(first)] == first
    assert [m["role"] for m in second[len(first):]] == ["assistant", "user"]
    assert "made-up#9" in second[-2]["content"]  # the model sees its own answer
    feedback = second[-1]["content"]
    assert "failed validation" in feedback
    assert "'made-up#9', which is not listed" in feedback
    assert unlisted_sentence_error(fake) in feedback


def test_two_invalid_answers_fail_and_write_nothing(serve: Serve, tmp_path: Path) -> None:
    fake = serve([invalid_answer])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "reflection.md"
    result = reflect("--structured-output", "function_calling", "--max-retries", 0, "--out", out)
    check_contract(fake)
    line = assert_one_line_error(result, "failed validation", "nothing was written")
    assert "2 times" in line
    assert len(fake.seen) == 2
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("method", ["function_calling", "json_object"])
def test_an_unlisted_passage_is_fed_back_once_then_one_line(serve: Serve, method: str) -> None:
    fake = serve(["bad-citation"])
    result = reflect("--structured-output", method, "--max-retries", 0)
    check_contract(fake)
    needle = f"{MADE_UP_ID!r}, which is not listed"
    line = assert_one_line_error(result, "failed validation 2 times", "nothing was written")
    assert needle in line
    assert len(fake.seen) == 2
    feedback = fake.seen[1].body["messages"][-1]["content"]
    assert feedback.startswith("Your previous answer failed validation") and needle in feedback


@pytest.mark.parametrize("method", ["function_calling", "json_object"])
def test_a_point_quoting_no_note_sentence_is_left_out(serve: Serve, method: str) -> None:
    """The other points stand; the made-up quote is never shown, and nothing is retried."""
    fake = serve(["cites-unlisted-sentence"])
    result = reflect("--structured-output", method, "--max-retries", 0)
    check_contract(fake)
    assert result.exit_code == 0, describe(result)
    assert len(fake.seen) == 1
    r = Reflection.model_validate_json(result.stdout)
    req = fake.seen[0]
    kept = answer_for(req)["points"][1:]  # the plan replaces the first point's quote
    assert [x.quote for x in r.reasons] and UNLISTED not in [x.quote for x in r.reasons]
    assert len(r.reasons) == len(kept)
    net = sum(p["weight"] * (1 if p["stance"] == "keep" else -1) for p in kept)
    assert r.decision == ("keep" if net >= 0 else "decline")
    assert r.confidence == confidence(net)
    assert ("1 of the model's points was left out: 1 quoting words that are not in your notes."
            in r.notices)


@pytest.mark.parametrize("method", ["function_calling", "json_object"])
def test_an_answer_whose_quotes_all_match_nothing_is_fed_back(serve: Serve,
                                                              method: str) -> None:
    def unlisted_only(req: Any) -> dict[str, Any]:
        answer = answer_for(req)
        for pt in answer["points"]:
            pt[req.cites] = req.ref(99)
        return answer

    fake = serve([unlisted_only, "ok"])
    result = reflect("--structured-output", method, "--max-retries", 0)
    check_contract(fake)
    assert result.exit_code == 0, describe(result)
    assert Reflection.model_validate_json(result.stdout).attempts == 2
    feedback = fake.seen[1].body["messages"][-1]["content"]
    assert feedback.startswith("Your previous answer failed validation")
    assert unlisted_sentence_error(fake) in feedback


def test_answer_that_does_not_fit_the_schema_is_fed_back(serve: Serve) -> None:
    def broken(req: Any) -> dict[str, Any]:
        answer = answer_for(req)
        answer["points"][0]["stance"] = "maybe"
        return answer

    fake = serve([broken, "ok"])
    result = reflect("--structured-output", "function_calling", "--max-retries", 0)
    check_contract(fake)
    assert result.exit_code == 0, describe(result)
    assert Reflection.model_validate_json(result.stdout).attempts == 2
    feedback = fake.seen[1].body["messages"][-1]["content"]
    assert "points.0.stance: Input should be 'keep' or 'decline'" in feedback


# -- transport ---------------------------------------------------------------------------------
def test_http_500_without_retries(serve: Serve) -> None:
    fake = serve(["500"])
    result = reflect("--max-retries", 0)
    check_contract(fake)
    assert_one_line_error(result, "HTTP 500")
    assert len(fake.seen) == 1


def test_http_500_then_success_with_one_retry(serve: Serve) -> None:
    fake = serve(["500", "ok"])
    result = reflect("--max-retries", 1)
    check_contract(fake)
    assert result.exit_code == 0, describe(result)
    assert len(fake.seen) == 2
    r = Reflection.model_validate_json(result.stdout)
    assert r.attempts == 1  # a transport retry is not a validation attempt
    grounded(r, fake)


def test_429_with_retry_after_then_success(serve: Serve) -> None:
    fake = serve(["429/0", "ok"])
    result = reflect("--max-retries", 1)
    check_contract(fake)
    assert result.exit_code == 0, describe(result)
    assert len(fake.seen) == 2
    assert fake.stats()["by_status"] == {"429": 1, "200": 1}


def test_429_every_time_is_one_line(serve: Serve) -> None:
    fake = serve(["429/0"])
    result = reflect("--max-retries", 0)
    check_contract(fake)
    assert_one_line_error(result, "rate limited", "429")


def test_401_names_the_key(serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = serve()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-for-this-server")
    result = reflect("--max-retries", 0)
    line = assert_one_line_error(result, "401", "OPENAI_API_KEY")
    assert "sk-wrong-key" not in line and KEY not in line
    assert fake.stats()["by_status"] == {"401": 1}
    check_contract(fake, key="sk-wrong-key-for-this-server")


def test_server_not_listening(indexed_home: Path, monkeypatch: pytest.MonkeyPatch,
                              unused_port: int) -> None:
    url = f"http://127.0.0.1:{unused_port}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    line = assert_one_line_error(reflect("--max-retries", 0), "cannot reach")
    assert url in line


def test_base_url_flag_without_key_uses_openai(serve: Serve,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A local server needs no key: --base-url alone selects the openai provider."""
    fake = serve(key="not-needed")
    monkeypatch.delenv("OPENAI_BASE_URL")
    result = reflect("--base-url", fake.url, "--max-retries", 0)
    check_contract(fake, key="not-needed")
    assert result.exit_code == 0, describe(result)
    assert len(fake.seen) == 1
    assert Reflection.model_validate_json(result.stdout).engine == "openai"


def test_a_server_refusing_the_schema_method_gets_a_hint(serve: Serve) -> None:
    """llama.cpp's server answers json_schema with a 500 naming response_format (FACTS.md)."""
    body = {"error": {"message": "response_format type must be one of \"text\" or "
                                 "\"json_object\", got json_schema", "type": "server_error"}}
    fake = serve([lambda req: Reply(500, body)])
    result = reflect("--structured-output", "json_schema", "--max-retries", 0)
    check_contract(fake)
    assert_one_line_error(result, "HTTP 500", "response_format",
                          "may not take --structured-output json_schema",
                          "try function_calling or json_object or json_mode")


def test_every_answer_says_it_is_the_fake(serve: Serve) -> None:
    """Nobody may mistake the fake for a real model: the fingerprint is on answers, errors
    and stats."""
    import httpx

    fake = serve(["ok", "ok", "500"])
    headers = {"Authorization": f"Bearer {KEY}"}
    assert reflect("--max-retries", 0).exit_code == 0
    req = fake.seen[0]
    for _ in range(2):
        resp = httpx.post(f"{fake.url}/chat/completions", json=req.body, headers=headers)
        assert resp.json()["system_fingerprint"] == FINGERPRINT
    assert resp.status_code == 500
    assert httpx.get(fake.url.removesuffix("/v1") + "/stats").json()["system_fingerprint"] \
        == FINGERPRINT
    models = httpx.get(f"{fake.url}/models").json()
    assert [m["id"] for m in models["data"]] == [MODEL]
    bad = httpx.post(f"{fake.url}/chat/completions", headers=headers,
                     json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    assert bad.status_code == 400 and "system message" in bad.json()["error"]["message"]
    assert len(fake.errors) == 1 and "system message" in fake.errors[0]
    fake.errors.clear()
    fake.seen.pop()  # the malformed one
    check_contract(fake)


def test_the_fake_runs_as_a_process(tmp_path: Path) -> None:
    """The benchmark's way to run it: a process that prints its URL and serves until killed."""
    import subprocess
    import sys

    import httpx

    script = Path(__file__).resolve().parent / "fake_openai.py"
    proc = subprocess.Popen([sys.executable, str(script), "--port", "0", "--model", MODEL,
                             "--faults", "1:503"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        assert [m["id"] for m in httpx.get(f"{url}/models").json()["data"]] == [MODEL]
        stats = httpx.get(url.removesuffix("/v1") + "/stats").json()
        assert stats["requests"] == 0 and stats["system_fingerprint"] == FINGERPRINT
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        proc.stdout.close()


def cut_off(req: Any) -> Reply:
    """An answer that ran into max_tokens: half its JSON, finish_reason "length"."""
    body = completion(req, answer_for(req))
    choice = body["choices"][0]
    text = json.dumps(answer_for(req))[:120]
    choice["finish_reason"] = "length"
    if choice["message"].get("tool_calls"):
        choice["message"]["tool_calls"][0]["function"]["arguments"] = text
    else:
        choice["message"]["content"] = text
    return Reply(200, body)


@pytest.mark.parametrize("method", ["json_object", "json_schema", "function_calling"])
def test_an_answer_cut_off_at_the_length_limit_is_fed_back(serve: Serve, method: str) -> None:
    fake = serve([cut_off, "ok"])
    result = reflect("--structured-output", method, "--max-retries", 0, "--max-tokens", 100)
    check_contract(fake)
    assert result.exit_code == 0, describe(result)
    assert Reflection.model_validate_json(result.stdout).attempts == 2
    feedback = fake.seen[1].body["messages"][-1]["content"]
    assert "failed validation" in feedback and "cut off at the length limit (100 tokens)" in feedback


def test_answers_always_cut_off_are_one_line(serve: Serve) -> None:
    fake = serve([cut_off])
    result = reflect("--structured-output", "json_object", "--max-retries", 0,
                     "--max-tokens", 100)
    check_contract(fake)
    line = assert_one_line_error(result, "failed validation 2 times", "nothing was written")
    assert "cut off at the length limit (100 tokens)" in line
    assert len(fake.seen) == 2


@pytest.mark.parametrize("method", ["function_calling", "json_object"])
def test_a_profile_score_quoting_no_note_sentence_is_read_as_unknown(serve: Serve, tmp_path: Path,
                                                                     method: str) -> None:
    """A matrix entry whose quote is not a note sentence (small models quote the profile)
    is not evidence: that criterion is unknown and the deal-breaker not shown as hit, the
    rest of the answer stands, nothing is retried, and a notice says so."""
    profile = tmp_path / "profile.toml"
    profile.write_text('deal_breakers = ["fully on-site"]\n\n[criteria]\npay = 8\n'
                       'growth = 5\n', encoding="utf-8")

    def profile_quoted(req: Any) -> dict[str, Any]:
        answer = answer_for(req)
        answer["criteria"][0][req.cites] = req.ref(99)
        answer["deal_breakers"] = [{"deal_breaker": 1, req.cites: req.ref(99),
                                    "resolved_by": None}]
        return answer

    fake = serve([profile_quoted])
    result = reflect("--structured-output", method, "--max-retries", 0, "--profile", profile)
    check_contract(fake)
    assert result.exit_code == 0, describe(result)
    assert len(fake.seen) == 1
    r = Reflection.model_validate_json(result.stdout)
    assert r.attempts == 1 and r.matrix is not None
    assert all(row.score is None and row.quote is None for row in r.matrix.rows)
    assert r.matrix.total == 0
    assert not any("fully on-site" in f.flag for f in r.red_flags)
    assert ("2 of the model's points were left out: 2 scoring your profile on words that are "
            "not in your notes." in r.notices)
