"""`debrief index`: incremental embedding, refusing a foreign index, clear errors."""

from __future__ import annotations

import json
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

from pipeline.corpus import chunk_doc, load_doc

DOC_ID = "test-snack-advice"


def index_json(*args: object) -> dict:
    result = run_cli("index", "--json", *args)
    assert result.exit_code == 0, describe(result)
    return json.loads(result.stdout)


def doc_rows(path: Path) -> tuple[int, int, dict[str, str]]:
    """(chunks, cue lines, chunk id -> content hash) of one advice document."""
    doc = load_doc(path)
    chunks = chunk_doc(doc)
    return len(chunks), len(doc.cues), {c.id: c.content_hash for c in chunks}


def test_session_build_embedded_every_chunk_and_cue(built_index: BuiltIndex) -> None:
    assert built_index.docs >= 30
    assert built_index.chunks > built_index.docs
    assert built_index.cues >= 4 * built_index.docs
    assert built_index.embedded == built_index.chunks + built_index.cues
    assert len(built_index.fingerprint) == 16


def test_unchanged_corpus_embeds_nothing(indexed_home: Path, built_index: BuiltIndex) -> None:
    report = index_json()
    assert report["embedded"] == 0
    assert report["deleted"] == 0
    assert report["unchanged"] == built_index.chunks + built_index.cues
    assert report["fingerprint"] == built_index.fingerprint
    assert report["location"] == str(indexed_home / "chroma")


def test_plain_output_summarises_the_run(indexed_home: Path, built_index: BuiltIndex) -> None:
    result = run_cli("index")
    assert result.exit_code == 0, describe(result)
    out = result.stdout
    assert f"{built_index.docs} documents" in out
    assert "embedded 0" in out and built_index.fingerprint in out


def test_user_corpus_add_change_remove(indexed_home: Path, tmp_path: Path,
                                       built_index: BuiltIndex) -> None:
    from pipeline.index.open import open_index
    from pipeline.settings import IndexSettings

    user = tmp_path / "my-advice"
    path = write_advice_doc(user, DOC_ID)
    n_chunks, n_cues, hashes = doc_rows(path)
    assert n_chunks >= 1 and n_cues == 4

    # added: exactly this document's chunks and cue lines are embedded
    added = index_json("--corpus", user)
    assert added["embedded"] == n_chunks + n_cues
    assert added["docs"] == built_index.docs + 1
    assert added["docs_changed"] == [DOC_ID]
    assert added["deleted"] == 0
    assert added["fingerprint"] != built_index.fingerprint

    # the same again: nothing to do
    again = index_json("--corpus", user)
    assert again["embedded"] == 0 and again["docs_changed"] == []

    # changed: only the changed chunks of this document are embedded again
    write_advice_doc(user, DOC_ID, extra="\n## One more thing\n\nIf the perks vanish after "
                     "you join, that says something as well; ask how long they have existed.\n")
    m_chunks, m_cues, new_hashes = doc_rows(path)
    changed = {i for i, h in new_hashes.items() if hashes.get(i) != h}
    assert changed, "the edit should change at least one chunk"
    report = index_json("--corpus", user)
    assert report["docs_changed"] == [DOC_ID]
    assert report["embedded"] == len(changed)
    assert report["deleted"] == len(set(hashes) - set(new_hashes))
    assert report["unchanged"] == report["chunks"] + report["cues"] - len(changed)

    idx = open_index(IndexSettings(collection="advice"))
    got = idx.passages().get(where={"doc_id": DOC_ID}, include=["metadatas"])
    assert sorted(got["ids"]) == sorted(new_hashes)
    assert {m["hash"] for m in got["metadatas"]} == set(new_hashes.values())

    # removed: its chunks and cue lines are deleted, nothing is embedded
    path.unlink()
    removed = index_json("--corpus", user)
    assert removed["deleted"] == m_chunks + m_cues
    assert removed["embedded"] == 0
    assert removed["fingerprint"] == built_index.fingerprint
    assert idx.passages().get(where={"doc_id": DOC_ID})["ids"] == []
    assert idx.cues().get(where={"doc_id": DOC_ID})["ids"] == []


def test_rebuild_embeds_everything(tmp_path: Path) -> None:
    # a small user-only collection keeps this fast; the code path is the same for the corpus
    user = tmp_path / "mine"
    path = write_advice_doc(user, DOC_ID)
    n_chunks, n_cues, _ = doc_rows(path)
    args = ("--no-default-corpus", "--corpus", user, "--collection", "mine")
    first = index_json(*args)
    assert first["docs"] == 1 and first["rebuilt"] is False
    assert first["embedded"] == n_chunks + n_cues
    assert index_json(*args)["embedded"] == 0
    rebuilt = index_json(*args, "--rebuild")
    assert rebuilt["rebuilt"] is True
    assert rebuilt["embedded"] == n_chunks + n_cues
    assert rebuilt["deleted"] == 0
    assert rebuilt["fingerprint"] == first["fingerprint"]
    assert index_json(*args)["embedded"] == 0


def test_collections_are_independent(indexed_home: Path, tmp_path: Path,
                                     built_index: BuiltIndex) -> None:
    user = tmp_path / "mine"
    write_advice_doc(user, DOC_ID)
    index_json("--no-default-corpus", "--corpus", user, "--collection", "mine")
    # the shipped index in the default collection is untouched
    report = index_json()
    assert report["embedded"] == 0 and report["fingerprint"] == built_index.fingerprint


