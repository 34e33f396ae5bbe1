"""Settings: command-line flags > DEBRIEF_* environment > config file > defaults.

The command layer applies flags and environment variables (Click's ``envvar=``) and feeds
the config file in through ``default_map``; it then hands the core these typed settings.
This module owns the config file and the one rule that picks an engine for ``auto``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import DebriefError
from pipeline.home import config_path
from pipeline.resources import corpus_dir

CONFIG_KEYS = {
    "provider",
    "model",
    "base_url",
    "structured_output",
    "chroma_url",
    "collection",
    "top_k",
    "timeout",
    "max_retries",
    "max_tokens",
    "corpus",
    "concurrency",
}
PROVIDERS = ("auto", "offline", "openai")
DEFAULT_COLLECTION = "advice"


@dataclass(frozen=True)
class ProviderSettings:
    """Which engine answers, and how to talk to a model server."""

    provider: str = "auto"
    model: str | None = None
    base_url: str | None = None
    structured_output: str | None = "auto"
    timeout: float = 60.0
    max_tokens: int | None = None
    max_retries: int = 2

    @property
    def api_key(self) -> str | None:
        """From the environment only: a key never sits in a flag, a file or a repr."""
        return os.environ.get("OPENAI_API_KEY") or None

    def engine(self) -> str:
        """The engine ``provider`` names; ``auto`` is openai when a key or a server URL is
        set, else the offline engine."""
        if self.provider != "auto":
            return self.provider
        return "openai" if (self.api_key or self.base_url) else "offline"


@dataclass(frozen=True)
class IndexSettings:
    """Where the advice index lives and what goes into it."""

    collection: str = DEFAULT_COLLECTION
    chroma_url: str | None = None
    corpus_dirs: tuple[Path, ...] = ()

    @property
    def token(self) -> str | None:
        return os.environ.get("DEBRIEF_CHROMA_TOKEN")

    def corpus_folders(self, include_default: bool = True) -> list[Path]:
        """The shipped corpus (unless excluded) and the extra folders, in that order."""
        dirs = [corpus_dir()] if include_default else []
        return dirs + [Path(p).expanduser() for p in self.corpus_dirs]


def load_config_file() -> dict[str, Any]:
    """Flat TOML of CONFIG_KEYS; unknown keys are an error so typos do not pass silently."""
    path = config_path()
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DebriefError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - CONFIG_KEYS)
    if unknown:
        raise DebriefError(
            f"config file {path} has unknown keys: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(CONFIG_KEYS))})"
        )
    return data
