"""Files we write and files we read: atomic writes, their temp-file sweep, capped reads, and
the mark that tells a file debrief wrote from one it did not."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
import tempfile
from pathlib import Path

from pipeline.errors import DebriefError

MAX_NOTES_BYTES = 200 * 1024  # one interview's notes; anything bigger is refused unread
MAX_OWN_BYTES = 16 * 1024 * 1024  # bigger than anything debrief writes: never ours
# errors of the storage itself, not of one file: a full disk, a read-only file system
_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_STORAGE_ERRNOS = _FULL | {errno.EROFS, errno.EIO}


class StorageError(DebriefError):
    """The disk under an output folder cannot take a write (full, read-only, failing, or
    a damaged state file): no note can be done until the user fixes it, so a batch stops."""


def storage_hint(err: int | None) -> str:
    """What to do about a storage errno, in the user's terms."""
    if err in _FULL:
        return "the disk is full; free some space (or pick another --out) and run again"
    if err == errno.EROFS:
        return "the disk is mounted read-only; pick another --out or remount it writable"
    return "the disk failed to write; check it (dmesg, fsck) and run again"


# write_text's temp files: ".<name>.<8 random chars>.tmp" beside the target
_TEMP_FILE = re.compile(r"^\..+\.(md|json|pid)\.[a-z0-9_]{8}\.tmp$")


def write_text(path: Path, text: str) -> None:
    """Write so that readers see the old content or the new, never half of it."""
    # Hand-rolled on purpose: tempfile in the same folder + fsync + os.replace is the whole
    # mechanism, and the maintained libraries for it (atomicwrites) are archived.
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise os_error(path, exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise os_error(path, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def os_error(path: Path, exc: OSError, verb: str = "write") -> DebriefError:
    """One line for an OSError on ``path``: a StorageError when the disk itself is at fault."""
    if exc.errno in _STORAGE_ERRNOS:
        return StorageError(f"cannot {verb} {path} ({exc.strerror or exc}): "
                            f"{storage_hint(exc.errno)}.")
    return DebriefError(f"cannot {verb} {path} ({exc.strerror or exc}).")


def sweep_temp_files(folder: Path) -> int:
    """Remove temp files a killed run left behind (only write_text's own pattern)."""
    removed = 0
    for dirpath, _dirs, filenames in os.walk(folder, followlinks=False):
        for name in filenames:
            if _TEMP_FILE.match(name):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(dirpath, name))
                    removed += 1
    return removed


def read_capped(path: Path, limit: int = MAX_NOTES_BYTES) -> tuple[bytes, os.stat_result]:
    """At most ``limit + 1`` bytes of a regular file and its stat; one byte more than the
    limit is enough to tell the file is too big. Raises OSError as open/read do.

    Opened non-blocking, so a FIFO or a device swapped in after the caller's stat can never
    hang the read; anything but a regular file is refused before a byte is read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"not a regular file ({file_kind(st.st_mode)})")
        return fh.read(limit + 1), st


def file_kind(mode: int) -> str:
    """'a folder', 'a FIFO (named pipe)', 'a character device'...: for messages."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symlink")):
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


# -- what debrief wrote ------------------------------------------------------------------------
# Every Markdown file debrief writes (a reflection, the digest, a ranking) ends with this
# line; the hash is of everything above it, so a file edited since no longer counts as ours.
_MARK = re.compile(rb"<!-- debrief:(reflection|digest|ranking) sha256=([0-9a-f]{64}) -->\n?\Z")
_ANY_MARK = re.compile(rb"<!-- debrief:(reflection|digest|ranking) sha256=[0-9a-f]{64} -->\s*\Z")
MARK_KINDS = ("reflection", "digest", "ranking")
# what debrief wrote before its files carried the mark: the first line of a reflection, the
# digest or a ranking
LEGACY_TITLE = re.compile(rb"\A# (?:Interview digest|Your open processes, ranked|"
                          rb".+: (?:KEEP PURSUING|DECLINE) \(confidence \d\.\d\d\))\r?\n")


def with_mark(text: str, kind: str) -> str:
    """Markdown ``text`` with debrief's mark as its last line (an HTML comment: invisible
    when rendered). ``kind`` is one of MARK_KINDS."""
    assert kind in MARK_KINDS, kind
    body = text if text.endswith("\n") else text + "\n"
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return f"{body}<!-- debrief:{kind} sha256={digest} -->\n"


def has_mark(data: bytes) -> bool:
    """Whether ``data`` ends with debrief's mark, edited since or not: debrief wrote it, so
    it is never a note."""
    return _ANY_MARK.search(data[-200:]) is not None


def _intact_mark(data: bytes) -> bool:
    m = _MARK.search(data[-200:])
    if m is None:
        return False
    body = data[:len(data) - len(data[-200:]) + m.start()]
    return hashlib.sha256(body).hexdigest() == m.group(2).decode()


def _reflection_json(data: bytes) -> bool:
    """A reflection debrief wrote as JSON: its provenance keys are all there."""
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return (isinstance(obj, dict) and {"schema_version", "engine", "prompt_version",
                                       "notes"} <= obj.keys()
            and isinstance(obj["notes"], dict) and "sha256" in obj["notes"])


def _ranking_json(data: bytes) -> bool:
    """A ranking debrief wrote as JSON (compare --out FILE.json): its keys are all there."""
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return (isinstance(obj, dict)
            and {"processes", "separating", "leverage", "profile", "failed"} <= obj.keys()
            and isinstance(obj["processes"], list))


def written_by_us(path: Path, recorded_sha256: str | None = None) -> bool:
    """May ``path`` be replaced? True when nothing is there, or when debrief wrote what is
    there and nobody changed it since: its hash is the one recorded, or its mark is intact
    (Markdown), or it is a reflection's or a ranking's JSON, or it is Markdown from before the mark (its
    title line is ours). Anything else (a note, a file of yours, a
    folder, a symlink, a FIFO) is not ours, and is never written over. Never blocks."""
    try:
        st = os.lstat(path)
    except OSError:  # nothing there (or nothing we can see): the write itself says why
        return True
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_OWN_BYTES:
        return False
    try:
        data, _ = read_capped(path, MAX_OWN_BYTES)
    except OSError:
        return False
    if recorded_sha256 and hashlib.sha256(data).hexdigest() == recorded_sha256:
        return True
    if _intact_mark(data) or _reflection_json(data) or _ranking_json(data):
        return True
    # written before the mark existed, and not since: no mark at all and no hash on record
    return not recorded_sha256 and not has_mark(data) and LEGACY_TITLE.match(data) is not None


def not_ours(path: Path, what: str = "") -> DebriefError:
    """The refusal for written_by_us() == False, one line."""
    try:
        st = os.lstat(path)
        kind = "" if stat.S_ISREG(st.st_mode) else f" ({file_kind(st.st_mode)})"
    except OSError:
        kind = ""
    return DebriefError(f"{what or path} exists{kind} and was not written by debrief (or was "
                        "changed since); refusing to overwrite it: move it away or write "
                        "elsewhere.")


def sha256_text(text: str) -> str:
    """The hash of ``text`` as write_text stores it, to record what we wrote."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
