"""Open the advice index the settings name, and build it on first use."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import IndexError_
from pipeline.home import ensure_home
from pipeline.index.chroma import AdviceIndex, IndexReport, open_client
from pipeline.settings import IndexSettings

Notify = Callable[[str], None]


def open_index(settings: IndexSettings, *, rebuild: bool = False,
               notify: Notify | None = None) -> AdviceIndex:
    """Open the index; with ``rebuild``, an embedded index that will not open is set aside
    (renamed, never deleted) so that a fresh one can be built in its place."""
    home = ensure_home()
    url = settings.chroma_url
    try:
        client = open_client(url, home, settings.token)
    except IndexError_:
        if not rebuild or url:
            raise
        broken = home / "chroma"
        aside = home / f"chroma.broken-{time.strftime('%Y%m%d-%H%M%S')}"
        broken.rename(aside)
        if notify:
            notify(f"The index at {broken} could not be opened; moved it to {aside} and "
                   "building a new one.")
        client = open_client(url, home, settings.token)
    where = url or str(home / "chroma")
    return AdviceIndex(client, settings.collection, location=where)


def ensure_index(index: AdviceIndex, dirs: list[Path], notify: Notify) -> IndexReport | None:
    """Build a missing index on first use; an existing one is used as it is."""
    if index.exists():
        return None
    notify(f"No advice index yet in {index.location}: building it now (one time only)...")
    return index.build(dirs)
