"""Read one notes file: checks, front matter and body; the date and company it is about."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipeline.errors import DebriefError
from pipeline.files import MAX_NOTES_BYTES, read_capped

_FRONT_MATTER_FIELDS = ("company", "role", "date", "round", "interviewers", "current_job",
                        "current_pay", "location")


class NotesMeta(BaseModel):
    """Front matter we understand; other keys are kept in ``extra`` untouched."""

    model_config = ConfigDict(extra="forbid")

    company: str | None = None
    role: str | None = None
    date: str | None = None
    round: str | None = None
    interviewers: list[str] = Field(default_factory=list)
    current_job: str | None = None
    current_pay: str | None = None
    location: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)


class Notes(BaseModel):
    path: str
    meta: NotesMeta
    body: str
    sha256: str

    @property
    def company(self) -> str:
        return self.meta.company or company_from_filename(Path(self.path).name)


def company_from_filename(name: str) -> str:
    """``2026-11-20-acme-corp.md`` -> ``acme corp``; a date prefix and extension are dropped."""
    stem = Path(name).stem
    stem = re.sub(r"^\d{4}-\d{2}-\d{2}[-_ ]*", "", stem)
    stem = re.sub(r"[-_]+", " ", stem).strip()
    return stem or Path(name).stem


def _scalar(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, int, float, date)):
        return str(value).strip()[:500] or None
    raise ValueError(f"expected a single value, got {type(value).__name__}")


def _meta_from(raw: dict[Any, Any]) -> NotesMeta:
    fields: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for key, value in raw.items():
        key = str(key).strip().lower()
        if key in _FRONT_MATTER_FIELDS and key != "interviewers":
            fields[key] = _scalar(value)
        elif key == "interviewers":
            if value is None:
                continue
            # _scalar first: str() of a YAML alias bomb (a mapping of mappings) never ends
            items = value if isinstance(value, list) else (_scalar(value) or "").split(",")
            fields[key] = [s for s in (_scalar(v) for v in items) if s]
        elif isinstance(value, (str, int, float, date)):
            extra[key] = str(value)[:500]
    return NotesMeta(**fields, extra=extra)


def too_big(name: str, size: int) -> DebriefError:
    return DebriefError(f"{name}: notes are {size // 1024} KB, over the 200 KB limit; split "
                        "them into one file per interview.")


def parse_notes(data: bytes, path: str, size: int | None = None) -> Notes:
    """Validate raw bytes and split front matter from body. Raises DebriefError on bad input.
    ``size`` is the file's size when ``data`` was read capped."""
    name = path
    if len(data) > MAX_NOTES_BYTES:
        raise too_big(name, max(size or 0, len(data)))
    if b"\x00" in data:
        raise DebriefError(f"{name}: looks like a binary file, not text notes.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DebriefError(
            f"{name}: not UTF-8 text (bad byte at position {exc.start}); save the notes as UTF-8."
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DebriefError(f"{name}: the notes file is empty.")

    import yaml
    from frontmatter.default_handlers import YAMLHandler

    # a leading HTML comment (provenance, templates) may sit above the front matter
    lead = re.match(r"\s*<!--.*?-->\s*\n(?=---\s*\n)", text, re.S)
    if lead:
        text = text[lead.end():]
    try:
        # split, then load ourselves: frontmatter.parse turns a list or a bare string into {}
        handler = YAMLHandler()
        if handler.detect(text):
            fm, body = handler.split(text)
            meta_raw = yaml.safe_load(fm)
            meta_raw = {} if meta_raw is None else meta_raw
        else:
            meta_raw, body = {}, text
        body = body.strip()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise DebriefError(f"{name}: malformed front matter{where}; fix the YAML between the --- lines.") from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise DebriefError(f"{name}: malformed front matter: {exc}") from None
    if not isinstance(meta_raw, dict):
        raise DebriefError(f"{name}: front matter must be key: value pairs.")
    try:
        meta = _meta_from(meta_raw)
    except (ValueError, RecursionError) as exc:
        raise DebriefError(f"{name}: malformed front matter: {exc}") from None
    if not body.strip():
        raise DebriefError(f"{name}: the notes have front matter but no text below it.")
    digest = hashlib.sha256(data).hexdigest()
    return Notes(path=path, meta=meta, body=body, sha256=digest)


def read_notes(path: Path) -> Notes:
    if not path.exists():
        raise DebriefError(f"{path}: no such file.")
    if path.is_dir():
        raise DebriefError(f"{path}: is a folder; give one notes file (or use 'debrief batch').")
    try:
        data, st = read_capped(path)
    except OSError as exc:
        raise DebriefError(f"{path}: cannot read ({exc.strerror or exc}).") from None
    return parse_notes(data, str(path), st.st_size)
