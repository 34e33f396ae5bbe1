"""Build the parts a command needs (home, index, provider) from resolved options."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pipeline.config import ensure_home
from pipeline.index import AdviceIndex, IndexReport, open_client
from pipeline.llm.base import Provider
from pipeline.resources import corpus_dir


def corpus_dirs(extra: tuple[Path, ...] | list[Path] = (), include_default: bool = True) -> list[Path]:
    dirs = [corpus_dir()] if include_default else []
    return dirs + [Path(p).expanduser() for p in extra]


def open_index(chroma_url: str | None, collection: str, *, rebuild: bool = False,
               notify: Callable[[str], None] | None = None) -> AdviceIndex:
    """Open the index; with ``rebuild``, an embedded index that will not open is set aside
    (renamed, never deleted) so that a fresh one can be built in its place."""
    from pipeline.errors import IndexError_

    home = ensure_home()
    token = os.environ.get("DEBRIEF_CHROMA_TOKEN")
    try:
        client = open_client(chroma_url, home, token)
    except IndexError_:
        if not rebuild or chroma_url:
            raise
        import time

        broken = home / "chroma"
        aside = home / f"chroma.broken-{time.strftime('%Y%m%d-%H%M%S')}"
        broken.rename(aside)
        if notify:
            notify(f"The index at {broken} could not be opened; moved it to {aside} and "
                   "building a new one.")
        client = open_client(chroma_url, home, token)
    where = chroma_url or str(home / "chroma")
    return AdviceIndex(client, collection, location=where)


def ensure_index(index: AdviceIndex, dirs: list[Path],
                 notify: Callable[[str], None]) -> IndexReport | None:
    """Build a missing index on first use; an existing one is used as it is."""
    if index.exists():
        return None
    notify(f"No advice index yet in {index.location}: building it now (one time only)...")
    return index.build(dirs)


def make_provider(provider: str, *, model: str | None, base_url: str | None,
                  structured_output: str | None, timeout: float, max_retries: int,
                  http_client: object = None, max_tokens: int | None = None) -> Provider:
    api_key = os.environ.get("OPENAI_API_KEY") or None
    if provider == "auto":
        provider = "openai" if (api_key or base_url) else "offline"
    if provider == "offline":
        from pipeline.llm.offline import OfflineEngine

        return OfflineEngine()
    from pipeline.llm.openai_provider import OpenAIProvider

    return OpenAIProvider(model=model, api_key=api_key, base_url=base_url,
                          method=structured_output, timeout=timeout, max_retries=max_retries,
                          http_client=http_client, max_tokens=max_tokens)