def test_no_default_corpus_without_corpus_is_an_error() -> None:
    assert_one_line_error(run_cli("index", "--no-default-corpus"), "--corpus")


def test_invalid_user_document_is_one_line(tmp_path: Path) -> None:
    user = tmp_path / "bad"
    user.mkdir()
    (user / "oops.md").write_text("---\ntitle: no id here\n---\n# Oops\n", encoding="utf-8")
    assert_one_line_error(run_cli("index", "--corpus", user), "oops.md", "id")


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    user = tmp_path / "dup"
    write_advice_doc(user, "growth-and-learning")
    assert_one_line_error(run_cli("index", "--corpus", user), "growth-and-learning", "twice")


@pytest.mark.parametrize("name", ["a", "bad name!", "-advice", "advice-", "a..b"])
@pytest.mark.parametrize("command", ["index", "reflect"])
def test_invalid_collection_name(command: str, name: str) -> None:
    args = ["index"] if command == "index" else ["reflect", NOTES_CLEAR / "keep-01.md"]
    assert_one_line_error(run_cli(*args, "--collection", name), "collection name", "not valid")


def _foreign_collections(home: Path, *, how: str) -> None:
    """`advice` and `advice-cues` as someone else's tool would have made them."""
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(home / "chroma"),
                                       settings=Settings(anonymized_telemetry=False))
    if how == "other-embedding-function":
        from chromadb.utils.embedding_functions import DefaultEmbeddingFunction

        ef, meta = DefaultEmbeddingFunction(), {"model_id": "someone-else"}
    else:  # our embedding function, but an index recorded as built with another model file
        from pipeline.index.embedding import get_embedder

        ef, meta = get_embedder(), {"model_id": "x", "model_sha256": "0" * 64, "format": "1"}
    for name in ("advice", "advice-cues"):
        col = client.create_collection(name, embedding_function=ef, metadata=meta)
        col.add(ids=["other#0"], embeddings=[[0.05] * 384], documents=["some text"],
                metadatas=[{"doc_id": "other", "stance": "keep", "hash": "x"}])
    client.close()


@pytest.mark.parametrize("how", ["other-embedding-function", "other-model-sha256"])
def test_index_built_with_another_model_is_refused(debrief_env: Path, how: str) -> None:
    _foreign_collections(debrief_env, how=how)
    result = run_cli("reflect", NOTES_CLEAR / "keep-01.md", "--json")
    line = assert_one_line_error(result, "rebuild")
    assert "advice" in line
    # `debrief index` without --rebuild refuses too rather than mixing two models
    assert_one_line_error(run_cli("index"), "rebuild")


def test_corrupt_index_is_one_line_error(debrief_env: Path) -> None:
    chroma = debrief_env / "chroma"
    chroma.mkdir(parents=True)
    (chroma / "chroma.sqlite3").write_bytes(b"this is not a database\n" * 200)
    line = assert_one_line_error(run_cli("reflect", NOTES_CLEAR / "keep-01.md"), "cannot be opened")
    assert str(chroma) in line
    assert_one_line_error(run_cli("index"), "cannot be opened")


@pytest.mark.slow  # make test-quick leaves it out (README, Development)
def test_corrupt_index_advice_works(debrief_env: Path) -> None:
    chroma = debrief_env / "chroma"
    chroma.mkdir(parents=True)
    (chroma / "chroma.sqlite3").write_bytes(b"this is not a database\n" * 200)
    result = run_cli("index", "--rebuild", "--json")
    assert result.exit_code == 0, describe(result)
    assert json.loads(result.stdout)["embedded"] > 0


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:8000", "http://"])
def test_chroma_url_must_be_http(url: str) -> None:
    assert_one_line_error(run_cli("index", "--chroma-url", url), "not an http(s) URL")


def test_unreachable_chroma_server(unused_port: int) -> None:
    url = f"http://127.0.0.1:{unused_port}"
    line = assert_one_line_error(run_cli("index", "--chroma-url", url), "cannot reach",
                                 "chroma run")
    assert url in line


def test_cached_chunk_rows_follow_the_index_version(tmp_path: Path) -> None:
    """Retrieval reads each chunk's row once per index version; an edited corpus is read anew."""
    from pipeline.index.open import open_index
    from pipeline.settings import IndexSettings

    user = tmp_path / "mine"
    path = write_advice_doc(user, DOC_ID)
    args = ("--no-default-corpus", "--corpus", user, "--collection", "mine")
    index_json(*args)
    idx = open_index(IndexSettings(collection="mine"))

    def stored() -> dict[str, str]:
        got = idx.passages().get(include=["metadatas"])
        return {i: m["hash"] for i, m in zip(got["ids"], got["metadatas"], strict=True)}

    def cached(ids: list[str]) -> dict[str, str]:
        rows = idx.rows(idx.passages(), ids)
        assert all(vec.shape == (384,) for _, vec in rows.values())
        return {i: m["hash"] for i, (m, _) in rows.items()}

    before = stored()
    assert cached(sorted(before)) == before
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("cost an employer little", "cost an employer very little"),
                    encoding="utf-8")
    index_json(*args)
    after = stored()
    assert any(before.get(i) not in (None, h) for i, h in after.items()), \
        "the edit should change a chunk that keeps its id"
    assert cached(sorted(after)) == after
    assert cached(["no-such-chunk#9"]) == {}
