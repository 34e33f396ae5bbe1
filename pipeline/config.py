"""Settings: command-line flags > DEBRIEF_* environment > config file > defaults.

Click applies the first two (``envvar=``) and the config file through ``default_map``;
this module owns the file, the home directory and the values no flag carries.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pipeline.errors import DebriefError

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


def home() -> Path:
    """DEBRIEF_HOME, else the platform's user data dir. Read at call time, never at import."""
    env = os.environ.get("DEBRIEF_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("debrief", appauthor=False))


def ensure_home() -> Path:
    path = home()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise DebriefError(
            f"DEBRIEF_HOME {path} is not writable ({exc.strerror or exc}); "
            "set DEBRIEF_HOME to a folder you can write."
        ) from None
    return path


def config_path() -> Path:
    env = os.environ.get("DEBRIEF_CONFIG")
    return Path(env).expanduser() if env else home() / "config.toml"


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
