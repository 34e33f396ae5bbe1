"""Reading a batch's results back: the current reflection of every note, and the failures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from pipeline.batch.layout import STATE_FILE
from pipeline.batch.state import State
from pipeline.files import MAX_OWN_BYTES, read_capped
from pipeline.schema import Reflection


@dataclass
class Loaded:
    """Every reflection to rank; (path, error) for each note without a current one; and,
    for the notes whose redo failed but that still have their last good reflection (it is
    among ``reflections``), path -> why the redo failed."""

    reflections: list[Reflection] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    stale: dict[str, str] = field(default_factory=dict)


def load_results(out_dir: Path) -> Loaded:
    """Every reflection the batch state lists as current or as the last good one.

    Read from the state the batch just committed, so a reflection that was not redone this
    time is the stored one. A note never drops out silently: failed in the batch, or with
    an output that cannot be read back, it is listed with the reason; a failed redo keeps
    its last good reflection, listed as stale.
    """
    state = State(out_dir / STATE_FILE, readonly=True)
    try:
        rows = state.rows()
    finally:
        state.close()
    loaded = Loaded()
    for rel in sorted(rows):
        row = rows[rel]
        if row["status"] != "ok":
            error = row["error"] or "failed, no reason recorded"
            if not row["out_json"]:
                loaded.failed.append((rel, error))
                continue
            loaded.stale[rel] = error
        path = (out_dir / (row["out_json"] or "")).resolve()
        if not row["out_json"] or not path.is_relative_to(out_dir):
            loaded.failed.append((rel, "the batch state names no reflection inside the "
                                       "output folder"))
            continue
        try:
            data, _ = read_capped(path, MAX_OWN_BYTES)
            loaded.reflections.append(Reflection.model_validate_json(data))
        except OSError as exc:
            loaded.stale.pop(rel, None)
            loaded.failed.append((rel, f"cannot read its reflection {row['out_json']} "
                                       f"({exc.strerror or exc}); run again to redo it"))
        except ValidationError as exc:
            loaded.stale.pop(rel, None)
            loaded.failed.append((rel, f"its reflection {row['out_json']} is not valid "
                                       f"({exc.error_count()} problem(s)); run with --force "
                                       "to redo it"))
    for rel, error in loaded.stale.items():
        loaded.failed.append((rel, f"{error} (ranked on its last good reflection, stale)"))
    loaded.failed.sort()
    return loaded


def load_reflections(out_dir: Path) -> tuple[list[Reflection], list[tuple[str, str]]]:
    """(reflections, (path, error) for every failed note), as ``load_results`` finds them;
    a stale reflection is in both."""
    loaded = load_results(out_dir)
    return loaded.reflections, loaded.failed
