"""Reading a profile: TOML text to a validated Profile, and every problem in one."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline.errors import DebriefError
from pipeline.home import profile_path
from pipeline.profile.model import Profile


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if p not in ("function-after[_known_or_described()]",))


def parse_profile(text: str, where: str) -> Profile:
    """TOML text -> Profile, or one DebriefError line naming the first problem and its field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DebriefError(f"profile {where} is not valid TOML: {exc}") from None
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        errs = exc.errors()
        first = errs[0]
        loc = _field(first["loc"]) or "profile"
        msg = first["msg"].removeprefix("Value error, ")
        more = f" (and {len(errs) - 1} more problem(s))" if len(errs) > 1 else ""
        raise DebriefError(f"profile {where}: {loc}: {msg}{more}; "
                           "run 'debrief profile check' for all of them.") from None


def profile_problems(text: str) -> list[str]:
    """Every problem in a profile text, one line each ('debrief profile check')."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [f"not valid TOML: {exc}"]
    try:
        Profile.model_validate(data)
    except ValidationError as exc:
        return [f"{_field(e['loc']) or 'profile'}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()]
    return []


def read_text(path: Path) -> str:
    """The profile file's text, or one DebriefError line (unreadable, too big, not UTF-8)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DebriefError(f"profile {path} cannot be read ({exc.strerror or exc}).") from None
    if len(raw) > 64_000:
        raise DebriefError(f"profile {path} is {len(raw) // 1000} KB; a profile is a few lines.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DebriefError(f"profile {path} is not UTF-8 text.") from None


def read_profile(path: Path) -> Profile:
    return parse_profile(read_text(path), str(path))


def load_profile(path: Path | None = None, *, enabled: bool = True) -> Profile | None:
    """The profile to weigh with: an explicit path must exist; the default one may not."""
    if not enabled:
        return None
    if path is not None:
        if not path.is_file():
            raise DebriefError(f"profile {path} does not exist; 'debrief profile init' writes one.")
        return read_profile(path)
    default = profile_path()
    return read_profile(default) if default.is_file() else None
