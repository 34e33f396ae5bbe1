"""Read one notes file: checks, front matter and body; the date and company it is about."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipeline.errors import DebriefError
from pipeline.files import MAX_NOTES_BYTES, file_kind, read_capped

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

    @property
    def date(self) -> str | None:
        """The interview's ISO date: front matter, else the file name (see note_date); a
        front-matter date that is not ISO is kept as written."""
        return note_date(self.meta.date, self.path)[0] or self.meta.date


_DATE_PREFIX = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[-_ ]+|$)")
_ISO_DATE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})")


def _iso(text: str | None, pattern: re.Pattern[str]) -> str | None:
    m = pattern.match(text or "")
    if m is None:
        return None
    try:
        return date.fromisoformat(m.group(1)).isoformat()
    except ValueError:
        return None


def date_from_filename(name: str) -> str | None:
    """``2026-12-05-orbit.txt`` -> ``2026-12-05``; None without a valid date at the start."""
    return _iso(Path(name).stem, _DATE_PREFIX)


def note_date(meta_date: str | None, path: str | Path,
              mtime: float | None = None) -> tuple[str | None, str]:
    """The one rule for a note's date, with where it came from: the front-matter ``date``
    when it reads as an ISO date ('notes'), else an ISO date starting the file name
    ('name'), else the file's modification day when ``mtime`` is given ('file'), else
    (None, '')."""
    found = _iso(meta_date, _ISO_DATE)
    if found:
        return found, "notes"
    found = date_from_filename(Path(path).name)
    if found:
        return found, "name"
    if mtime is not None:
        return datetime.fromtimestamp(mtime).date().isoformat(), "file"
    return None, ""


def company_from_filename(name: str) -> str:
    """``2026-11-20-acme-corp.md`` -> ``Acme Corp``; a date prefix and extension are dropped."""
    stem = Path(name).stem
    stem = re.sub(r"^\d{4}-\d{2}-\d{2}[-_ ]*", "", stem)
    stem = re.sub(r"[-_]+", " ", stem).strip()
    # a file name is often all lower case by habit; the company's name is not
    return (stem.title() if stem == stem.lower() else stem) or Path(name).stem


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value: str) -> str:
    """Text that encodes as UTF-8. YAML's ``"\\ud83d\\ude00"`` escapes (what json.dumps
    writes for an emoji) load as a surrogate pair: a pair is joined into the character it
    stands for, a lone surrogate becomes U+FFFD."""
    if _SURROGATE.search(value) is None:
        return value
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def display_path(path: str) -> str:
    """A path as text that encodes as UTF-8: bytes of a file name that are not UTF-8 (kept
    by Python as lone surrogates) are shown as ``\\xe9``."""
    if _SURROGATE.search(path) is None:
        return path
    try:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return clean_text(path)


_EXAMPLES = {"company": "Acme Analytics", "role": "Senior Data Engineer", "date": "2026-11-20",
             "round": "2", "current_job": "Data analyst", "current_pay": "$95k",
             "location": "Berlin"}
_KINDS = {list: "a list", dict: "a set of key: value pairs"}


class FieldProblem(ValueError):
    """A front-matter field that holds the wrong kind of value, said in the file's terms."""

    def __init__(self, key: str, what: str) -> None:
        super().__init__(what)
        self.key, self.what = key, what


def _kind(value: Any) -> str:
    return next((name for t, name in _KINDS.items() if isinstance(value, t)),
                "a value of another kind")


def _scalar(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, int, float, date)):
        return clean_text(str(value)).strip()[:500] or None
    raise FieldProblem(key, f"should be a single value, not {_kind(value)}; write e.g. "
                            f"{key}: {_EXAMPLES.get(key, 'text')}")


def _meta_from(raw: dict[Any, Any]) -> NotesMeta:
    fields: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for key, value in raw.items():
        key = clean_text(str(key)).strip().lower()
        if key in _FRONT_MATTER_FIELDS and key != "interviewers":
            fields[key] = _scalar(value, key)
        elif key == "interviewers":
            if value is None:
                continue
            # checked before str(): str() of a YAML alias bomb (a mapping of mappings) never ends
            if not isinstance(value, (list, str, int, float, date)):
                raise FieldProblem(key, f"should be a list of names, not {_kind(value)}; write "
                                        "e.g. interviewers: [Dana Ruiz, Sam Okafor]")
            items = value if isinstance(value, list) else (_scalar(value, key) or "").split(",")
            names = []
            for item in items:
                if item is not None and not isinstance(item, (str, int, float, date)):
                    raise FieldProblem(key, f"should list names, not {_kind(item)}; write "
                                            "e.g. interviewers: [Dana Ruiz, Sam Okafor]")
                name = _scalar(item, key)
                if name:
                    names.append(name)
            fields[key] = names
        elif isinstance(value, (str, int, float, date)):
            extra[key] = clean_text(str(value))[:500]
    return NotesMeta(**fields, extra=extra)


class _DuplicateKey(Exception):
    def __init__(self, key: str, line: int, first: int) -> None:
        super().__init__(key)
        self.key, self.line, self.first = key, line, first


