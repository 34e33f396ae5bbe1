"""One batch per output folder at a time: an OS lock, plus a pid file for the message."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.batch.layout import LOCK_FILE, PID_FILE
from pipeline.errors import DebriefError
from pipeline.files import write_text


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


@contextlib.contextmanager
def batch_lock(out_dir: Path, notes_dir: Path, info: Callable[[str], None]) -> Iterator[None]:
    """One batch per output folder: ``batch.lock`` (an OS lock, released even by kill -9)
    plus ``batch.pid`` naming the holder, for the message a second batch prints."""
    import filelock

    lock = filelock.FileLock(str(out_dir / LOCK_FILE), blocking=False)
    pid_path = out_dir / PID_FILE
    try:
        lock.acquire()
    except filelock.Timeout:
        pid = _read_pid(pid_path)
        who = f"pid {pid}" if pid else "another process"
        raise DebriefError(f"another debrief batch is already running on {notes_dir} ({who} "
                           f"holds {out_dir / LOCK_FILE}); try again when it has finished.",
                           exit_code=2) from None
    try:
        old = _read_pid(pid_path)
        if old is not None and old != os.getpid():
            # we hold the OS lock, so whoever wrote this pid file is gone (or no longer ours)
            state = "no longer running" if not _pid_alive(old) else "it no longer held the lock"
            info(f"took over a stale lock from pid {old} ({state}).")
        write_text(pid_path, f"{os.getpid()}\n")
        yield
    finally:
        if _read_pid(pid_path) == os.getpid():
            with contextlib.suppress(OSError):
                pid_path.unlink()
        lock.release()
