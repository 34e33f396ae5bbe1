"""Reading a profile: TOML text to a validated Profile, and every problem in one."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline.errors import DebriefError
from pipeline.home import profile_path
from pipeline.profile.check import Problem, check_data
from pipeline.profile.model import Profile


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if not str(p).startswith("function-"))


def _problems(data: dict[str, Any]) -> tuple[Profile | None, list[Problem]]:
    """The profile, or every problem with it. The walk (profile/check.py) names them in the
    file's terms; the model's own errors are the fallback for anything it does not know."""
    found = check_data(data)
    if found:
        return None, found
    try:
        return Profile.model_validate(data), []
    except ValidationError as exc:
        return None, [Problem(_field(e["loc"]) or "profile",
                              e["msg"].removeprefix("Value error, "),
                              "see 'debrief profile --help' for what the file holds")
                      for e in exc.errors()]


def parse_profile(text: str, where: str) -> Profile:
    """TOML text -> Profile, or one DebriefError line naming the first problem and its field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DebriefError(f"profile {where} is not valid TOML: {exc}") from None
    profile, found = _problems(data)
    if profile is None:
        more = f" (and {len(found) - 1} more problem(s))" if len(found) > 1 else ""
        raise DebriefError(f"profile {where}: {found[0].line()}{more}; "
                           "run 'debrief profile check' for all of them.")
    return profile


def profile_problems(text: str) -> list[Problem]:
    """Every problem in a profile text ('debrief profile check'), each with its field, what
    is wrong and what to write instead."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [Problem("toml", f"not valid TOML: {exc}",
                        "fix the line it names (strings in quotes, one key = value per line)")]
    return _problems(data)[1]


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
