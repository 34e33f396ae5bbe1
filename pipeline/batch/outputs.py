"""Reading a batch's results back: the current reflection of every note, and the failures."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from pipeline.batch.layout import STATE_FILE
from pipeline.batch.state import State
from pipeline.schema import Reflection


def load_reflections(out_dir: Path) -> tuple[list[Reflection], list[tuple[str, str]]]:
    """Every reflection the batch state lists as current, and (path, error) for the rest.

    Read from the state the batch just committed, so a reflection that was not redone this
    time is the stored one. A note never drops out silently: failed in the batch, or with
    an output that cannot be read back, it is listed with the reason.
    """
    state = State(out_dir / STATE_FILE, readonly=True)
    try:
        rows = state.rows()
    finally:
        state.close()
    reflections: list[Reflection] = []
    failed: list[tuple[str, str]] = []
    for rel in sorted(rows):
        row = rows[rel]
        if row["status"] != "ok":
            failed.append((rel, row["error"] or "failed, no reason recorded"))
            continue
        path = (out_dir / (row["out_json"] or "")).resolve()
        if not row["out_json"] or not path.is_relative_to(out_dir):
            failed.append((rel, "the batch state names no reflection inside the output folder"))
            continue
        try:
            reflections.append(Reflection.model_validate_json(path.read_bytes()))
        except OSError as exc:
            failed.append((rel, f"cannot read its reflection {row['out_json']} "
                                f"({exc.strerror or exc}); run again to redo it"))
        except ValidationError as exc:
            failed.append((rel, f"its reflection {row['out_json']} is not valid "
                                f"({exc.error_count()} problem(s)); run with --force to redo it"))
    return reflections, failed
