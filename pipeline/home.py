"""The DEBRIEF_HOME layout: one folder for everything debrief keeps between runs.

Paths are read at call time, never at import, so tests (and users) can switch homes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from pipeline.errors import DebriefError

CHROMA = "chroma"
CONFIG = "config.toml"
PROFILE = "profile.toml"
EMBEDDING_CACHE = "embedding-cache.sqlite3"
OFF = {"off", "0", "false", "no", "none"}


def home() -> Path:
    """DEBRIEF_HOME, else the platform's user data dir."""
    env = os.environ.get("DEBRIEF_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("debrief", appauthor=False))


def ensure_home() -> Path:
    path = home()
    try:
        path.mkdir(parents=True, exist_ok=True)
        # a nameless probe: runs starting together must not remove each other's
        with tempfile.TemporaryFile(dir=path) as probe:
            probe.write(b"ok")
    except OSError as exc:
        raise DebriefError(
            f"DEBRIEF_HOME {path} is not writable ({exc.strerror or exc}); "
            "set DEBRIEF_HOME to a folder you can write."
        ) from None
    return path


def chroma_dir() -> Path:
    """The embedded Chroma index: its builds and a pointer per collection (index/store.py)."""
    return home() / CHROMA


def server_lock_path(url: str) -> Path:
    """The lock a build of a Chroma server's index holds on this machine (one per URL)."""
    return home() / f"chroma-server-{hashlib.sha256(url.encode()).hexdigest()[:12]}.lock"


def config_path() -> Path:
    env = os.environ.get("DEBRIEF_CONFIG")
    return Path(env).expanduser() if env else home() / CONFIG


def profile_path() -> Path:
    env = os.environ.get("DEBRIEF_PROFILE")
    return Path(env).expanduser() if env else home() / PROFILE


def embedding_cache_path() -> Path | None:
    """DEBRIEF_EMBEDDING_CACHE (a file, or "off" for none), else the file in DEBRIEF_HOME."""
    setting = os.environ.get("DEBRIEF_EMBEDDING_CACHE", "").strip()
    if setting.lower() in OFF:
        return None
    return Path(setting).expanduser() if setting else home() / EMBEDDING_CACHE
