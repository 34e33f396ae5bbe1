"""Shared fixtures: a private DEBRIEF_HOME per test, one shared advice index, a CLI runner.

Every test runs with its own temporary DEBRIEF_HOME and with no OPENAI_* or DEBRIEF_*
variables from the outside world, so a developer's key, server or config never leaks in.
The shipped corpus is embedded once per session (several seconds) and copied into the
homes of the tests that need an index (`indexed_home`).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import shutil
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
NOTES_CLEAR = FIXTURES / "notes" / "clear"

# No example database under the checkout, no flaky deadlines on a busy CI box.
settings.register_profile(
    "debrief", database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("debrief")

_SCRUBBED = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID")


def _clean_env(mp: pytest.MonkeyPatch, home: Path) -> None:
    for name in list(os.environ):
        if name.startswith("DEBRIEF_") or name in _SCRUBBED:
            mp.delenv(name, raising=False)
    mp.setenv("DEBRIEF_HOME", str(home))
    # the same engine whether or not this machine has the [local] extra installed
    mp.setenv("DEBRIEF_LOCAL_MODEL", "off")
    mp.setenv("ANONYMIZED_TELEMETRY", "False")
    # the only network a test may use is a server it started on 127.0.0.1
    mp.setenv("NO_PROXY", "127.0.0.1,localhost")
    mp.setenv("no_proxy", "127.0.0.1,localhost")


def _release_chroma(prefix: str) -> None:
    """Stop the embedded Chroma systems opened under `prefix` (the CLI never closes them)."""
    if "chromadb" not in sys.modules:
        return
    from chromadb.api.shared_system_client import SharedSystemClient

    for ident in list(SharedSystemClient._identifier_to_system):
        if ident.startswith(prefix):
            system = SharedSystemClient._identifier_to_system.pop(ident, None)
            SharedSystemClient._identifier_to_refcount.pop(ident, None)
            if system is not None:
                with contextlib.suppress(Exception):
                    system.stop()


# -- hermetic network -------------------------------------------------------------------
_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> object:
    if self.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        host = str(address[0])
        try:
            ok = ipaddress.ip_address(host.split("%")[0]).is_loopback
        except ValueError:
            ok = host == "localhost"
        if not ok:
            raise OSError(f"tests may not connect to {host}: only 127.0.0.1 is allowed")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def debrief_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh DEBRIEF_HOME per test and an environment free of outside settings."""
    home = tmp_path / "home"
    _clean_env(monkeypatch, home)
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)
    yield home
    # `--debug` writes DEBRIEF_DEBUG into os.environ itself; do not let it reach the next test
    for name in list(os.environ):
        if name.startswith("DEBRIEF_"):
            os.environ.pop(name, None)
    _release_chroma(str(tmp_path) + os.sep)
    from pipeline.index.embed_cache import close_all

    close_all()


# -- the shared index ----------------------------------------------------------------------
@dataclass
class BuiltIndex:
    chroma: Path
    docs: int
    chunks: int
    cues: int
    embedded: int
    fingerprint: str


@pytest.fixture(scope="session")
def built_index(tmp_path_factory: pytest.TempPathFactory) -> BuiltIndex:
    """The shipped corpus embedded once, under a session-private home."""
    home = tmp_path_factory.mktemp("session-home")
    with pytest.MonkeyPatch.context() as mp:
        _clean_env(mp, home)
        from pipeline.index.open import open_index
        from pipeline.settings import IndexSettings

        idx = open_index(IndexSettings(collection="advice"))
        report = idx.build(IndexSettings().corpus_folders())
        idx.client.close()
        _release_chroma(str(home) + os.sep)
    return BuiltIndex(chroma=home / "chroma", docs=report.docs, chunks=report.chunks,
                      cues=report.cues, embedded=report.embedded, fingerprint=report.fingerprint)


@pytest.fixture
def indexed_home(debrief_env: Path, built_index: BuiltIndex) -> Path:
    """DEBRIEF_HOME holding a copy of the session's index, ready for `reflect`."""
    debrief_env.mkdir(parents=True, exist_ok=True)
    shutil.copytree(built_index.chroma, debrief_env / "chroma")
    return debrief_env


@contextlib.contextmanager
def private_indexed_home(base: Path, built: BuiltIndex) -> Iterator[Path]:
    """For a module-scoped fixture: ``base/home`` holding a copy of the session's index,
    the environment cleaned as for a test, and Chroma released afterwards."""
    home = base / "home"
    home.mkdir()
    shutil.copytree(built.chroma, home / "chroma")
    with pytest.MonkeyPatch.context() as mp:
        _clean_env(mp, home)
        yield home
    _release_chroma(str(base))


@pytest.fixture
def unused_port() -> int:
    """A 127.0.0.1 port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- running the CLI -----------------------------------------------------------------------
def run_cli(*args: object, input: str | bytes | None = None) -> Result:
    """`debrief ARGS` in-process. stdout and stderr are kept apart (Click 8.2+)."""
    from pipeline.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


def describe(result: Result) -> str:
    return f"exit {result.exit_code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def assert_one_line_error(result: Result, *needles: str, exit_code: int = 2) -> str:
    """The CLI error contract: the exit code, one line on stderr starting 'Error:', no traceback."""
    assert result.exit_code == exit_code, describe(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, describe(result)
    line = lines[0]
    assert line.startswith("Error:"), describe(result)
    assert "Traceback" not in result.output, describe(result)
    assert result.stdout == "", describe(result)
    for needle in needles:
        assert needle.lower() in line.lower(), f"{needle!r} not in {line!r}"
    return line


@pytest.fixture
def cli_env() -> dict[str, str]:
    """Environment for a `python -m pipeline` subprocess: this checkout, this test's home."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def write_advice_doc(folder: Path, doc_id: str = "test-snack-advice", *,
                     extra: str = "", stance: str = "keep") -> Path:
    """A small, valid advice document for a user corpus folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{doc_id}.md"
    path.write_text(
        f"""---
id: {doc_id}
title: Snacks and small perks say something
stance: {stance}
cues:
  - "the office kitchen was stocked with good snacks"
  - "they buy the team lunch every friday"
  - "small perks like free coffee and fruit"
  - "the break room was clean and well looked after"
---

# Snacks and small perks say something

## Why it matters

Small perks such as a stocked kitchen or a weekly team lunch cost an employer little, yet they
show whether someone thinks about the daily life of the people who work there. A team that
looks after small things often looks after the bigger ones too, such as sensible hours.

## What to do

Notice the small perks, but do not let them outweigh pay, growth or a good manager. Ask the
people you meet what a normal week looks like and whether the perks are used by everyone.
{extra}
""",
        encoding="utf-8",
    )
    return path


LAKEMONT_ROUND_1_TEXT = (FIXTURES / "notes" / "rounds" / "lakemont-round-1.md").read_text(
    encoding="utf-8")


def tree(root: Path, skip: str | None = ".debrief") -> dict[str, str]:
    """Every entry under root with its content hash and mtime (symlinks not followed)."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if skip and (rel == skip or rel.startswith(skip + "/")):
            continue
        if p.is_symlink():
            out[rel] = f"link:{os.readlink(p)}"
        elif p.is_file():
            out[rel] = f"{hashlib.sha256(p.read_bytes()).hexdigest()}:{p.stat().st_mtime_ns}"
        else:
            out[rel] = "dir"
    return out


@contextlib.contextmanager
def time_limit(seconds: int, what: object) -> Iterator[None]:
    """Fail an input that takes over ``seconds`` (SIGALRM: the main thread, POSIX only)."""
    def _alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"input took over {seconds} s: {what!r}"[:2000])

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
