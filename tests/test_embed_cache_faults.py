"""A damaged embedding cache costs time, never a different answer; and runs repeat exactly.

Also: what reflecting leaves outside DEBRIEF_HOME (nothing: onnxruntime's telemetry is off).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import NOTES_CLEAR, ROOT, BuiltIndex, describe, run_cli

from pipeline.home import EMBEDDING_CACHE as FILE
from pipeline.index.embed_cache import DIM, check_rows
from pipeline.index.embedding import get_embedder
from pipeline.language import detect_language
from pipeline.notes import read_notes
from pipeline.text import sentences

TEXTS = ["The manager walked me through a written 90-day plan.",
         "They asked for an unpaid trial week before any offer.",
         "Pay is 12% above what I make now, and the commute is 20 minutes.",
         "The on-call rota is one week in six, paid, with a day off after."]
EVAL_NOTES = sorted((ROOT / "eval" / "cases").glob("*.md"))[:29]


def _blobs(path: Path) -> list[tuple[bytes, bytes]]:
    with sqlite3.connect(path) as con:
        return con.execute("SELECT key, vec FROM vectors ORDER BY key").fetchall()


def _set(path: Path, key: bytes, blob: bytes) -> None:
    with sqlite3.connect(path) as con:
        con.execute("UPDATE vectors SET vec = ? WHERE key = ?", (blob, key))


def _flip(blob: bytes) -> bytes:
    data = bytearray(blob)
    data[101] ^= 0x01  # the lowest mantissa bit of one float: the norm stays 1 within 1e-7
    return bytes(data)


# each damage, given a row's blob and another row's blob
DAMAGE: dict[str, Callable[[bytes, bytes], bytes]] = {
    "random-bytes": lambda b, _o: os.urandom(len(b)),
    "nan": lambda b, _o: np.full(DIM, np.nan, dtype=np.float32).tobytes() + b[DIM * 4:],
    "zeros": lambda b, _o: bytes(len(b)),
    "one-flipped-bit": lambda b, _o: _flip(b),
    "another-rows-vector": lambda _b, o: o,
    "truncated": lambda b, _o: b[:700],
    "not-unit-length": lambda b, _o: (np.frombuffer(b[:DIM * 4], dtype=np.float32) * 2)
    .astype(np.float32).tobytes(),
}


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_damaged_vectors_are_embedded_afresh_and_rewritten(debrief_env: Path, how: str) -> None:
    emb = get_embedder()
    fresh = emb.embed(TEXTS)
    emb.embed(TEXTS, cached=True)  # stores all four
    path = debrief_env / FILE
    rows = _blobs(path)
    assert len(rows) == len(TEXTS)
    for i, (key, blob) in enumerate(rows):
        _set(path, key, DAMAGE[how](blob, rows[(i + 1) % len(rows)][1]))
    assert check_rows(path)[1] == len(TEXTS)

    again = emb.embed(TEXTS, cached=True)
    assert np.array_equal(again, fresh)  # bit for bit, as if there were no cache
    assert check_rows(path) == (len(TEXTS), 0, 0)  # every damaged row was replaced
    assert np.array_equal(emb.embed(TEXTS, cached=True), fresh)


def test_doctor_warns_with_the_number_of_damaged_vectors(debrief_env: Path) -> None:
    get_embedder().embed(TEXTS, cached=True)
    path = debrief_env / FILE
    rows = _blobs(path)
    _set(path, rows[0][0], DAMAGE["nan"](rows[0][1], b""))
    _set(path, rows[2][0], DAMAGE["one-flipped-bit"](rows[2][1], b""))
    result = run_cli("doctor", "--json")
    cache = {c["name"]: c for c in json.loads(result.stdout)["checks"]}["embedding cache"]
    assert cache["status"] == "warn", cache
    assert f"2 of {len(TEXTS)} vectors are damaged" in cache["detail"]
    assert str(path) in cache["hint"]


def test_reflect_on_a_scrambled_cache_gives_the_same_reflection(indexed_home: Path) -> None:
    note = NOTES_CLEAR / "decline-03.md"
    first = run_cli("reflect", note, "--json", "--provider", "offline")
    assert first.exit_code == 0, describe(first)
    path = indexed_home / FILE
    for key, blob in _blobs(path):
        _set(path, key, os.urandom(len(blob)))
    again = run_cli("reflect", note, "--json", "--provider", "offline")
    assert again.exit_code == 0, describe(again)
    assert again.stdout == first.stdout
    assert check_rows(path)[1] == 0


# -- the same text, the same vector -----------------------------------------------------------
@pytest.mark.slow  # make test-quick leaves it out (README, Development)
def test_a_texts_vector_does_not_depend_on_the_batch_it_is_embedded_in() -> None:
    """Dynamic padding pads each batch to its longest text; the vectors must not notice."""
    from pipeline.corpus import chunk_corpus, load_corpus
    from pipeline.resources import corpus_dir

    note_lines = [s for p in sorted(NOTES_CLEAR.glob("*.md"))
                  for s in sentences(read_notes(p).body)]
    chunks = [c.embed_text for c in chunk_corpus(load_corpus([corpus_dir()]))][:24]
    texts = note_lines[:40] + chunks
    emb = get_embedder()
    alone = np.stack([emb.embed([t])[0] for t in texts])
    together = emb.embed(texts)
    rng = np.random.default_rng(7)
    mixed = rng.permutation(len(texts))[:30]
    assert np.array_equal(together, alone)  # tolerance 0
    assert np.array_equal(emb.embed([texts[i] for i in mixed]), alone[mixed])
    assert np.array_equal(emb.embed(texts[::3] + texts[1::3]),
                          np.concatenate([alone[::3], alone[1::3]]))


def test_sentences_are_the_same_from_many_threads() -> None:
    """A batch splits two notes into sentences at once; a shared sentence splitter cut one
    note at the other's offsets (different sentences, so different passages and scores)."""
    bodies = [read_notes(p).body for p in EVAL_NOTES]
    expected = [sentences(b) for b in bodies]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(sentences, bodies * 6))
    assert got == expected * 6


