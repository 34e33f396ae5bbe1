"""Open the advice index the settings name, and build it on first use."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.home import CHROMA, ensure_home
from pipeline.index import store
from pipeline.index.chroma import AdviceIndex, IndexReport
from pipeline.index.client import open_client
from pipeline.settings import IndexSettings

Notify = Callable[[str], None]


def open_index(settings: IndexSettings, *, rebuild: bool = False,
               notify: Notify | None = None) -> AdviceIndex:
    """Open the index (nothing is read or created until it is used); with ``rebuild``, a file
    where the embedded index folder should be is set aside (renamed, never deleted) so that a
    fresh index can be built in its place."""
    home = ensure_home()
    url = settings.chroma_url
    if url:
        client = open_client(url, home, settings.token)
        return AdviceIndex(client, settings.collection, location=url)
    root = home / CHROMA
    if rebuild and root.exists() and not root.is_dir():
        aside = store.set_aside(root)
        if notify:
            notify(f"{root} was a file, not the index folder; moved it to {aside} and "
                   "building a new index.")
    store.check_root(root)
    return AdviceIndex(None, settings.collection, location=str(root), root=root, home=home)


def ensure_index(index: AdviceIndex, dirs: list[Path], notify: Notify) -> IndexReport | None:
    """Build the index when there is no complete one: on first use, after an interrupted
    build, or when another process is building it (then wait for that one). A complete index
    is used as it is."""
    if index.exists():
        return None
    return index.build(dirs, notify=notify, first_use=True)
