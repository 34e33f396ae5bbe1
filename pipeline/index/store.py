"""Where the index's builds live, which one is current, and who may build.

A build is written where no reader looks (a new folder for the embedded index, new collection
names on a Chroma server) and becomes current only once it is complete, by replacing a small
pointer. A reader therefore sees the last complete build or the next one, never half of one; a
build killed half way is never pointed to, and the next build removes it.

Embedded, under ``DEBRIEF_HOME/chroma``::

    <collection>.current.json   the pointer: {"build": ID, "fingerprint": FP}, replaced atomically
    <ID>/                       one build: a Chroma folder holding <collection> and <collection>-cues
    <ID>/complete.json          written last: the completeness marker, with the fingerprint and
                                the sha256 of each vector file (readers never write those)
    <ID>/.readers               every process using the build holds a shared lock on it
    .lock                       held by whoever builds; a reader without a complete index waits on it

An old build is removed by the next build once no process holds its ``.readers`` lock (a killed
process holds none), so a batch that opened it hours ago keeps reading it to the end.

On a server the pointer is the collection ``<collection>`` itself (no records; its metadata names
the build) and a build is the pair ``<collection>.<ID>`` and ``<collection>.<ID>-cues``. Readers on
other machines cannot be seen from here, so the current and the previous build are kept, and any
other build once it is an hour old (a build takes seconds to minutes).

The layout before builds (one Chroma folder straight under ``chroma/``, or ``<collection>`` holding
the passages on a server) is still read while nothing points elsewhere; it counts as complete only
when its passages carry the fingerprint that a finished build wrote last.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import IndexError_
from pipeline.files import write_text

Notify = Callable[[str], None]

MARKER = "complete.json"
READERS = ".readers"
OPEN_LOCK = ".open.lock"
BUILD_LOCK = ".lock"
POINTER_SUFFIX = ".current.json"
LOCK_WAIT = 900.0  # seconds a run waits for another's build before giving up
OPEN_WAIT = 120.0  # seconds a run waits for its turn to open a build (each takes well under 1 s)
SERVER_KEEP_SECONDS = 3600.0
_BUILD_ID = re.compile(r"^b(\d{8}t\d{6})-[0-9a-f]{6}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_LEGACY_FILES = ("chroma.sqlite3", "chroma.sqlite3-wal", "chroma.sqlite3-shm",
                 "chroma.sqlite3-journal")

try:  # shared locks: POSIX only; elsewhere old builds are simply kept
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def new_build_id() -> str:
    return time.strftime("b%Y%m%dt%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def build_age(build_id: str) -> float | None:
    m = _BUILD_ID.match(build_id)
    if not m:
        return None
    try:
        started = calendar.timegm(time.strptime(m.group(1), "%Y%m%dt%H%M%S"))
    except ValueError:
        return None
    return time.time() - started


def pointer_name(collection: str) -> str:
    """The pointer's file name; a collection name may be longer than a file name can be."""
    if len(collection) <= 200:
        return collection + POINTER_SUFFIX
    import hashlib

    return f"{collection[:150]}-{hashlib.sha256(collection.encode()).hexdigest()[:16]}{POINTER_SUFFIX}"


# -- what is current ---------------------------------------------------------------------------
@dataclass
class Current:
    """What the pointer says. ``status``: complete, missing, partial or legacy (the layout
    before builds: complete or not is known only once it is opened)."""

    status: str
    build: str = ""
    fingerprint: str = ""
    path: Path | None = None  # embedded: the folder to open
    detail: str = ""
    counts: tuple[int, int] | None = None  # passages and cue lines the build recorded
    vectors: dict[str, str] | None = None  # embedded: sha256 of each vector file, at commit


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_root(root: Path) -> None:
    """The embedded index folder must be a folder; say so in one line when it is not."""
    if root.exists() and not root.is_dir():
        raise IndexError_(
            f"the index at {root} cannot be opened: it is a file, not a folder; run "
            "'debrief index --rebuild', which moves it aside."
        )


def legacy_present(root: Path) -> bool:
    return (root / "chroma.sqlite3").exists()


