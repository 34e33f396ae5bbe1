"""Files we write and files we read: atomic writes, their temp-file sweep, and capped reads."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from pipeline.errors import DebriefError

MAX_NOTES_BYTES = 200 * 1024  # one interview's notes; anything bigger is refused unread
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
        raise DebriefError(f"cannot write {path} ({exc.strerror or exc}).") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise DebriefError(f"cannot write {path} ({exc.strerror or exc}).") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
    """At most ``limit + 1`` bytes of a file and its stat; one byte more than the limit is
    enough to tell the file is too big. Raises OSError as open/read do."""
    with Path(path).open("rb") as fh:
        st = os.fstat(fh.fileno())
        return fh.read(limit + 1), st
