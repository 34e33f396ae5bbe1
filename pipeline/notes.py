"""Read one notes file: checks, front matter, body, and the sentences evidence is quoted from."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipeline.errors import DebriefError

MAX_NOTES_BYTES = 200 * 1024
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


def parse_notes(data: bytes, path: str) -> Notes:
    """Validate raw bytes and split front matter from body. Raises DebriefError on bad input."""
    name = path
    if len(data) > MAX_NOTES_BYTES:
        raise DebriefError(
            f"{name}: notes are {len(data) // 1024} KB, over the 200 KB limit; split them into "
            "one file per interview."
        )
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
        with path.open("rb") as fh:
            data = fh.read(MAX_NOTES_BYTES + 1)
            if len(data) > MAX_NOTES_BYTES:
                data += fh.read()
    except OSError as exc:
        raise DebriefError(f"{path}: cannot read ({exc.strerror or exc}).") from None
    return parse_notes(data, str(path))


# --- sentences ---------------------------------------------------------------------------

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d+[.)]|#+)\s+")
_SEG = None


def _segmenter():
    global _SEG
    if _SEG is None:
        import pysbd

        _SEG = pysbd.Segmenter(language="en", clean=False, char_span=True)
    return _SEG


def normalize_ws(text: str) -> str:
    return " ".join(text.split())


def units(body: str) -> list[str]:
    """Paragraphs and list items, with soft-wrapped continuation lines joined back on."""
    units: list[str] = []
    # a comment separates units: text on both sides of an inline one must not be joined
    # into a "sentence" that does not occur in the notes
    body = _COMMENT.sub("\n\n", body)
    for line in body.split("\n"):
        if not line.strip() or set(line.strip()) <= set("-=*_"):
            units.append("")
        elif (units and units[-1] and not _BULLET.match(line) and not units[-1].startswith("#")
              and not line.lstrip().startswith(("|", ">"))):
            units[-1] = f"{units[-1]} {line.strip()}"
        else:
            units.append(line.strip())
    return [u for u in units if u]


def sentences(body: str, *, max_len: int = 400) -> list[str]:
    """Split notes into quotable units: one per line item, then per sentence.

    Every returned string occurs verbatim in the body (whitespace-normalised), which is what
    the quote check relies on. Markdown bullets and heading marks are stripped off the front.
    """
    out: list[str] = []
    for line in units(body):
        line = _BULLET.sub("", line).strip()
        if len(line) < 3 or set(line) <= set("-=*_#|: "):
            continue
        spans: list[tuple[int, int]]
        if len(line) > 5000:
            spans = [(i, min(i + max_len, len(line))) for i in range(0, len(line), max_len)]
        else:
            try:
                # offsets, not strings: pysbd's strings can differ from the input ("<! --")
                spans = [(sp.start, sp.end) for sp in _segmenter().segment(line)]
            except Exception:  # pysbd has regex edge cases; fall back to the whole line
                spans = []
            spans = [(a, b) for a, b in spans if line[a:b].strip()] or [(0, len(line))]
        merged: list[tuple[int, int]] = []
        for a, b in spans:
            # "Unpaid." or "Gut: no." alone says little; keep it with its neighbour, cutting the
            # line by offsets so the joined text is exactly what the notes say
            if merged and (len(line[a:b].split()) < 3
                           or len(line[merged[-1][0]:merged[-1][1]].split()) < 3):
                merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        for a, b in merged:
            part = normalize_ws(line[a:b]).strip()
            if len(part) < 3:
                continue
            while len(part) > max_len:
                cut = part.rfind(" ", 0, max_len)
                cut = cut if cut > max_len // 2 else max_len
                out.append(part[:cut].strip())
                part = part[cut:].strip()
            if part:
                out.append(part)
    return out
