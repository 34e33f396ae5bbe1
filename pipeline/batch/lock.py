"""One batch per output folder at a time: an OS lock, plus a pid file for the message.

``batch.lock`` exists only while a batch holds it. Removing a lock file safely: the holder
unlinks it while it still holds the lock, and whoever locks a file checks afterwards that
the name still leads to the file it locked; if not (the holder removed it meanwhile), it
tries again on the new file. So two batches can never both think they hold the lock.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.batch.layout import LOCK_FILE, PID_FILE
from pipeline.errors import DebriefError
from pipeline.files import StorageError, os_error, write_text


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


class _Held(Exception):
    """Another process holds the lock."""


def _cannot(path: Path, exc: OSError) -> StorageError:
    """No lock file in the output folder: nothing can be written there, so the batch stops
    before it starts, as for any fault of the storage under --out."""
    err = os_error(path, exc, "create")
    if isinstance(err, StorageError):
        return err
    return StorageError(f"{err.message.rstrip('.')}: check that you may write the output "
                        "folder, or pick another --out.")


@contextlib.contextmanager
def _os_lock(path: Path) -> Iterator[None]:
    """Hold ``path`` locked (flock) and remove it on release; raises _Held if taken."""
    try:
        import fcntl
    except ImportError:  # not POSIX: filelock's lock, whose file stays in place
        import filelock

        lock = filelock.FileLock(str(path), blocking=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise _Held() from None
        try:
            yield
        finally:
            lock.release()
        return

    for _attempt in range(50):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            raise _cannot(path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _Held() from None
        except OSError as exc:
            os.close(fd)
            raise _cannot(path, exc) from None
        try:
            mine = os.stat(path)
            locked = os.fstat(fd)
            same = (mine.st_dev, mine.st_ino) == (locked.st_dev, locked.st_ino)
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # its holder removed it after we opened it: lock the new one
    else:
        raise _Held()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # still ours: we hold the lock on this very file
        os.close(fd)


@contextlib.contextmanager
def batch_lock(out_dir: Path, notes_dir: Path, info: Callable[[str], None]) -> Iterator[None]:
    """One batch per output folder: ``batch.lock`` (an OS lock, released even by kill -9)
    plus ``batch.pid`` naming the holder, for the message a second batch prints. Both are
    removed when the batch ends."""
    pid_path = out_dir / PID_FILE
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(_os_lock(out_dir / LOCK_FILE))
        except _Held:
            pid = _read_pid(pid_path)
            who = f"pid {pid}" if pid else "another process"
            raise DebriefError(f"another debrief batch is already running on {notes_dir} "
                               f"({who} holds {out_dir / LOCK_FILE}); try again when it has "
                               "finished.", exit_code=2) from None
        try:
            old = _read_pid(pid_path)
            if old is not None and old != os.getpid():
                # we hold the OS lock, so whoever wrote this pid file is gone (or not ours)
                state = ("no longer running" if not _pid_alive(old)
                         else "it no longer held the lock")
                info(f"took over a stale lock from pid {old} ({state}).")
            write_text(pid_path, f"{os.getpid()}\n")
            yield
        finally:
            if _read_pid(pid_path) == os.getpid():
                with contextlib.suppress(OSError):
                    pid_path.unlink()
