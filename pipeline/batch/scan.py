"""Finding the notes in a folder, and reading one without ever reading too much."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.batch.layout import DEFAULT_OUT, NOTE_SUFFIXES
from pipeline.errors import DebriefError
from pipeline.files import LEGACY_TITLE, MAX_NOTES_BYTES, has_mark, read_capped
from pipeline.notes import display_path, too_big


@dataclass(frozen=True)
class NoteFile:
    rel: str  # POSIX path relative to the notes folder; the key in the state DB
    path: Path


@dataclass
class Found:
    """What a scan found: the notes, the candidates left alone (path, why), and what could
    not be looked at (path, why): a folder that cannot be read, a name that is not text.
    A problem is a failure: the run says so and exits 1; it never looks like no notes."""

    notes: list[NoteFile] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def unreadable_dirs(self) -> list[str]:
        """Folders (relative, ending in /) whose notes could not be listed."""
        return [p for p, _ in self.problems if p.endswith("/")]


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
        raise DebriefError(f"--out {out} holds the notes folder itself, where outputs would "
                           f"mix with your notes; pick a folder outside {root}, or leave "
                           f"--out out for the default {root / DEFAULT_OUT}.")
    if out.exists() and not out.is_dir():
        raise DebriefError(f"--out {out} is a file, not a folder.")
    return root, out


def scan(root: Path, out_dir: Path) -> Found:
    """The candidate notes under ``root``, the candidates left alone, and the problems.

    Hidden files and folders are skipped. Symlinked folders are never entered; a symlinked
    file is a note only when it resolves to a regular file inside the folder (and outside
    the output folder). Nothing outside ``root`` is ever opened. A folder that cannot be
    read is a problem, never silently empty. A visible output folder inside ``root`` is
    scanned like any other: the notes in it are notes, and what debrief wrote there is
    recognised when read (``is_own_output``).
    """
    found = Found()
    notes, ignored = found.notes, found.ignored

    def unreadable(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename else root
        if where == root:
            raise DebriefError(f"{root}: cannot read the notes folder "
                               f"({exc.strerror or exc}).") from None
        rel = display_path(where.relative_to(root).as_posix())
        found.problems.append((f"{rel}/", f"cannot read this folder ({exc.strerror or exc}); "
                                          "its notes are kept as they were"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=False):
        here = Path(dirpath)
        keep: list[str] = []
        for d in sorted(dirnames):
            p = here / d
            if d.startswith("."):
                continue
            if p.is_symlink():
                ignored.append((display_path(p.relative_to(root).as_posix()) + "/",
                                "a symlinked folder; not followed"))
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in filenames:
            if name.startswith(".") or not name.lower().endswith(NOTE_SUFFIXES):
                continue
            p = here / name
            rel = p.relative_to(root).as_posix()
            if display_path(rel) != rel:
                found.problems.append((display_path(rel), "its name is not valid UTF-8 "
                                                          "text; rename it"))
                continue
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
    ignored.sort()
    found.problems.sort()
    return found


def recorded_outputs(rows: Mapping[str, Any]) -> dict[str, str | None]:
    """Markdown outputs the state records (relative to the output folder) -> their hash."""
    return {r["out_md"]: r["md_sha256"] for r in rows.values() if r["out_md"]}


def is_own_output(nf: NoteFile, data: bytes, sha: str, out_dir: Path,
                  recorded: Mapping[str, str | None]) -> bool:
    """Whether a candidate is something debrief wrote, and so never a note: any file with
    debrief's mark (a reflection saved with ``reflect --out``, a digest, a ranking) or with
    the title line of one written before the mark, and, inside the output folder, an output
    the state records (with its hash, when it recorded one)."""
    if has_mark(data) or LEGACY_TITLE.match(data):
        return True
    if not nf.path.is_relative_to(out_dir):
        return False
    rel_out = nf.path.relative_to(out_dir).as_posix()
    return rel_out in recorded and recorded[rel_out] in (None, sha)


def read_note(nf: NoteFile) -> tuple[bytes, str, float]:
    """(bytes, sha256, mtime). Reads at most just over the size limit, never blocks."""
    try:
        data, st = read_capped(nf.path)
    except OSError as exc:
        raise DebriefError(f"{nf.rel}: cannot read ({exc.strerror or exc}).") from None
    if len(data) > MAX_NOTES_BYTES:
        raise too_big(nf.rel, st.st_size)
    return data, hashlib.sha256(data).hexdigest(), st.st_mtime
