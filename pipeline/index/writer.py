"""Writing a build's collections, for the embedded index in a child that holds no secrets.

Chroma saves its HNSW files with room for more elements than they hold, and writes that room
as it lay in memory: unused space in ``data_level0.bin`` has been seen holding fragments of
other documents and, in a test process, an API key. A process that has read notes or talked to a
model server could put them on disk that way. So the embedded build is written by a fresh
Python process that receives only the corpus rows and their vectors, with an environment that
carries no keys or tokens; the parent embeds, checks and commits. And the HNSW files are
persisted while writing, so that no reader writes them (``_hnsw_config``).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pipeline
from pipeline.errors import IndexError_
from pipeline.index.client import open_client

WRITE_BATCH = 64  # rows per upsert
# what the child needs from the environment: finding Python, the locale, temp space, the model
_PASSED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TEMP", "TMP", "SYSTEMROOT",
           "VIRTUAL_ENV", "DEBRIEF_EMBEDDING_MODEL")


@dataclass
class CollectionRows:
    """One collection of a build: created with ``metadata``, given ``final_metadata`` once
    every row is in (the fingerprint, which says the rows are complete)."""

    name: str
    metadata: dict[str, str]
    ids: list[str]
    vectors: Any  # float32 array, one row per id
    documents: list[str]
    metadatas: list[dict[str, Any]]
    final_metadata: dict[str, str] | None = None


def fill(client: Any, embedder: Any, collections: list[CollectionRows]) -> tuple[int, ...]:
    """Create the collections on ``client``, write every row, and return their counts."""
    counts = []
    for spec in collections:
        col = client.create_collection(spec.name, embedding_function=embedder,
                                       metadata=spec.metadata,
                                       configuration=_hnsw_config(len(spec.ids)))
        for start in range(0, len(spec.ids), WRITE_BATCH):
            end = start + WRITE_BATCH
            col.upsert(ids=spec.ids[start:end], embeddings=spec.vectors[start:end],
                       documents=spec.documents[start:end], metadatas=spec.metadatas[start:end])
        if spec.final_metadata is not None:
            col.modify(metadata=spec.final_metadata)
        counts.append(col.count())
    return tuple(counts)


def _hnsw_config(rows: int) -> dict[str, Any]:
    """Chroma persists its HNSW files every ``sync_threshold`` rows; while they were never
    persisted, every process that opens the collection writes them again (from its own
    memory, see above). Syncing at least once while writing keeps readers from writing."""
    every = max(1, min(100, rows))
    return {"hnsw": {"batch_size": every, "sync_threshold": every}}


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _PASSED}
    here = str(Path(pipeline.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = here  # the same pipeline package as the parent's, installed or not
    env["ORT_DISABLE_TELEMETRY"] = "1"
    return env


def write_embedded(folder: Path, collections: list[CollectionRows]) -> tuple[int, ...]:
    """Write ``collections`` into the build ``folder`` from a clean child process."""
    payload = pickle.dumps(collections, protocol=pickle.HIGHEST_PROTOCOL)
    # -P: not the current folder first on the path, where a user's own "pipeline" may be
    proc = subprocess.run([sys.executable, "-P", "-m", "pipeline.index.writer", str(folder),
                           str(os.getpid())],
                          input=payload, capture_output=True, env=child_env(), check=False)
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        why = lines[-1] if lines else f"exit status {proc.returncode}"
        raise IndexError_(f"writing the new index in {folder} failed ({why[:300]}); "
                          "run 'debrief index --rebuild'.")
    return tuple(json.loads(proc.stdout)["counts"])


def _die_with(parent: int) -> None:
    """Linux: end this child when the parent ends (a killed build must stop writing)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it ended before that took effect
        sys.exit(1)


def main(folder: str, parent: int) -> int:
    """The child: rows on stdin (a pickle from the parent, nobody else), counts on stdout."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # the parent reports an interrupt
    _die_with(parent)
    from pipeline.index.embedding import get_embedder

    collections: list[CollectionRows] = pickle.loads(sys.stdin.buffer.read())  # noqa: S301
    path = Path(folder)
    try:
        client = open_client(None, path.parent.parent, path=path)
        try:
            counts = fill(client, get_embedder(), collections)
        finally:
            with contextlib.suppress(Exception):
                client.close()  # everything on disk before the parent marks the build complete
    except Exception as exc:  # the parent turns this line into its error
        print(f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}", file=sys.stderr)
        return 1
    print(json.dumps({"counts": counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