def test_language_detection_is_the_same_from_many_threads() -> None:
    """langdetect loads its language profiles on first use and publishes them half loaded."""
    import langdetect.detector_factory as factory

    terse = ("Corliss Animal Hospital, vet tech, 2nd round.\nPay +$2/hr over now, good "
             "equipment, Dr. Haines seemed nice but rushed, barely talked to her.\nCommute 55 "
             "min each way, 10-hr shifts incl. alternate Sundays. Don't know yet.\n")
    expected = detect_language(terse)
    for _ in range(3):
        factory._factory = None  # as in a fresh process: nothing loaded yet
        start = threading.Barrier(4)

        def detect(barrier: threading.Barrier) -> str | None:
            barrier.wait()
            return detect_language(terse)

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(detect, [start] * 4)) == [expected] * 4


@pytest.mark.slow
def test_cache_off_cold_and_warm_batches_give_identical_reflections(
        indexed_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    for p in EVAL_NOTES:
        shutil.copy(p, notes / p.name)

    def batch(label: str) -> dict[str, str]:
        out = tmp_path / label
        result = run_cli("batch", notes, "--json", "--provider", "offline", "--force",
                         "--out", out)
        assert result.exit_code == 0, describe(result)
        found = {}
        for path in sorted(out.rglob("*.json")):
            text = path.read_text(encoding="utf-8")
            if text.lstrip().startswith("{") and '"decision"' in text:
                found[path.name] = text
        assert len(found) == len(EVAL_NOTES)
        return found

    with monkeypatch.context() as mp:
        mp.setenv("DEBRIEF_EMBEDDING_CACHE", "off")
        off = batch("off")
    assert not (indexed_home / FILE).exists()
    cold = batch("cold")
    warm = batch("warm")
    for label, run in (("cold", cold), ("warm", warm)):
        differ = sorted(n for n in off if run[n] != off[n])
        assert not differ, f"cache {label} differs from cache off on {differ}"


# -- nothing outside DEBRIEF_HOME ---------------------------------------------------------------
def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def test_reflect_writes_nothing_outside_debrief_home(built_index: BuiltIndex, tmp_path: Path,
                                                     cli_env: dict[str, str]) -> None:
    fake_home, temp, out = tmp_path / "user", tmp_path / "tmp", tmp_path / "out"
    for d in (fake_home, temp):
        d.mkdir()
    debrief_home = tmp_path / "debrief-home"
    debrief_home.mkdir()
    shutil.copytree(built_index.chroma, debrief_home / "chroma")
    env = {k: v for k, v in cli_env.items()
           if not k.startswith(("ORT_", "XDG_")) and k != "ANONYMIZED_TELEMETRY"}
    env.update(HOME=str(fake_home), XDG_CACHE_HOME=str(fake_home / ".cache"),
               XDG_DATA_HOME=str(fake_home / ".local" / "share"),
               XDG_CONFIG_HOME=str(fake_home / ".config"), TMPDIR=str(temp),
               DEBRIEF_HOME=str(debrief_home), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-m", "pipeline", "reflect",
                           str(NOTES_CLEAR / "keep-01.md"), "--provider", "offline",
                           "--out", str(out / "keep-01.md")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (out / "keep-01.md").is_file()
    assert (debrief_home / FILE).is_file()  # it did run: the note's vectors were kept
    assert _files(fake_home) == [] and _files(temp) == [], (_files(fake_home), _files(temp))
