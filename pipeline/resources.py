"""Locate shipped data (corpus, prompts, tokenizer) in a wheel or in a checkout."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path


@cache
def _data_root(name: str) -> Path:
    # A wheel carries corpus/ and prompts/ under pipeline/_data (hatch force-include);
    # an editable install or a plain checkout finds them beside the package.
    packaged = Path(str(files("pipeline"))) / "_data" / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / name


def corpus_dir() -> Path:
    return _data_root("corpus")


def prompts_dir() -> Path:
    """DEBRIEF_PROMPTS_DIR lets you try a prompt without reinstalling (and lets the eval
    sabotage test prove a changed prompt cannot replay old answers)."""
    import os

    env = os.environ.get("DEBRIEF_PROMPTS_DIR")
    return Path(env).expanduser() if env else _data_root("prompts")


def tokenizer_dir() -> Path:
    return Path(str(files("pipeline"))) / "assets" / "minilm"


def assets_dir() -> Path:
    """Small data shipped inside the package: tokenizer files, the sentence model's weights."""
    return Path(str(files("pipeline"))) / "assets"
