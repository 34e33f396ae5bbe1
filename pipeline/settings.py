"""Settings: command-line flags > DEBRIEF_* environment > config file > defaults.

The command layer applies flags and environment variables (Click's ``envvar=``) and feeds
the config file in through ``default_map``; it then hands the core these typed settings.
This module owns the config file and the one rule that picks an engine for ``auto``.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pipeline.errors import DebriefError
from pipeline.home import OFF, config_path
from pipeline.resources import corpus_dir

PROVIDERS = ("auto", "offline", "openai", "local")
STRUCTURED_OUTPUT = ("auto", "json_schema", "function_calling", "json_object", "json_mode")
# the numeric settings' bounds, shared by the options (click.IntRange/FloatRange) and the
# config file's check, so a value means the same wherever it is given
RANGES: dict[str, tuple[int | float, int | float]] = {
    "top_k": (1, 20),
    "timeout": (0.1, 3600),
    "max_retries": (0, 10),
    "max_tokens": (64, 100000),
    "concurrency": (1, 64),
    "local_threads": (1, 64),
}
# config key -> what its value must be: "text", "url", "number", "int", "folders" or choices
CONFIG_KEYS: dict[str, str | tuple[str, ...]] = {
    "provider": PROVIDERS,
    "model": "text",
    "base_url": "url",
    "structured_output": STRUCTURED_OUTPUT,
    "chroma_url": "url",
    "collection": "text",
    "top_k": "int",
    "timeout": "number",
    "max_retries": "int",
    "max_tokens": "int",
    "corpus": "folders",
    "concurrency": "int",
    "local_model": "text",
    "local_threads": "int",
    "name": "text",
}
# seconds per model request when none is set: a local model on two cores can take minutes
DEFAULT_TIMEOUT = {"openai": 60.0, "local": 600.0}
DEFAULT_COLLECTION = "advice"
KEY_ENV = "OPENAI_API_KEY"
TOKEN_ENV = "DEBRIEF_CHROMA_TOKEN"
SECRET_ENV = (KEY_ENV, TOKEN_ENV)  # what no child process of ours is given


@dataclass(frozen=True)
class ProviderSettings:
    """Which engine answers, and how to talk to a model server."""

    provider: str = "auto"
    model: str | None = None
    base_url: str | None = None
    structured_output: str | None = "auto"
    timeout: float | None = None
    max_tokens: int | None = None
    max_retries: int = 2
    local_model: str | None = None  # a GGUF path, or "off" so that auto never picks local
    local_threads: int | None = None  # CPU threads for the local server [default: all cores]

    @property
    def api_key(self) -> str | None:
        """From the environment only: a key never sits in a flag, a file or a repr."""
        return os.environ.get(KEY_ENV) or None

    def engine(self, local_ready: bool = False) -> str:
        """The engine ``provider`` names. ``auto`` is openai when a key or a server URL is
        set; else local when a local model is installed (``local_ready``, which the llm layer
        knows) and not turned off; else the offline engine."""
        if self.provider != "auto":
            return self.provider
        if self.api_key or self.base_url:
            return "openai"
        if local_ready and not self.local_off:
            return "local"
        return "offline"

    @property
    def local_off(self) -> bool:
        return (self.local_model or "").strip().lower() in OFF

    @property
    def local_model_path(self) -> Path | None:
        if not self.local_model or self.local_off:
            return None
        return Path(self.local_model).expanduser()

    def request_timeout(self, engine: str) -> float:
        return self.timeout if self.timeout is not None else DEFAULT_TIMEOUT.get(engine, 60.0)


@dataclass(frozen=True)
class IndexSettings:
    """Where the advice index lives and what goes into it."""

    collection: str = DEFAULT_COLLECTION
    chroma_url: str | None = None
    corpus_dirs: tuple[Path, ...] = ()

    @property
    def token(self) -> str | None:
        return os.environ.get(TOKEN_ENV)

    def corpus_folders(self, include_default: bool = True) -> list[Path]:
        """The shipped corpus (unless excluded) and the extra folders, in that order."""
        dirs = [corpus_dir()] if include_default else []
        return dirs + [Path(p).expanduser() for p in self.corpus_dirs]


def _toml(value: Any) -> str:
    """A value as the user wrote it: 'text' quoted, true/false in lower case."""
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)


def _did_you_mean(value: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def url_problem(url: str, example: str, *, scheme_optional: bool = False) -> str | None:
    """Why ``url`` is not an http(s) URL, or None. ``scheme_optional``: ``host:port`` reads
    as http (how the index layer reads a Chroma server's URL)."""
    try:
        parsed = urlparse(f"http://{url}" if scheme_optional and "://" not in url else url)
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parsed = urlparse("")
    if (parsed.scheme not in ("http", "https") or not parsed.hostname
            or any(ord(c) <= 32 or ord(c) == 127 for c in url)):
        return f"is not an http(s) URL like \"{example}\""
    return None


def config_problems(data: dict[str, Any]) -> list[str]:
    """Every problem with the config file's keys and values, in the file's terms: the same
    choices and bounds as the command-line options, so a bad value is caught here and never
    blamed on a flag."""
    problems: list[str] = []
    for key, value in data.items():
        kind = CONFIG_KEYS.get(key)
        shown = f"{key} = {_toml(value)}"
        if kind is None:
            hint = _did_you_mean(key, CONFIG_KEYS) or f" (known keys: {', '.join(CONFIG_KEYS)})"
            problems.append(f"unknown key '{key}'{hint}")
        elif isinstance(kind, tuple):
            if not isinstance(value, str):
                problems.append(f"{shown} should be text, one of {', '.join(kind)}")
            elif value not in kind:
                problems.append(f"{shown} is not one of {', '.join(kind)}"
                                + _did_you_mean(value, kind))
        elif kind in ("text", "url"):
            example = {"base_url": "http://127.0.0.1:11434/v1",
                       "chroma_url": "http://127.0.0.1:8000"}.get(key, "")
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{shown} should be text in quotes, e.g. {key} = "
                                f"\"{example or 'NAME'}\"")
            elif kind == "url" and (why := url_problem(value.strip(), example,
                                                      scheme_optional=key == "chroma_url")):
                problems.append(f"{shown} {why}")
        elif kind in ("int", "number"):
            low, high = RANGES[key]
            whole = kind == "int"
            ok_type = (isinstance(value, int) if whole else isinstance(value, (int, float)))
            if (not ok_type or isinstance(value, bool) or value != value
                    or not low <= value <= high):
                what = (f"a whole number from {low:g} to {high:g}" if whole
                        else f"a number from {low:g} to {high:g}")
                problems.append(f"{shown} should be {what}, without quotes")
        elif kind == "folders" and not (
                isinstance(value, str) and value.strip()
                or isinstance(value, list) and value
                and all(isinstance(v, str) and v.strip() for v in value)):
            problems.append(f"{shown} should be a folder or a list of folders, e.g. "
                            "corpus = [\"~/advice\"]")
    return problems