def resolve_embedded(root: Path, collection: str) -> Current:
    """Read the pointer and the marker of the build it names; open nothing."""
    check_root(root)
    if not root.is_dir():
        return Current("missing")
    ptr_path = root / pointer_name(collection)
    ptr = _read_json(ptr_path)
    if ptr is None:
        if ptr_path.exists():
            return Current("partial", detail=f"its pointer {ptr_path.name} cannot be read")
        if legacy_present(root):
            return Current("legacy", path=root)
        unfinished = [d.name for d in unfinished_builds(root, collection)]
        if unfinished:
            return Current("partial", build=unfinished[-1],
                           detail=f"build {unfinished[-1]} was interrupted before it finished")
        return Current("missing")
    build = str(ptr.get("build", ""))
    folder = root / build
    if not _BUILD_ID.match(build) or not folder.is_dir():
        return Current("partial", build=build,
                       detail=f"the build its pointer names ({build or '?'}) is gone")
    marker = _read_json(folder / MARKER)
    if (marker is None or marker.get("build") != build or marker.get("collection") != collection
            or not marker.get("fingerprint") or marker.get("fingerprint") != ptr.get("fingerprint")):
        return Current("partial", build=build,
                       detail=f"the build its pointer names ({build}) has no completeness marker")
    vectors = marker.get("vectors")
    if not isinstance(vectors, dict):
        return Current("partial", build=build,
                       detail=f"the build {build} was made by an older debrief")
    counts = (int(marker.get("chunks", -1)), int(marker.get("cues", -1)))
    return Current("complete", build=build, fingerprint=str(marker["fingerprint"]), path=folder,
                   counts=counts, vectors={str(k): str(v) for k, v in vectors.items()})


def builds(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and _BUILD_ID.match(d.name))


def unfinished_builds(root: Path, collection: str | None = None) -> list[Path]:
    """Build folders with no completeness marker: killed builds (or one under way)."""
    out = []
    for d in builds(root):
        marker = _read_json(d / MARKER)
        if marker is None:
            started = _read_json(d / "started.json") or {}
            if collection is None or started.get("collection") in (None, collection):
                out.append(d)
    return out


def pointed_builds(root: Path) -> set[str]:
    out = set()
    for p in root.glob("*" + POINTER_SUFFIX):
        ptr = _read_json(p)
        if ptr and isinstance(ptr.get("build"), str):
            out.add(ptr["build"])
    return out


# -- readers: a shared lock per build, held while the process uses it --------------------------
class Pin:
    """A shared lock on a build's ``.readers`` file: the build is not removed while held."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    @classmethod
    def take(cls, folder: Path) -> Pin | None:
        """None when the build is being removed (or already is)."""
        if fcntl is None:
            return cls(None)
        try:
            fd = os.open(folder / READERS, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return cls(fd)

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


@contextlib.contextmanager
def opening(folder: Path) -> Iterator[None]:
    """Chroma writes into a folder as it opens it (its SQLite file, and each vector segment as it
    is first loaded), even to read: processes opening one build take turns."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(folder / OPEN_LOCK))
    try:
        lock.acquire(timeout=OPEN_WAIT)
    except Timeout:
        raise IndexError_(f"the index at {folder} has been busy opening for another process for "
                          f"{OPEN_WAIT:.0f} s; try again.") from None
    try:
        yield
    finally:
        lock.release()


# -- builders: one at a time per index ----------------------------------------------------------
@contextlib.contextmanager
def build_lock(path: Path, where: str, notify: Notify | None,
               wait: float = LOCK_WAIT) -> Iterator[None]:
    """Hold the build lock; when another process holds it, say so once and wait (bounded)."""
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if notify:
            notify(f"Another debrief is building the advice index in {where}; waiting for it "
                   f"(up to {wait / 60:.0f} min)...")
        try:
            lock.acquire(timeout=wait)
        except Timeout:
            raise IndexError_(
                f"another debrief has been building the advice index in {where} for over "
                f"{wait / 60:.0f} minutes; try again once it has finished."
            ) from None
    try:
        yield
    finally:
        lock.release()


def build_in_progress(lock_path: Path) -> bool:
    """Whether another process holds this build lock right now."""
    from filelock import FileLock, Timeout

    if not lock_path.parent.is_dir():
        return False
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def start_build(root: Path, collection: str) -> tuple[str, Path]:
    """A fresh, empty build folder (only the builder knows it)."""
    root.mkdir(parents=True, exist_ok=True)
    build = new_build_id()
    folder = root / build
    folder.mkdir()
    (folder / READERS).touch()
    write_text(folder / "started.json", json.dumps({"collection": collection, "pid": os.getpid()}))
    return build, folder


