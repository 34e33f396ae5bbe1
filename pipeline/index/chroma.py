"""The Chroma index of the advice corpus: open it (embedded or server), build it, check it.

Two collections: ``<name>`` holds corpus chunks, ``<name>-cues`` holds each document's cue
lines. Both carry our embedding function in their configuration, so Chroma itself refuses a
query through another model, and the model's sha256 in their metadata.

Every build goes into a fresh place and becomes current only once complete (see ``store.py``):
an interrupted build is never read, and the next use builds again. Readers follow the pointer,
so an ``AdviceIndex`` held across a build sees the new one at its next ``passages()``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.corpus import Chunk, chunk_corpus, load_corpus
from pipeline.errors import IndexError_
from pipeline.home import server_lock_path
from pipeline.index import store, writer
from pipeline.index.client import open_client
from pipeline.index.store import Current, Notify, Pin

INDEX_FORMAT = "2"
DEFAULT_COLLECTION = "advice"
# 512 characters at most in Chroma, and a server build adds ".<build id>-cues" (29)
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,479}[a-zA-Z0-9]$")
UPSERT_BATCH = 64  # texts embedded at a time
COPY_BATCH = 500  # stored rows copied into a new build at a time

Progress = Callable[[int, int], None]
Row = tuple[str, str, dict[str, Any]]


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
            f"collection name '{name}' is not valid: use 3-481 characters of letters, digits, "
            "'.', '_' or '-', starting and ending with a letter or digit."
        )
    return name


def _corpus_rows(corpus_dirs: list[Path]) -> tuple[int, list[Row], list[Row], str]:
    """Documents, chunk rows, cue rows and the fingerprint a build of them records."""
    from pipeline.index.embedding import model_sha256

    docs = load_corpus(corpus_dirs)
    chunk_rows = [(c.id, c.embed_text, AdviceIndex._chunk_meta(c)) for c in chunk_corpus(docs)]
    cue_rows = [
        (f"{d.id}~{i}", cue.strip(), {"doc_id": d.id, "stance": d.stance})
        for d in docs
        for i, cue in enumerate(d.cues)
        if isinstance(cue, str) and cue.strip()
    ]
    for r in cue_rows:
        r[2]["hash"] = AdviceIndex._hash(r)
    fingerprint = hashlib.sha256(
        "\n".join([r[2]["hash"] for r in chunk_rows] + [r[2]["hash"] for r in cue_rows]).encode()
        + model_sha256().encode()
    ).hexdigest()[:16]
    return len(docs), chunk_rows, cue_rows, fingerprint


def corpus_fingerprint(corpus_dirs: list[Path]) -> str:
    """The fingerprint ``AdviceIndex.build`` would record for this corpus, without embedding.

    `debrief doctor` compares it with the stored one to tell whether the corpus changed.
    """
    return _corpus_rows(corpus_dirs)[3]


@dataclass
class _Opened:
    """One complete build, opened: what retrieval reads."""

    build: str  # "" for the layout before builds
    fingerprint: str
    client: Any
    passages: Any
    cues: Any
    pin: Pin | None = None
    close_client: bool = False


def _release(opened: list[_Opened]) -> None:
    for o in opened:
        if o.close_client:
            with contextlib.suppress(Exception):
                o.client.close()
        if o.pin is not None:
            o.pin.release()


class AdviceIndex:
    """Chunks and cues in Chroma, embedded with the local model.

    ``client`` is a server's HttpClient; for the embedded index pass None and ``root``, the
    folder holding the builds (``DEBRIEF_HOME/chroma``)."""

    def __init__(self, client: Any, name: str = DEFAULT_COLLECTION, location: str = "", *,
                 root: Path | None = None, home: Path | None = None) -> None:
        self._server = client
        self.root = root
        self.home = home or (root.parent if root else None)
        self.name = check_collection_name(name)
        self.location = location
        from pipeline.index.embedding import get_embedder

        self.embedder = get_embedder()
        self._rows: dict[str, tuple[dict[str, Any], Any]] = {}
        self._rows_version = ""
        self._rows_lock = threading.Lock()
        self._lock = threading.RLock()
        self._opened: _Opened | None = None
        self._all: list[_Opened] = []  # kept open for threads still reading an older build
        self._finalizer = weakref.finalize(self, _release, self._all)
        self._finalizer.atexit = False  # at exit the process lets go of everything anyway

    @property
    def embedded(self) -> bool:
        return self._server is None

    @property
    def client(self) -> Any:
        """The server's client, or the embedded client of the build in use (None before any)."""
        if not self.embedded:
            return self._server
        with self._lock:
            if self._opened is None:
                with contextlib.suppress(IndexError_):
                    self._refresh()
            return self._opened.client if self._opened else None

    def close(self) -> None:
        """Release every build this index opened (the CLI lets the process end instead)."""
        with self._lock:
            _release(self._all)
            self._all.clear()
            self._opened = None

    # -- what is current -------------------------------------------------------------------
    def _get(self, client: Any, name: str, *, missing_ok: bool = False) -> Any:
        try:
            return client.get_collection(name, embedding_function=self.embedder)
        except ValueError as exc:
            if "conflict" in str(exc).lower() or "embedding function" in str(exc).lower():
                raise IndexError_(
                    f"collection '{name}' was built with another embedding model; "
                    "run 'debrief index --rebuild' (or pick another --collection)."
                ) from None
            if missing_ok:
                return None
            raise self._missing(name) from None
        except Exception as exc:
            if "does not exist" in str(exc) or "NotFound" in type(exc).__name__:
                if missing_ok:
                    return None
                raise self._missing(name) from None
            raise IndexError_(
                f"the index '{name}' cannot be read ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:200]}); run 'debrief index --rebuild'."
            ) from None

    def _missing(self, name: str) -> IndexError_:
        return IndexError_(f"no index '{name}' yet; run 'debrief index'.")

    def _metadata(self, fingerprint: str = "") -> dict[str, str]:
        from pipeline.index.embedding import MODEL_ID, model_sha256

        meta = {"model_id": MODEL_ID, "model_sha256": model_sha256(), "format": INDEX_FORMAT}
        if fingerprint:
            meta["fingerprint"] = fingerprint
        return meta

    def _check_model(self, col: Any) -> None:
        from pipeline.index.embedding import model_sha256

        meta = col.metadata or {}
        if meta.get("model_sha256") != model_sha256():
            raise IndexError_(
                f"index '{self.name}' was built with embedding model "
                f"{str(meta.get('model_sha256', 'unknown'))[:12]}, not the installed "
                f"{model_sha256()[:12]}; run 'debrief index --rebuild'."
            )

    def _pointer(self) -> Any:
        """A server's pointer collection (or the passages of the layout before builds)."""
        return self._get(self._server, self.name, missing_ok=True)

    def _resolve(self) -> Current:
        """What the pointer names, without opening it."""
        if self.embedded:
            assert self.root is not None
            return store.resolve_embedded(self.root, self.name)
        ptr = self._pointer()
        if ptr is None:
            return Current("missing")
        meta = ptr.metadata or {}
        self._check_model(ptr)
        if not meta.get("build"):
            return Current("legacy")
        counts = (int(meta.get("chunks", -1)), int(meta.get("cues", -1)))
        return Current("complete", build=str(meta["build"]),
                       fingerprint=str(meta.get("fingerprint", "")), counts=counts)

    def _open(self, cur: Current) -> _Opened | Current | None:
        """Open what ``cur`` names: the opened build, or why it cannot be used (partial), or
        None when it went away while opening (read the pointer again)."""
        if self.embedded:
            return self._open_embedded(cur)
        if cur.status == "legacy":
            passages = self._pointer()
            if passages is None:
                return None
            cues = self._get(self._server, self.name + "-cues", missing_ok=True)
            return self._legacy(passages, cues, self._server, None)
        prefix = f"{self.name}.{cur.build}"
        passages = self._get(self._server, prefix, missing_ok=True)
        cues = self._get(self._server, prefix + "-cues", missing_ok=True)
        if passages is None or cues is None:
            return Current("partial", build=cur.build,
                           detail=f"the build its pointer names ({cur.build}) is gone")
        self._check_model(passages)
        return _Opened(cur.build, cur.fingerprint, self._server, passages, cues)

    def _legacy(self, passages: Any, cues: Any, client: Any, pin: Pin | None) -> _Opened | Current:
        self._check_model(passages)
        fingerprint = str((passages.metadata or {}).get("fingerprint", ""))
        if cues is None or not fingerprint:
            if pin is not None:
                pin.release()
            return Current("partial", detail="its last build did not finish (no fingerprint)")
        return _Opened("", fingerprint, client, passages, cues, pin, close_client=False)

    def _open_embedded(self, cur: Current) -> _Opened | Current | None:
        assert cur.path is not None and self.home is not None
        folder = cur.path
        if cur.status == "legacy":
            with contextlib.suppress(OSError):
                (folder / store.READERS).touch()
        pin = Pin.take(folder)
        if pin is None:
            return None  # being removed: the pointer has moved on
        if cur.status == "complete" and not (folder / store.MARKER).is_file():
            pin.release()
            return None
        damage = store.damaged_vectors(folder, cur.vectors) if cur.vectors else None
        if damage:
            pin.release()
            return Current("partial", build=cur.build, detail=damage)
        try:
            with store.opening(folder):
                client = open_client(None, self.home, path=folder)
                passages = self._get(client, self.name, missing_ok=True)
                cues = self._get(client, self.name + "-cues", missing_ok=True)
                if cur.status == "legacy":
                    if passages is None:
                        pin.release()
                        return Current("missing")
                    opened = self._legacy(passages, cues, client, pin)
                    if isinstance(opened, _Opened):
                        _ = (opened.passages.count(), opened.cues.count())  # load both, now
                    return opened
                if passages is None or cues is None:
                    pin.release()
                    return Current("partial", build=cur.build,
                                   detail=f"the build {cur.build} lacks a collection")
                self._check_model(passages)
                counts = (passages.count(), cues.count())  # loads both, in our turn
        except BaseException:
            pin.release()
            raise
        if cur.counts is not None and counts != cur.counts:
            pin.release()
            return Current("partial", build=cur.build,
                           detail=f"the build {cur.build} holds {counts[0]} passages and "
                                  f"{counts[1]} cue lines, not the {cur.counts[0]} and "
                                  f"{cur.counts[1]} it recorded")
        return _Opened(cur.build, cur.fingerprint, client, passages, cues, pin, close_client=True)

    def _refresh(self) -> Current:
        """Follow the pointer: open the build it names unless already open. Returns what is
        current (status complete when ``self._opened`` is it)."""
        for _ in range(100):
            cur = self._resolve()
            if cur.status not in ("complete", "legacy"):
                return cur
            if self._opened is not None and cur.status == "complete" and (
                    self._opened.build, self._opened.fingerprint) == (cur.build, cur.fingerprint):
                return cur
            if self._opened is not None and cur.status == "legacy" and self._opened.build == "":
                return Current("complete", fingerprint=self._opened.fingerprint)
            opened = self._open(cur)
            if opened is None:
                time.sleep(0.05)
                continue
            if isinstance(opened, Current):
                return opened
            self._opened = opened
            self._all.append(opened)
            return Current("complete", build=opened.build, fingerprint=opened.fingerprint,
                           counts=cur.counts)
        raise IndexError_(f"the index '{self.name}' in {self.location} keeps changing under "
                          "this run; try again.")

    def state(self) -> Current:
        """complete, missing or partial (with why). Raises for an index that cannot be read or
        that another model built."""
        with self._lock:
            return self._refresh()

    def exists(self) -> bool:
        """A complete index is there (a partial one does not count)."""
        return self.state().status == "complete"

    def _use(self) -> _Opened:
        with self._lock:
            cur = self._refresh()
            if self._opened is not None and cur.status != "complete":
                return self._opened  # keep reading what we opened rather than nothing
            if self._opened is None:
                if cur.status == "partial":
                    raise IndexError_(
                        f"the index '{self.name}' in {self.location} is incomplete "
                        f"({cur.detail}); run 'debrief index' to build it again.")
                raise self._missing(self.name)
            return self._opened

    def passages(self) -> Any:
        """The passages of the current build (following the pointer if it moved)."""
        return self._use().passages

    def cues(self) -> Any:
        """The cue lines of the build the last ``passages()`` used."""
        with self._lock:
            if self._opened is not None:
                return self._opened.cues
        return self._use().cues

    def fingerprint(self) -> str:
        """The corpus+model version of this index; batch state and eval reports record it."""
        with self._lock:
            if self._opened is None and self._refresh().status != "complete":
                return ""
            return self._opened.fingerprint if self._opened else ""

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
        opened = self._use()
        return opened.passages.count(), opened.cues.count()

    # -- building ------------------------------------------------------------------------
    def build(self, corpus_dirs: list[Path], *, rebuild: bool = False,
              progress: Progress | None = None, notify: Notify | None = None,
              first_use: bool = False, wait: float = store.LOCK_WAIT) -> IndexReport:
        """Build the index into a fresh place and make it current once complete.

        Unchanged passages are copied from the current build instead of embedded again
        (``rebuild`` embeds everything). ``first_use``: only when there is no complete index
        (another process may have built one while this one waited for the lock)."""
        n_docs, chunk_rows, cue_rows, fingerprint = _corpus_rows(corpus_dirs)
        report = IndexReport(docs=n_docs, chunks=len(chunk_rows), cues=len(cue_rows),
                             location=self.location, rebuilt=rebuild, fingerprint=fingerprint)
        total = len(chunk_rows) + len(cue_rows)
        if not rebuild:
            cur = self.state()
            if cur.status == "complete" and (first_use or cur.fingerprint == fingerprint):
                report.unchanged, report.fingerprint = total, cur.fingerprint
                if not first_use:
                    self._tidy()
                return report
        with self._build_lock(notify, wait):
            cur = Current("missing") if rebuild else self.state()
            if cur.status == "complete" and (first_use or cur.fingerprint == fingerprint):
                report.unchanged, report.fingerprint = total, cur.fingerprint
                return report  # built by another process while this one waited
            if first_use and notify:
                notify(f"No advice index yet in {self.location}: building it now (one time "
                       "only)..." if cur.status == "missing" else
                       f"The advice index in {self.location} is incomplete ({cur.detail}); "
                       "building it again now...")
            reuse = self._stored_rows() if cur.status == "complete" else {}
            if rebuild and self.embedded:
                self._set_unreadable_legacy_aside(notify)
            self._build_new(chunk_rows, cue_rows, fingerprint, reuse, report, progress)
        report.docs_changed = sorted(set(report.docs_changed))
        with self._lock:
            self._refresh()
        return report

    def _tidy(self) -> None:
        """Remove builds nobody uses any more (killed ones, old ones whose readers are gone)
        when no build is under way; an unchanged `debrief index` does this."""
        if not self.embedded:
            return
        assert self.root is not None
        pointed = store.pointed_builds(self.root)
        if not (any(d.name not in pointed for d in store.builds(self.root))
                or store.legacy_present(self.root)):
            return
        with (contextlib.suppress(IndexError_),  # a build is under way: it tidies up itself
              store.build_lock(self.root / store.BUILD_LOCK, self.location, None, wait=0)):
            store.remove_unused(self.root, self._legacy_collections)

    def _build_lock(self, notify: Notify | None, wait: float) -> Any:
        if self.embedded:
            assert self.root is not None
            store.check_root(self.root)
            return store.build_lock(self.root / store.BUILD_LOCK, self.location, notify, wait)
        return store.build_lock(server_lock_path(self.location), self.location, notify, wait)

    def _stored_rows(self) -> dict[str, dict[str, tuple[str, Any]]]:
        """id -> (hash, vector) of the current build, by collection suffix, to copy over."""
        import numpy as np

        opened = self._opened
        if opened is None:
            return {}
        out: dict[str, dict[str, tuple[str, Any]]] = {}
        for suffix, col in (("", opened.passages), ("-cues", opened.cues)):
            have: dict[str, tuple[str, Any]] = {}
            offset = 0
            while True:
                got = col.get(include=["metadatas", "embeddings"], limit=COPY_BATCH,
                              offset=offset)
                for cid, m, e in zip(got["ids"], got["metadatas"], got["embeddings"],
                                     strict=True):
                    have[cid] = (str((m or {}).get("hash", "")), np.asarray(e, dtype=np.float32))
                if len(got["ids"]) < COPY_BATCH:
                    break
                offset += COPY_BATCH
            out[suffix] = have
        return out

    def _build_new(self, chunk_rows: list[Row], cue_rows: list[Row], fingerprint: str,
                   reuse: dict[str, dict[str, tuple[str, Any]]], report: IndexReport,
                   progress: Progress | None) -> None:
        from pipeline.index.embedding import model_sha256

        rebuild = report.rebuilt
        if self.embedded:
            assert self.root is not None
            build, folder = store.start_build(self.root, self.name)
            names = (self.name, self.name + "-cues")
        else:
            build = store.new_build_id()
            names = (f"{self.name}.{build}", f"{self.name}.{build}-cues")
        meta = {**self._metadata(), "build": build}
        collections = self._vectors(((names[0], chunk_rows, reuse.get("", {})),
                                     (names[1], cue_rows, reuse.get("-cues", {}))),
                                    meta, report, progress)
        collections[0].final_metadata = {**meta, "fingerprint": fingerprint}
        if self.embedded:
            counts = writer.write_embedded(folder, collections)
        else:
            counts = writer.fill(self._server, self.embedder, collections)
        if counts != (len(chunk_rows), len(cue_rows)):
            raise IndexError_(
                f"the new index in {self.location} holds {counts[0]} passages and "
                f"{counts[1]} cue lines, not {len(chunk_rows)} and {len(cue_rows)}; "
                "run 'debrief index --rebuild'.")
        if self.embedded:
            assert self.root is not None
            store.commit_build(self.root, self.name, build, fingerprint, counts, model_sha256())
            store.remove_unused(self.root, self._legacy_collections)
        else:
            self._commit_server(build, fingerprint, counts, rebuild)

    def _vectors(self, plan: tuple[tuple[str, list[Row], dict[str, tuple[str, Any]]], ...],
                 meta: dict[str, str], report: IndexReport,
                 progress: Progress | None) -> list[writer.CollectionRows]:
        """Every row with its vector: copied from the current build when unchanged, else
        embedded (the slow part, which ``progress`` follows)."""
        import numpy as np

        vectors: list[dict[str, Any]] = []
        todo_all: list[tuple[dict[str, Any], list[Row]]] = []
        for _, rows, have in plan:
            report.deleted += len(set(have) - {r[0] for r in rows})
            got = {r[0]: have[r[0]][1] for r in rows
                   if r[0] in have and have[r[0]][0] == r[2]["hash"]}
            todo = [r for r in rows if r[0] not in got]
            report.unchanged += len(got)
            report.docs_changed.extend(r[2]["doc_id"] for r in todo)
            vectors.append(got)
            todo_all.append((got, todo))
        grand = sum(len(t) for _, t in todo_all)
        done = 0
        if progress:
            progress(0, grand)
        for got, todo in todo_all:
            for start in range(0, len(todo), UPSERT_BATCH):
                batch = todo[start:start + UPSERT_BATCH]
                for row, vec in zip(batch, self.embedder.embed([r[1] for r in batch]),
                                    strict=True):
                    got[row[0]] = vec
                done += len(batch)
                report.embedded += len(batch)
                if progress:
                    progress(done, grand)
        out = []
        for (name, rows, _), got in zip(plan, vectors, strict=True):
            out.append(writer.CollectionRows(
                name=name, metadata=meta, ids=[r[0] for r in rows],
                vectors=(np.stack([np.asarray(got[r[0]], dtype=np.float32) for r in rows])
                         if rows else np.zeros((0, 0), dtype=np.float32)),
                documents=[r[1] for r in rows], metadatas=[r[2] for r in rows]))
        return out

    # -- the embedded layout before builds -------------------------------------------------
    def _legacy_collections(self) -> set[str] | None:
        """The collections (without their "-cues" twin) of the old single-folder layout, read
        from its SQLite file; None when that file cannot be read."""
        import sqlite3

        assert self.root is not None
        db = self.root / "chroma.sqlite3"
        try:
            con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=2)
            try:
                names = {r[0] for r in con.execute("SELECT name FROM collections")}
            finally:
                con.close()
        except sqlite3.Error:
            return None
        return {n for n in names if not (n.endswith("-cues") and n[:-5] in names)}

    def _set_unreadable_legacy_aside(self, notify: Notify | None) -> None:
        assert self.root is not None
        if store.legacy_present(self.root) and self._legacy_collections() is None:
            aside = store.set_legacy_aside(self.root)
            if notify:
                notify(f"The index files in {self.root} could not be read; moved them to "
                       f"{aside} and building a new index.")

    # -- a server: the pointer collection ----------------------------------------------------
    def _commit_server(self, build: str, fingerprint: str, counts: tuple[int, int],
                       rebuild: bool) -> None:
        try:
            ptr, foreign = self._pointer(), False
        except IndexError_:  # <name> made with another embedding function
            if not rebuild:
                raise
            ptr, foreign = None, True
        previous = ""
        if foreign or (ptr is not None and not (ptr.metadata or {}).get("build")):
            # <name> held passages (the layout before builds, or someone else's): it becomes
            # the pointer
            for name in (self.name + "-cues", self.name):
                with contextlib.suppress(Exception):
                    self._server.delete_collection(name)
            ptr = None
        elif ptr is not None:
            previous = str((ptr.metadata or {}).get("build", ""))
        meta = {**self._metadata(fingerprint), "build": build, "previous": previous,
                "chunks": counts[0], "cues": counts[1]}
        if ptr is None:
            ptr = self._server.get_or_create_collection(
                self.name, embedding_function=self.embedder, metadata=meta)
        ptr.modify(metadata=meta)
        keep = {build, previous}
        prefix = self.name + "."
        with contextlib.suppress(Exception):  # tidying up; never a reason to fail the build
            for col in self._server.list_collections():
                name = getattr(col, "name", col)
                if not name.startswith(prefix):
                    continue
                other = name[len(prefix):].removesuffix("-cues")
                age = store.build_age(other)
                if other not in keep and age is not None and age > store.SERVER_KEEP_SECONDS:
                    self._server.delete_collection(name)

    @staticmethod
    def _hash(row: Row) -> str:
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