def load_config_file() -> dict[str, Any]:
    """Flat TOML of CONFIG_KEYS, every key and value checked: a typo or a bad value is one
    line naming the file, never a flag's usage error. DEBRIEF_CONFIG must name a file that
    exists; the default file may be absent."""
    path = config_path()
    chosen = bool(os.environ.get("DEBRIEF_CONFIG"))
    if not path.exists():
        if chosen:
            raise DebriefError(f"DEBRIEF_CONFIG points at {path}, which does not exist; create "
                               "it, or unset DEBRIEF_CONFIG to use the default config file.")
        return {}
    if not path.is_file():
        raise DebriefError(f"config file {path} is not a file; "
                           + ("point DEBRIEF_CONFIG at a TOML file." if chosen
                              else "move it away."))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DebriefError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise DebriefError(f"config file {path} cannot be read "
                           f"({exc.strerror or exc}).") from None
    problems = config_problems(data)
    if problems:
        raise DebriefError(f"{path}: {'; '.join(problems)}.")
    return data


def person_name() -> str | None:
    """Who signs the drafts: DEBRIEF_NAME, else ``name`` in the config file. A broken config
    file is the commands' to report; here it only means no name."""
    env = os.environ.get("DEBRIEF_NAME", "").strip()
    if env:
        return env
    try:
        value = load_config_file().get("name")
    except DebriefError:
        return None
    return value.strip() if isinstance(value, str) and value.strip() else None