def vector_files(folder: Path) -> dict[str, str]:
    """sha256 of each of a build's HNSW files. They are written only while building (see
    writer.py), so a reader that finds one changed or gone knows the build is damaged."""
    out = {}
    for path in sorted(folder.glob("*/*.bin")):
        with open(path, "rb") as fh:
            out[path.relative_to(folder).as_posix()] = hashlib.file_digest(fh, "sha256").hexdigest()
    return out


def damaged_vectors(folder: Path, recorded: dict[str, str]) -> str | None:
    """Which vector file differs from what the build recorded, or None."""
    try:
        found = vector_files(folder)
    except OSError as exc:
        return f"a vector file cannot be read ({exc.strerror})"
    for name in sorted(set(recorded) | set(found)):
        if found.get(name) != recorded.get(name):
            what = "is gone" if name not in found else (
                "was not in it" if name not in recorded else "changed")
            return f"its vector file {name} {what} since it was built"
    return None


def commit_build(root: Path, collection: str, build: str, fingerprint: str,
                 counts: tuple[int, int], model_sha256: str) -> None:
    """Mark the build complete, then point at it: the one step readers see."""
    folder = root / build
    write_text(folder / MARKER, json.dumps({
        "format": 3, "collection": collection, "build": build, "fingerprint": fingerprint,
        "chunks": counts[0], "cues": counts[1], "model_sha256": model_sha256,
        "vectors": vector_files(folder),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=2) + "\n")
    write_text(root / pointer_name(collection),
               json.dumps({"build": build, "fingerprint": fingerprint}) + "\n")


def _free(folder: Path) -> int | None:
    """An exclusive lock on the build's readers file when nobody holds it, else None."""
    if fcntl is None:
        return None
    try:
        fd = os.open(folder / READERS, os.O_RDWR | os.O_CREAT)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def remove_unused(root: Path, legacy_collections: Callable[[], set[str] | None]) -> list[str]:
    """Remove the builds no pointer names and no process holds (call with the build lock).

    A reader that read the pointer before it moved either pinned its build first (then it
    stays) or finds the marker gone after pinning and reads the pointer again."""
    removed: list[str] = []
    keep = pointed_builds(root)
    for folder in builds(root):
        if folder.name in keep:
            continue
        fd = _free(folder)
        if fd is None:
            continue
        try:
            with contextlib.suppress(OSError):
                (folder / MARKER).unlink()
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
        finally:
            os.close(fd)
    # write_text's temp files of a killed writer (only builders write here, and we are one)
    for tmp in root.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()
    # the layout before builds, once every collection it holds has a build of its own
    if legacy_present(root):
        names = legacy_collections()
        pointers = {p.name for p in root.glob("*" + POINTER_SUFFIX)}
        if names is not None and all(pointer_name(n) in pointers for n in names):
            fd = _free(root)  # ".readers" straight under chroma/: readers of the old layout
            if fd is not None:
                try:
                    for name in _LEGACY_FILES:
                        with contextlib.suppress(OSError):
                            (root / name).unlink()
                    for d in root.iterdir():
                        if d.is_dir() and _UUID.match(d.name):
                            shutil.rmtree(d, ignore_errors=True)
                    removed.append("(the index layout before builds)")
                finally:
                    os.close(fd)
                    with contextlib.suppress(OSError):
                        (root / READERS).unlink()
    return removed


def set_aside(path: Path) -> Path:
    """Rename a broken index out of the way (never delete what we cannot read)."""
    aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        n += 1
    path.rename(aside)
    return aside


def set_legacy_aside(root: Path) -> Path:
    """Move an unreadable index of the old layout out of ``chroma/`` into its own folder."""
    aside = root.with_name(f"{root.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
    aside.mkdir(parents=True, exist_ok=True)
    for name in _LEGACY_FILES:
        with contextlib.suppress(OSError):
            (root / name).rename(aside / name)
    for d in list(root.iterdir()):
        if d.is_dir() and _UUID.match(d.name):
            d.rename(aside / d.name)
    return aside
