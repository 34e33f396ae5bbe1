"""The embedding cache: the same vectors as embedding afresh, and never a reason to fail."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
from conftest import NOTES_CLEAR, describe, run_cli

from pipeline.home import EMBEDDING_CACHE as FILE
from pipeline.index.embed_cache import EmbeddingCache, close_all, embedding_cache
from pipeline.index.embedding import get_embedder, model_sha256

TEXTS = ["The manager walked me through a written 90-day plan.",
         "They asked for an unpaid trial week before any offer.",
         "Pay is 12% above what I make now, and the commute is 20 minutes."]


def rows(path: Path) -> int:
    with sqlite3.connect(path) as con:
        return con.execute("SELECT count(*) FROM vectors").fetchone()[0]


def test_cached_vectors_are_the_fresh_ones_bit_for_bit(debrief_env: Path) -> None:
    emb = get_embedder()
    fresh = emb.embed(TEXTS)
    first = emb.embed(TEXTS, cached=True)  # stores all three
    assert rows(debrief_env / FILE) == 3
    # one new text among cached ones: only it is added, and every vector is unchanged
    mixed = emb.embed([TEXTS[1], "A brand-new line about the team's on-call rota.", TEXTS[0]],
                      cached=True)
    assert rows(debrief_env / FILE) == 4
    assert np.array_equal(first, fresh)
    assert np.array_equal(mixed[[0, 2]], fresh[[1, 0]])
    assert np.array_equal(mixed[1], emb.embed(["A brand-new line about the team's on-call rota."])[0])


def test_another_model_does_not_see_these_vectors(tmp_path: Path) -> None:
    a = EmbeddingCache(tmp_path / "c.sqlite3", "model-a")
    a.put_many(TEXTS, np.ones((3, 384), dtype=np.float32))
    assert set(a.get_many(TEXTS)) == {0, 1, 2}
    assert EmbeddingCache(tmp_path / "c.sqlite3", "model-b").get_many(TEXTS) == {}


def test_the_least_recently_used_go_first(tmp_path: Path) -> None:
    c = EmbeddingCache(tmp_path / "c.sqlite3", "m", max_rows=2)
    vec = np.ones((1, 384), dtype=np.float32)
    c.put_many([TEXTS[0]], vec)
    c.put_many([TEXTS[1]], vec)
    assert c.get_many([TEXTS[0]])  # used again: now the newest
    c.put_many([TEXTS[2]], vec)
    assert rows(tmp_path / "c.sqlite3") == 2
    assert set(c.get_many(TEXTS)) == {0, 2}


def test_a_broken_cache_is_embedding_as_usual(debrief_env: Path) -> None:
    emb = get_embedder()
    fresh = emb.embed(TEXTS)
    debrief_env.mkdir(parents=True, exist_ok=True)
    (debrief_env / FILE).write_bytes(b"this is not a database" * 100)
    assert np.array_equal(emb.embed(TEXTS, cached=True), fresh)
    close_all()
    (debrief_env / FILE).unlink()
    (debrief_env / FILE).mkdir()  # a folder where the file should be
    assert np.array_equal(emb.embed(TEXTS, cached=True), fresh)
    assert embedding_cache(model_sha256()).get_many(TEXTS) == {}


def test_reflect_fills_the_cache_and_a_second_run_reads_it(indexed_home: Path) -> None:
    note = sorted(NOTES_CLEAR.glob("*.md"))[0]
    first = run_cli("reflect", note, "--json")
    assert first.exit_code == 0, describe(first)
    stored = rows(indexed_home / FILE)
    assert stored >= 2  # the whole note and its sentences
    second = run_cli("reflect", note, "--json")
    assert second.exit_code == 0, describe(second)
    assert rows(indexed_home / FILE) == stored  # nothing new to embed
    assert second.stdout == first.stdout


def test_the_setting_moves_or_turns_off_the_cache(debrief_env: Path, tmp_path: Path,
                                                  monkeypatch) -> None:
    emb = get_embedder()
    elsewhere = tmp_path / "cache" / "vectors.sqlite3"
    monkeypatch.setenv("DEBRIEF_EMBEDDING_CACHE", str(elsewhere))
    emb.embed(TEXTS, cached=True)
    assert rows(elsewhere) == 3 and not (debrief_env / FILE).exists()
    monkeypatch.setenv("DEBRIEF_EMBEDDING_CACHE", "off")
    assert embedding_cache(model_sha256()) is None
    emb.embed(["One more line, not to be kept anywhere."], cached=True)
    assert rows(elsewhere) == 3 and not (debrief_env / FILE).exists()
