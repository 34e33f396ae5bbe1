"""Finding the notes in a folder, and reading one without ever reading too much."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from pipeline.batch.layout import DEFAULT_OUT, NOTE_SUFFIXES
from pipeline.errors import DebriefError
from pipeline.files import MAX_NOTES_BYTES, read_capped
from pipeline.notes import too_big


@dataclass(frozen=True)
class NoteFile:
    rel: str  # POSIX path relative to the notes folder; the key in the state DB
    path: Path


def resolve_dirs(notes_dir: Path, out_dir: Path | None) -> tuple[Path, Path]:
    notes_dir = Path(notes_dir).expanduser()
    if not notes_dir.exists():
        raise DebriefError(f"{notes_dir}: no such folder.")
    if not notes_dir.is_dir():
        raise DebriefError(f"{notes_dir}: is a file; give the folder that holds your notes "
                           "(or use 'debrief reflect' for one file).")
    root = notes_dir.resolve()
    out = (Path(out_dir).expanduser() if out_dir is not None else root / DEFAULT_OUT).resolve()
    if root == out or root.is_relative_to(out):
        raise DebriefError(f"--out {out} holds the notes folder itself; pick a folder inside "
                           f"{root} or elsewhere (default: {root / DEFAULT_OUT}).")
    if out.exists() and not out.is_dir():
        raise DebriefError(f"--out {out} is a file, not a folder.")
    return root, out


def scan(root: Path, out_dir: Path) -> tuple[list[NoteFile], list[tuple[str, str]]]:
    """The notes under ``root``, and (path, why) for candidates left alone.

    Hidden files and folders and the output folder are skipped. Symlinked folders are never
    entered; a symlinked file is a note only when it resolves to a regular file inside the
    folder (and outside the output folder). Nothing outside ``root`` is ever opened.
    """
    notes: list[NoteFile] = []
    ignored: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        keep: list[str] = []
        for d in sorted(dirnames):
            p = here / d
            if d.startswith(".") or p == out_dir:
                continue
            if p.is_symlink():
                ignored.append((p.relative_to(root).as_posix() + "/",
                                "a symlinked folder; not followed"))
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in filenames:
            if name.startswith(".") or not name.lower().endswith(NOTE_SUFFIXES):
                continue
            p = here / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                try:
                    target = p.resolve(strict=True)
                except (OSError, RuntimeError):
                    ignored.append((rel, "a broken symlink"))
                    continue
                if not target.is_relative_to(root):
                    ignored.append((rel, "a symlink to outside the notes folder; not followed"))
                    continue
                if target.is_relative_to(out_dir):
                    ignored.append((rel, "a symlink into the output folder; not followed"))
                    continue
            try:
                mode = p.stat().st_mode
            except OSError:
                mode = stat.S_IFREG  # let reading it report the error as a failed note
            if not stat.S_ISREG(mode):
                ignored.append((rel, "not a regular file"))
                continue
            notes.append(NoteFile(rel, p))
    notes.sort(key=lambda n: n.rel)
    return notes, sorted(ignored)


def read_note(nf: NoteFile) -> tuple[bytes, str, float]:
    """(bytes, sha256, mtime). Reads at most just over the size limit."""
    try:
        data, st = read_capped(nf.path)
    except OSError as exc:
        raise DebriefError(f"{nf.rel}: cannot read ({exc.strerror or exc}).") from None
    if len(data) > MAX_NOTES_BYTES:
        raise too_big(nf.rel, st.st_size)
    return data, hashlib.sha256(data).hexdigest(), st.st_mtime
