"""The Chroma index of the advice corpus: open it (embedded or server), build it, check it.

Two collections: ``<name>`` holds corpus chunks, ``<name>-cues`` holds each document's cue
lines. Both carry our embedding function in their configuration, so Chroma itself refuses a
query through another model, and the model's sha256 in their metadata.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pipeline.corpus import Chunk, chunk_corpus, load_corpus
from pipeline.errors import IndexError_

INDEX_FORMAT = "1"
DEFAULT_COLLECTION = "advice"
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,505}[a-zA-Z0-9]$")

Progress = Callable[[int, int], None]


@dataclass
class IndexReport:
    docs: int = 0
    chunks: int = 0
    cues: int = 0
    embedded: int = 0
    deleted: int = 0
    unchanged: int = 0
    fingerprint: str = ""
    location: str = ""
    rebuilt: bool = False
    docs_changed: list[str] = field(default_factory=list)


def check_collection_name(name: str) -> str:
    if not _NAME_RE.match(name) or ".." in name:
        raise IndexError_(
            f"collection name '{name}' is not valid: use 3-505 characters of letters, digits, "
            "'.', '_' or '-', starting and ending with a letter or digit."
        )
    return name


def open_client(chroma_url: str | None, home: Path, token: str | None = None) -> Any:
    """An embedded PersistentClient under DEBRIEF_HOME, or an HttpClient for a `chroma run` server."""
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    if not chroma_url:
        path = home / "chroma"
        try:
            return chromadb.PersistentClient(path=str(path), settings=settings)
        except Exception as exc:
            # chromadb caches a half-started system per path; drop it so a retry starts clean
            with contextlib.suppress(Exception):
                from chromadb.api.shared_system_client import SharedSystemClient

                SharedSystemClient._identifier_to_system.pop(str(path), None)
            raise IndexError_(
                f"the index at {path} cannot be opened ({type(exc).__name__}: {exc}); "
                "run 'debrief index --rebuild', which sets the broken folder aside."
            ) from None
    try:
        url = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
        port = url.port  # raises ValueError on a port that is not a number in 0-65535
    except ValueError:
        url, port = urlparse(""), None
    if url.scheme not in ("http", "https") or not url.hostname:
        raise IndexError_(f"Chroma URL '{chroma_url}' is not an http(s) URL like http://127.0.0.1:8000.")
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        client = chromadb.HttpClient(
            host=url.hostname,
            port=port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            headers=headers,
            settings=settings,
        )
        client.heartbeat()
    except Exception as exc:
        raise IndexError_(
            f"cannot reach the Chroma server at {chroma_url} ({type(exc).__name__}); "
            "is 'chroma run' up and the URL right?"
        ) from None
    return client


def corpus_fingerprint(corpus_dirs: list[Path]) -> str:
    """The fingerprint ``AdviceIndex.build`` would record for this corpus, without embedding.

    `debrief doctor` compares it with the stored one to tell whether the corpus changed.
    """
    from pipeline.index.embedding import model_sha256

    docs = load_corpus(corpus_dirs)
    hashes = [c.content_hash for c in chunk_corpus(docs)]
    hashes += [AdviceIndex._hash((f"{d.id}~{i}", cue.strip(), {"doc_id": d.id, "stance": d.stance}))
               for d in docs for i, cue in enumerate(d.cues) if isinstance(cue, str) and cue.strip()]
    return hashlib.sha256("\n".join(hashes).encode() + model_sha256().encode()).hexdigest()[:16]


class AdviceIndex:
    """Chunks and cues in Chroma, embedded with the local model."""

    def __init__(self, client: Any, name: str = DEFAULT_COLLECTION, location: str = "") -> None:
        self.client = client
        self.name = check_collection_name(name)
        self.location = location
        from pipeline.index.embedding import get_embedder

        self.embedder = get_embedder()
        self._rows: dict[str, tuple[dict[str, Any], Any]] = {}
        self._rows_version = ""
        self._rows_lock = threading.Lock()

    # -- collections ---------------------------------------------------------------------
    def _collection(self, suffix: str = "", create: bool = False) -> Any:
        name = self.name + suffix
        try:
            if create:
                return self.client.get_or_create_collection(
                    name, embedding_function=self.embedder, metadata=self._metadata()
                )
            return self.client.get_collection(name, embedding_function=self.embedder)
        except ValueError as exc:
            if "conflict" in str(exc).lower() or "embedding function" in str(exc).lower():
                raise IndexError_(
                    f"collection '{name}' was built with another embedding model; "
                    "run 'debrief index --rebuild' (or pick another --collection)."
                ) from None
            raise self._missing(name) from None
        except Exception as exc:
            if "does not exist" in str(exc) or "NotFound" in type(exc).__name__:
                raise self._missing(name) from None
            raise IndexError_(
                f"the index '{name}' cannot be read ({type(exc).__name__}: {exc}); "
                "run 'debrief index --rebuild'."
            ) from None

    def _missing(self, name: str) -> IndexError_:
        return IndexError_(f"no index '{name}' yet; run 'debrief index'.")

    def _metadata(self, fingerprint: str = "") -> dict[str, str]:
        from pipeline.index.embedding import MODEL_ID, model_sha256

        meta = {"model_id": MODEL_ID, "model_sha256": model_sha256(), "format": INDEX_FORMAT}
        if fingerprint:
            meta["fingerprint"] = fingerprint
        return meta

    def exists(self) -> bool:
        try:
            names = {getattr(c, "name", c) for c in self.client.list_collections()}
        except Exception as exc:
            raise IndexError_(f"the index cannot be listed ({type(exc).__name__}: {exc}).") from None
        return self.name in names and self.name + "-cues" in names

    def passages(self) -> Any:
        col = self._collection()
        self._check_model(col)
        return col

    def cues(self) -> Any:
        return self._collection("-cues")

    def _check_model(self, col: Any) -> None:
        from pipeline.index.embedding import model_sha256

        meta = col.metadata or {}
        if meta.get("model_sha256") != model_sha256():
            raise IndexError_(
                f"index '{self.name}' was built with embedding model "
                f"{str(meta.get('model_sha256', 'unknown'))[:12]}, not the installed "
                f"{model_sha256()[:12]}; run 'debrief index --rebuild'."
            )

    def fingerprint(self) -> str:
        """The corpus+model version of this index; batch state and eval reports record it."""
        if not self.exists():
            return ""
        return str((self.passages().metadata or {}).get("fingerprint", ""))

    def rows(self, col: Any, ids: list[str]) -> dict[str, tuple[dict[str, Any], Any]]:
        """Metadata and stored vector of these chunks, fetched once per index version.

        A query that ships every candidate's vector and metadata back for each of 60
        sentence queries spends most of its time copying them; retrieval queries for ids
        only and reads each chunk here once per run instead (same stored rows).
        """
        import numpy as np

        version = str((col.metadata or {}).get("fingerprint", ""))
        with self._rows_lock:
            if version != self._rows_version:
                self._rows, self._rows_version = {}, version
            cache = self._rows  # this version's rows, even if another thread moves on
            missing = [i for i in ids if i not in cache]
        if missing:
            got = col.get(ids=missing, include=["metadatas", "embeddings"])
            fetched = {cid: (m or {}, np.asarray(e, dtype=np.float32))
                       for cid, m, e in zip(got["ids"], got["metadatas"], got["embeddings"],
                                            strict=True)}
            with self._rows_lock:
                cache.update(fetched)
        return {i: cache[i] for i in ids if i in cache}

    def counts(self) -> tuple[int, int]:
        return self.passages().count(), self.cues().count()

    # -- building ------------------------------------------------------------------------
    def build(self, corpus_dirs: list[Path], *, rebuild: bool = False,
              progress: Progress | None = None) -> IndexReport:
        docs = load_corpus(corpus_dirs)
        chunks = chunk_corpus(docs)
        cue_rows = [
            (f"{d.id}~{i}", cue.strip(), {"doc_id": d.id, "stance": d.stance})
            for d in docs
            for i, cue in enumerate(d.cues)
            if isinstance(cue, str) and cue.strip()
        ]
        report = IndexReport(docs=len(docs), chunks=len(chunks), cues=len(cue_rows),
                             location=self.location, rebuilt=rebuild)
        chunk_rows = [(c.id, c.embed_text, self._chunk_meta(c)) for c in chunks]
        fingerprint = hashlib.sha256(
            "\n".join([r[2]["hash"] for r in chunk_rows] + [self._hash(r) for r in cue_rows]).encode()
            + self._metadata()["model_sha256"].encode()
        ).hexdigest()[:16]
        report.fingerprint = fingerprint

        if rebuild:
            for suffix in ("", "-cues"):
                with contextlib.suppress(Exception):  # absent is fine: we are starting over
                    self.client.delete_collection(self.name + suffix)
        elif self.exists():
            col = self._collection()
            if (col.metadata or {}).get("fingerprint") == fingerprint:
                report.unchanged = len(chunk_rows) + len(cue_rows)
                return report

        passages = self._collection(create=True)
        self._check_model(passages)
        cues = self._collection("-cues", create=True)
        total_todo: list[tuple[Any, list[tuple[str, str, dict[str, Any]]]]] = []
        for col, rows in ((passages, chunk_rows), (cues, cue_rows)):
            for r in rows:
                r[2].setdefault("hash", self._hash(r))
            existing = col.get(include=["metadatas"])
            have = {i: (m or {}).get("hash") for i, m in zip(existing["ids"], existing["metadatas"], strict=False)}
            wanted = {r[0] for r in rows}
            stale = sorted(set(have) - wanted)
            if stale:
                col.delete(ids=stale)
                report.deleted += len(stale)
            todo = [r for r in rows if have.get(r[0]) != r[2]["hash"]]
            report.unchanged += len(rows) - len(todo)
            total_todo.append((col, todo))
            report.docs_changed.extend(sorted({r[2]["doc_id"] for r in todo}))

        grand = sum(len(t) for _, t in total_todo)
        done = 0
        if progress:
            progress(0, grand)
        for col, todo in total_todo:
            for start in range(0, len(todo), 64):
                batch = todo[start : start + 64]
                vectors = self.embedder.embed([r[1] for r in batch])
                col.upsert(
                    ids=[r[0] for r in batch],
                    embeddings=vectors,
                    documents=[r[1] for r in batch],
                    metadatas=[r[2] for r in batch],
                )
                done += len(batch)
                report.embedded += len(batch)
                if progress:
                    progress(done, grand)
        passages.modify(metadata=self._metadata(fingerprint))
        report.docs_changed = sorted(set(report.docs_changed))
        return report

    @staticmethod
    def _hash(row: tuple[str, str, dict[str, Any]]) -> str:
        return hashlib.sha256(f"{row[1]}\x1f{row[2].get('stance', '')}".encode()).hexdigest()[:32]

    @staticmethod
    def _chunk_meta(c: Chunk) -> dict[str, Any]:
        return {
            "doc_id": c.doc_id,
            "title": c.title,
            "heading": c.heading,
            "stance": c.stance,
            "tags": ",".join(c.tags),
            "source": c.source[:500],
            "position": c.position,
            "text": c.text,
            "hash": c.content_hash,
        }
