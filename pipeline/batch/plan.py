"""What a note needs: the identity a reflection depends on, and the rules that make it due."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.batch.scan import NoteFile
from pipeline.notes import note_date


@dataclass(frozen=True)
class Identity:
    """Everything besides the note itself that a reflection depends on."""

    engine: str
    model: str | None
    prompt_version: str
    fingerprint: str


def due_reason(row: sqlite3.Row | None, sha: str, ident: Identity, outs: tuple[str, str],
               out_dir: Path, force: bool) -> str | None:
    """Why a note must be reflected on again, or None when its outputs are current."""
    if force:
        return "forced"
    if row is None:
        return "new"
    if row["status"] != "ok":
        return "failed last time"
    if row["sha256"] != sha:
        return "changed"
    if row["prompt_version"] != ident.prompt_version:
        return "new prompt version"
    if row["engine"] != ident.engine or row["model"] != ident.model:
        return f"engine changed ({row['engine']}/{row['model']})"
    if row["index_fingerprint"] != ident.fingerprint:
        return "advice index changed"
    if (row["out_md"], row["out_json"]) != outs:
        return "output name changed"
    if not all((out_dir / o).is_file() for o in outs):
        return "output missing"
    return None


def job_date(meta_date: str | None, note: NoteFile, mtime: float) -> tuple[str, str]:
    """(ISO date, 'notes' | 'name' | 'file'): pipeline.notes.note_date's rule, which always
    has a date here since the file's modification day is the last resort."""
    found, source = note_date(meta_date, note.path, mtime)
    assert found is not None
    return found, source


def strip_path(message: str, rel: str) -> str:
    """Errors from pipeline.notes start with the path; the result already carries it."""
    return message[len(rel) + 2:] if message.startswith(f"{rel}: ") else message


@dataclass
class Job:
    note: NoteFile
    data: bytes
    sha: str
    mtime: float
    outs: tuple[str, str]
    reason: str
    parsed: Any = None  # pipeline.notes.Notes
    company: str = ""
    date: str = ""
    date_from: str = "file"
