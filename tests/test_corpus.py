"""The shipped advice corpus keeps the format corpus/README.md promises, and chunk ids are stable."""

from __future__ import annotations

import re
from pathlib import Path

import frontmatter
import pytest
import yaml

from pipeline.corpus import chunk_corpus, load_corpus
from pipeline.resources import corpus_dir

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
DOCS = sorted(p for p in CORPUS.glob("*.md") if p.name.lower() != "readme.md")
CASES = sorted((ROOT / "eval" / "cases").glob("*.yaml"))


def test_corpus_has_at_least_30_documents() -> None:
    assert len(DOCS) >= 30, [p.name for p in DOCS]


def test_shipped_corpus_is_the_one_the_package_finds() -> None:
    assert corpus_dir().resolve() == CORPUS.resolve()


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.stem)
def test_front_matter(path: Path) -> None:
    meta, _ = frontmatter.parse(path.read_text(encoding="utf-8"))
    assert meta.get("id") == path.stem
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]+", meta["id"])
    assert isinstance(meta.get("title"), str) and len(meta["title"].strip()) >= 3
    assert isinstance(meta.get("tags"), list) and meta["tags"], "tags must be a non-empty list"
    assert all(isinstance(t, str) and t == t.lower() for t in meta["tags"])
    assert meta.get("stance") in ("keep", "decline", "neutral")
    assert isinstance(meta.get("source"), str) and meta["source"].strip()
    cues = meta.get("cues")
    assert isinstance(cues, list) and 4 <= len(cues) <= 8, cues
    assert all(isinstance(c, str) and c.strip() for c in cues)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.stem)
def test_body(path: Path) -> None:
    _, body = frontmatter.parse(path.read_text(encoding="utf-8"))
    words = len(body.split())
    assert 300 <= words <= 900, f"{words} words"
    lines = body.splitlines()
    titles = [ln for ln in lines if ln.startswith("# ")]
    sections = [ln for ln in lines if ln.startswith("## ")]
    assert len(titles) == 1 and lines[0].startswith("# "), "one '# Title', first"
    assert len(sections) >= 2, sections


def test_every_gold_id_in_the_eval_cases_exists() -> None:
    ids = {p.stem for p in DOCS}
    assert CASES, "no eval cases found"
    missing: dict[str, list[str]] = {}
    n_gold = 0
    for case in CASES:
        data = yaml.safe_load(case.read_text(encoding="utf-8")) or {}
        gold = data.get("gold") or []
        assert isinstance(gold, list), case.name
        n_gold += len(gold)
        unknown = [g for g in gold if g not in ids]
        if unknown:
            missing[case.name] = unknown
    assert n_gold > 0
    assert not missing, missing


def test_load_corpus_reads_every_document() -> None:
    docs = load_corpus([CORPUS])
    assert sorted(d.id for d in docs) == sorted(p.stem for p in DOCS)


def test_chunk_ids_are_unique_well_formed_and_stable() -> None:
    first = chunk_corpus(load_corpus([CORPUS]))
    second = chunk_corpus(load_corpus([CORPUS]))
    ids = [c.id for c in first]
    assert len(ids) == len(set(ids)), "duplicate chunk ids"
    doc_ids = {p.stem for p in DOCS}
    for c in first:
        doc, _, n = c.id.partition("#")
        assert doc == c.doc_id and doc in doc_ids, c.id
        assert n.isdigit() and int(n) == c.position, c.id
    # every document yields at least one chunk, numbered from 0 without gaps
    for doc in doc_ids:
        positions = sorted(c.position for c in first if c.doc_id == doc)
        assert positions == list(range(len(positions))) and positions, doc
    assert ids == [c.id for c in second]
    assert [c.content_hash for c in first] == [c.content_hash for c in second]
    assert [c.text for c in first] == [c.text for c in second]
