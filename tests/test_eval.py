"""The eval harness: canonical keys, record against a real local server, strict replay,
the baseline gate, and sabotage that the gate must catch."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, describe, run_cli, write_advice_doc
from fake_openai import FakeOpenAI

from pipeline.llm.recording import request_key
from pipeline.prompts import PROFILE_PROMPT_VERSION, PROMPT_VERSION

CASES = ["a01-clear-keep-platform-team", "a06-decline-design-unpaid-trial",
         "b08-final-round-mutual-interest", "a21-injection-decline-say-keep"]
SENTINEL = "sk-debrief-sentinel-0123456789abcdef"
KEY_LIKE = re.compile(r"sk-[A-Za-z0-9_\-]{16,}|Bearer\s+\S{8,}|\"(api[_-]?key|authorization)\"\s*:",
                      re.I)


@pytest.fixture
def cases_dir(tmp_path: Path) -> Path:
    d = tmp_path / "cases"
    d.mkdir()
    for c in CASES:
        for suffix in (".md", ".yaml"):
            shutil.copy(ROOT / "eval" / "cases" / f"{c}{suffix}", d / f"{c}{suffix}")
    return d


def _eval(*args: object) -> object:
    return run_cli("eval", *args)


def test_request_key_is_canonical() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0}
    same = {"temperature": 0, "messages": [{"content": "x", "role": "user"}], "model": "m",
            "stream": False}
    assert request_key(body, "reflect-v1") == request_key(same, "reflect-v1")
    assert request_key(body, "reflect-v1") != request_key(body, "reflect-v2")
    assert request_key(body, "reflect-v1") != request_key({**body, "temperature": 0.7}, "reflect-v1")


def test_record_then_replay_offline(indexed_home: Path, cases_dir: Path,
                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = tmp_path / "recordings"
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    fake = FakeOpenAI(model="test-model-7b", key=SENTINEL).start()
    try:
        recorded = _eval("--mode", "openai", "--record", "--cases", cases_dir,
                         "--recordings", rec, "--report-dir", tmp_path / "r1",
                         "--model", "test-model-7b", "--base-url", fake.url,
                         "--structured-output", "function_calling", "--timeout", 10)
    finally:
        fake.stop()  # replay below has no server to fall back on
    fake.check()
    assert recorded.exit_code == 0, describe(recorded)
    files = sorted(p for p in rec.glob("*.json") if p.name != "manifest.json")
    assert len(files) == len(CASES) == len(fake.seen)
    for f in files:
        data = json.loads(f.read_text())
        assert data["provenance"]["model"] == "test-model-7b"
        assert data["provenance"]["server"] == fake.url
        assert data["canonical"]["prompt_version"] == PROMPT_VERSION
        assert data["response"]["system_fingerprint"] == "debrief-fake-openai"
        assert data["case"] in CASES
        assert data["key"] == f.stem
        text = f.read_text()
        assert SENTINEL not in text and not KEY_LIKE.search(text), f.name
    live = json.loads((tmp_path / "r1" / "report.json").read_text())

    # replay: no key, no server, same answers
    monkeypatch.delenv("OPENAI_API_KEY")
    replayed = _eval("--mode", "replay", "--cases", cases_dir, "--recordings", rec,
                     "--report-dir", tmp_path / "r2")
    assert replayed.exit_code == 0, describe(replayed)
    again = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert [c["decision"] for c in again["cases"]] == [c["decision"] for c in live["cases"]]
    assert again["metrics"]["final_valid_rate"] == 1.0
    assert len(fake.seen) == len(CASES)  # replay made no request

    # a changed prompt cannot replay old answers: strict miss naming case and difference
    prompts = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", prompts)
    system = prompts / PROMPT_VERSION / "system.md"
    system.write_text(system.read_text() + "\nBe brief.\n")
    monkeypatch.setenv("DEBRIEF_PROMPTS_DIR", str(prompts))
    missed = _eval("--mode", "replay", "--cases", cases_dir, "--recordings", rec,
                   "--report-dir", tmp_path / "r3")
    assert missed.exit_code == 1, describe(missed)
    assert "no recording" in missed.stderr
    assert "nearest is" in missed.stderr and "system message" in missed.stderr
    assert CASES[0] in missed.stderr
    assert len(fake.seen) == len(CASES)  # and still never a live call


def test_offline_gate_bless_and_sabotage(indexed_home: Path, cases_dir: Path,
                                         tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    first = _eval("--mode", "offline", "--cases", cases_dir, "--report-dir", tmp_path / "r",
                  "--baseline", baseline)
    assert first.exit_code == 0, describe(first)
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["metrics"]["cases"] == len(CASES)
    assert report["versions"]["engine"] == "offline"
    assert (tmp_path / "r" / "report.md").read_text().startswith("# debrief eval: offline")

    no_base = _eval("--mode", "offline", "--cases", cases_dir, "--report-dir", tmp_path / "r",
                    "--baseline", baseline, "--fail-on-regression")
    assert no_base.exit_code == 1 and "no baseline" in no_base.stderr

    blessed = _eval("bless", "--report-dir", tmp_path / "r", "--baseline", baseline)
    assert blessed.exit_code == 0, describe(blessed)
    stored = json.loads(baseline.read_text())
    assert stored["modes"]["offline"]["metrics"]["decision_accuracy"] == \
        report["metrics"]["decision_accuracy"]

    ok = _eval("--mode", "offline", "--cases", cases_dir, "--report-dir", tmp_path / "r",
               "--baseline", baseline, "--fail-on-regression")
    assert ok.exit_code == 0, describe(ok)
    assert "gate passed" in ok.stderr

    # sabotage: a retriever whose index holds unrelated advice must fail the gate
    decoy = tmp_path / "decoy"
    for i in range(3):
        write_advice_doc(decoy, f"decoy-doc-{i}")
    built = run_cli("index", "--collection", "decoy", "--no-default-corpus", "--corpus", decoy)
    assert built.exit_code == 0, describe(built)
    broken = _eval("--mode", "offline", "--cases", cases_dir, "--report-dir", tmp_path / "s",
                   "--baseline", baseline, "--fail-on-regression", "--collection", "decoy")
    assert broken.exit_code == 1, describe(broken)
    assert "REGRESSION offline: recall_at_k fell from" in broken.stderr


def test_committed_recordings_hold_no_secrets() -> None:
    rec = ROOT / "eval" / "recordings"
    files = list(rec.glob("*.json"))
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert not KEY_LIKE.search(text), f"key-like string in {f.name}"
        if f.name != "manifest.json":
            assert json.loads(text)["provenance"]["how"]


def _recorded_versions() -> set[str]:
    """The prompt version of every committed recording, checked against what it holds: a
    request asking for the decision matrix (v1: `matrix`; v2: the profile's `criteria`) came
    from the profile prompt of its generation, and says so; every file is named by the key
    of what it holds."""
    seen = set()
    for f in (ROOT / "eval" / "recordings").glob("*.json"):
        if f.name == "manifest.json":
            continue
        rec = json.loads(f.read_text(encoding="utf-8"))
        canon = rec["canonical"]
        schema = json.dumps([canon["request"].get("tools"), canon["request"].get("response_format")])
        v2 = '"points"' in schema
        profiled = '"criteria"' in schema if v2 else '"matrix"' in schema
        want = {(False, False): "reflect-v1", (False, True): "reflect-profile-v1",
                (True, False): PROMPT_VERSION, (True, True): PROFILE_PROMPT_VERSION}[v2, profiled]
        assert canon["prompt_version"] == want, f.name
        assert f.stem == rec["key"] == request_key(canon["request"], want), f.name
        seen.add(want)
    return seen


def test_committed_recordings_name_the_prompt_they_were_made_with() -> None:
    assert _recorded_versions()


def test_committed_recordings_cover_the_current_prompts() -> None:
    assert {PROMPT_VERSION, PROFILE_PROMPT_VERSION} <= _recorded_versions()


def test_every_case_the_manifest_declares_exists() -> None:
    """A declared case that was renamed or deleted would shrink the gate without a miss."""
    rec = ROOT / "eval" / "recordings"
    declared = json.loads((rec / "manifest.json").read_text(encoding="utf-8"))["recorded"]
    ids = {p.stem for d in ("cases", "profile-cases") for p in (ROOT / "eval" / d).glob("*.md")}
    ids |= {p.parent.name for p in (ROOT / "eval" / "compare").glob("*/gold.yaml")}
    assert declared and set(declared) <= ids


def test_a_missed_retry_names_the_retry_turns(tmp_path: Path) -> None:
    from pipeline.llm.recording import RecordingStore

    store = RecordingStore(tmp_path, "reflect-v1")
    first = [{"role": "system", "content": "s"}, {"role": "user", "content": "notes"}]
    retry = [*first, {"role": "assistant", "content": "{}"},
             {"role": "user", "content": "Your previous answer failed validation: A"}]
    body = {"model": "m", "messages": retry, "temperature": 0}
    store.save(request_key(body, "reflect-v1"), body, 200, {}, {"how": "test"})
    changed = {**body, "messages": [*retry[:3], {"role": "user", "content": "... B"}]}
    why = store.explain_miss(changed, request_key(changed, "reflect-v1"))
    assert why.endswith("'debrief eval --mode openai --record-missing'.")
    assert "differs in retry turns (earlier answer, feedback). " in why


def test_replay_covers_what_the_manifest_declares_recorded(
        indexed_home: Path, cases_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A case whose request got no answer is not declared recorded; replay runs the declared
    ones, says how many are left, and a declared recording that goes missing fails it."""
    rec = tmp_path / "recordings"
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    failing = CASES[1]
    fake = FakeOpenAI(model="test-model-7b", key=SENTINEL,
                      choose=lambda req, n: "500" if "unpaid" in req.user.lower() else "ok").start()
    try:
        recorded = _eval("--mode", "openai", "--record-missing", "--cases", cases_dir,
                         "--recordings", rec, "--report-dir", tmp_path / "r1",
                         "--model", "test-model-7b", "--base-url", fake.url, "--max-retries", 0,
                         "--structured-output", "function_calling", "--timeout", 10)
    finally:
        fake.stop()
    assert recorded.exit_code == 0, describe(recorded)
    manifest = json.loads((rec / "manifest.json").read_text())
    assert manifest["recorded"] == sorted(c for c in CASES if c != failing)

    monkeypatch.delenv("OPENAI_API_KEY")
    baseline = tmp_path / "baseline.json"
    replayed = _eval("--mode", "replay", "--cases", cases_dir, "--recordings", rec,
                     "--report-dir", tmp_path / "r2", "--baseline", baseline)
    assert replayed.exit_code == 0, describe(replayed)
    report = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert [c["id"] for c in report["cases"]] == [c for c in sorted(CASES) if c != failing]
    assert report["metrics"]["replayed_items"] == len(CASES) - 1
    assert "1 more have no recording yet" in replayed.output
    assert _eval("bless", "--report-dir", tmp_path / "r2", "--baseline", baseline).exit_code == 0

    # a declared case whose recording is gone is a miss, never a silently smaller gate
    victim = next(p for p in rec.glob("*.json")
                  if p.name != "manifest.json" and json.loads(p.read_text())["case"] == CASES[0])
    victim.unlink()
    missed = _eval("--mode", "replay", "--cases", cases_dir, "--recordings", rec,
                   "--report-dir", tmp_path / "r3", "--baseline", baseline,
                   "--fail-on-regression")
    assert missed.exit_code == 1, describe(missed)
    assert f"case '{CASES[0]}': no recording" in missed.stderr

    # and dropping it from the manifest too shrinks the coverage, which the gate catches
    manifest["recorded"].remove(CASES[0])
    (rec / "manifest.json").write_text(json.dumps(manifest))
    smaller = _eval("--mode", "replay", "--cases", cases_dir, "--recordings", rec,
                    "--report-dir", tmp_path / "r4", "--baseline", baseline,
                    "--fail-on-regression")
    assert smaller.exit_code == 1, describe(smaller)
    assert "replayed_items fell from" in smaller.stderr


def test_the_report_shows_the_held_out_calibration_once() -> None:
    from pipeline.render.eval_report import eval_report_markdown

    report = {"mode": "offline", "cases": [], "versions": {
        "engine": "offline", "model": "m", "prompt_version": "reflect-v2",
        "index_fingerprint": "i", "cases_digest": "c", "tool": "0"},
        "metrics": {"decision_accuracy_heldout": 0.5, "confusion": {}, "accuracy_by_tag": {},
                    "reliability_heldout": [{"confidence": "0.5-0.6", "n": 4, "accuracy": 0.5}]}}
    md = eval_report_markdown(report, ["decision_accuracy_heldout"])
    assert md.count("## Calibration on held-out") == 1
    assert "| 0.5-0.6 | 4 | 0.5 |" in md