def _load_yaml(fm: str) -> tuple[Any, dict[str, int]]:
    """yaml.safe_load, except that a key given twice in one mapping is refused (YAML
    loaders silently keep the last one). Keys are compared as _meta_from reads them:
    stripped and case-folded, so ``Company`` and ``company`` are the same key. Also returns
    the line (0-based, in ``fm``) of each top-level key, for messages."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode,
                          deep: bool = False) -> Any:
        seen: dict[str, int] = {}
        for key_node, _value in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = clean_text(str(loader.construct_scalar(key_node)))
            norm = key.strip().casefold()
            if norm in seen:
                raise _DuplicateKey(key.strip(), key_node.start_mark.line, seen[norm])
            seen[norm] = key_node.start_mark.line
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                    construct_mapping)
    loader = UniqueKeyLoader(fm)
    try:
        node = loader.get_single_node()
        lines: dict[str, int] = {}
        if isinstance(node, yaml.MappingNode):
            for key_node, _value in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key = clean_text(str(key_node.value)).strip().lower()
                    lines.setdefault(key, key_node.start_mark.line)
        return (loader.construct_document(node) if node is not None else None), lines
    finally:
        loader.dispose()


def too_big(name: str, size: int) -> DebriefError:
    return DebriefError(f"{name}: notes are {size // 1024} KB, over the 200 KB limit; split "
                        "them into one file per interview.")


def parse_notes(data: bytes, path: str, size: int | None = None) -> Notes:
    """Validate raw bytes and split front matter from body. Raises DebriefError on bad input.
    ``size`` is the file's size when ``data`` was read capped."""
    path = display_path(path)
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
    skipped = 0  # lines above the front matter's first "---", for line numbers in the file
    if lead:
        skipped = text[:lead.end()].count("\n")
        text = text[lead.end():]
    key_lines: dict[str, int] = {}
    try:
        # split, then load ourselves: frontmatter.parse turns a list or a bare string into {}
        handler = YAMLHandler()
        if handler.detect(text):
            parts = handler.FM_BOUNDARY.split(text, 2)
            if len(parts) < 3:
                raise DebriefError(
                    f"{name}: the front matter that starts with '---' on line {skipped + 1} "
                    "is never closed; add a line with just '---' after its last key: value "
                    "line (or remove the first '---' if the notes have no front matter).")
            fm, body = parts[1], parts[2]  # fm starts with the rest of the "---" line
            meta_raw, key_lines = _load_yaml(fm)
            meta_raw = {} if meta_raw is None else meta_raw
        else:
            meta_raw, body = {}, text
        body = body.strip()
    except _DuplicateKey as dup:
        raise DebriefError(
            f"{name}: front matter gives '{dup.key}' twice (line {skipped + dup.line + 1}, "
            f"first on line {skipped + dup.first + 1}); keep one of them.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {skipped + mark.line + 1})" if mark is not None else ""
        raise DebriefError(f"{name}: malformed front matter{where}; fix the YAML between the --- lines.") from None
    except RecursionError:
        raise DebriefError(f"{name}: the front matter is nested too deeply; write plain "
                           "key: value lines between the --- lines.") from None
    except (ValueError, TypeError) as exc:  # not expected from YAML; said plainly anyway
        raise DebriefError(f"{name}: malformed front matter ({type(exc).__name__}); write "
                           "plain key: value lines between the --- lines.") from None
    if not isinstance(meta_raw, dict):
        raise DebriefError(f"{name}: front matter must be key: value lines, such as "
                           "'company: Acme', between the --- lines.")
    try:
        meta = _meta_from(meta_raw)
    except FieldProblem as exc:
        line = key_lines.get(exc.key)
        where = f" (line {skipped + line + 1})" if line is not None else ""
        raise DebriefError(f"{name}: front matter '{exc.key}'{where} {exc.what}.") from None
    except (ValueError, RecursionError):
        raise DebriefError(f"{name}: malformed front matter; write plain key: value lines "
                           "between the --- lines.") from None
    if not body.strip():
        raise DebriefError(f"{name}: the notes have front matter but no text below it.")
    digest = hashlib.sha256(data).hexdigest()
    return Notes(path=path, meta=meta, body=body, sha256=digest)


def read_notes(path: Path) -> Notes:
    """One notes file, refused unread unless it is a regular file: stat first (a symlink is
    followed), then a capped, non-blocking read, so a FIFO or /dev/zero can never hang or
    fill memory."""
    name = display_path(str(path))
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DebriefError(f"{name}: no such file.") from None
    except OSError as exc:
        raise DebriefError(f"{name}: cannot read ({exc.strerror or exc}).") from None
    if stat.S_ISDIR(mode):
        raise DebriefError(f"{name}: is a folder; give one notes file (or use 'debrief batch').")
    if not stat.S_ISREG(mode):
        raise DebriefError(f"{name}: is {file_kind(mode)}, not a notes file; give a "
                           "Markdown or text file.")
    try:
        data, st = read_capped(path)
    except OSError as exc:
        raise DebriefError(f"{name}: cannot read ({exc.strerror or exc}).") from None
    return parse_notes(data, str(path), st.st_size)
