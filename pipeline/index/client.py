"""Opening Chroma: the embedded PersistentClient on a folder, or an HttpClient for a server."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pipeline.errors import IndexError_
from pipeline.index import store


def open_client(chroma_url: str | None, home: Path, token: str | None = None, *,
                path: Path | None = None) -> Any:
    """An embedded PersistentClient (``path``, default the index folder under DEBRIEF_HOME), or
    an HttpClient for a `chroma run` server."""
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    if not chroma_url:
        path = path or home / "chroma"
        store.check_root(home / "chroma")
        try:
            return chromadb.PersistentClient(path=str(path), settings=settings)
        except Exception as exc:
            # chromadb caches a half-started system per path; drop it so a retry starts clean
            with contextlib.suppress(Exception):
                from chromadb.api.shared_system_client import SharedSystemClient

                SharedSystemClient._identifier_to_system.pop(str(path), None)
            raise IndexError_(
                f"the index at {path} cannot be opened ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:200]}); run 'debrief index --rebuild'."
            ) from None
    try:
        url = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
        port = url.port  # raises ValueError on a port that is not a number in 0-65535
    except ValueError:
        url, port = urlparse(""), None
    if url.scheme not in ("http", "https") or not url.hostname:
        raise IndexError_(f"Chroma URL '{chroma_url}' is not an http(s) URL like http://127.0.0.1:8000.")
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        client = chromadb.HttpClient(
            host=url.hostname,
            port=port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            headers=headers,
            settings=settings,
        )
        client.heartbeat()
    except Exception as exc:
        raise IndexError_(
            f"cannot reach the Chroma server at {chroma_url} ({type(exc).__name__}); "
            "is 'chroma run' up and the URL right?"
        ) from None
    return client
