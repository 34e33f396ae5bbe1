"""How fast the local model is through debrief, against the server alone on the same requests.

    python bench/local.py                 # 20 notes (needs the [local] extra: make local)
    python bench/local.py --notes 6       # a quicker look

Measures, on this machine, in one run:
  cold     one `debrief reflect --provider local` as a new process: server start included
  warm     one reflection with the server already up, twice (the second reuses the prompt
           cache for the shared system prefix)
  server   the same N requests sent straight to the server, one after another: the ceiling
  batch    `debrief batch` over the N notes at --concurrency 1 and 2, as new processes
and prints each batch's throughput as a ratio of the server-alone ceiling. llama-cpp-python's
server answers one request at a time, so concurrency 2 shows what queueing costs.
Run it on a quiet machine: a local model on 2 cores slows down many times under other load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def notes_of_about(words: int, count: int) -> list[Path]:
    """Eval notes closest to ``words`` words long."""
    cases = sorted((ROOT / "eval" / "cases").glob("*.md"))
    sized = sorted(cases, key=lambda p: abs(len(p.read_text(encoding="utf-8").split()) - words))
    return sorted(sized[:count])


def run(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--notes", type=int, default=20)
    ap.add_argument("--words", type=int, default=300)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    import httpx

    from pipeline.index.open import ensure_index, open_index
    from pipeline.llm.local.model import locate_model
    from pipeline.llm.local.provider import LocalProvider
    from pipeline.llm.local.server import LocalServer
    from pipeline.notes import read_notes
    from pipeline.prompts import build_prompt
    from pipeline.reflect import reflect_on
    from pipeline.retrieve import retrieve
    from pipeline.settings import IndexSettings

    home = Path(tempfile.mkdtemp(prefix="debrief-bench-local-"))
    os.environ["DEBRIEF_HOME"] = str(home)
    os.environ.pop("DEBRIEF_LOCAL_MODEL", None)
    env = dict(os.environ)
    threads = [] if args.threads is None else ["--local-threads", str(args.threads)]
    notes = notes_of_about(args.words, args.notes)
    words = [len(n.read_text(encoding="utf-8").split()) for n in notes]
    print(f"{len(notes)} notes of {min(words)}-{max(words)} words; home {home}")
    index = open_index(IndexSettings())
    ensure_index(index, IndexSettings().corpus_folders(), print)
    locate_model(None)  # assemble the packaged model once, outside every timing

    debrief = [sys.executable, "-m", "pipeline"]
    cold = run([*debrief, "reflect", str(notes[0]), "--provider", "local", *threads], env)
    print(f"cold reflect (new process, server start included): {cold:.1f} s")

    server = LocalServer(locate_model(None), threads=args.threads).start()
    try:
        provider = LocalProvider(server, timeout=900, max_retries=0, max_tokens=None)
        first = read_notes(notes[0])
        warm = []
        for _ in range(2):
            t = time.perf_counter()
            reflect_on(first, index, provider)
            warm.append(time.perf_counter() - t)
        print(f"warm reflect: {warm[0]:.1f} s, again (prompt cache warm): {warm[1]:.1f} s")

        bodies = []
        for path in notes:
            n = read_notes(path)
            prompt = build_prompt(n, retrieve(n, index))
            bodies.append({"model": server.alias, "temperature": 0, "max_tokens": 700,
                           "messages": [{"role": r, "content": c} for r, c in prompt.messages],
                           "response_format": {"type": "json_object",
                                               "schema": prompt.schema}})
        each = []
        with httpx.Client(timeout=900) as client:
            t0 = time.perf_counter()
            for body in bodies:
                t = time.perf_counter()
                client.post(f"{server.base_url}/chat/completions", json=body).raise_for_status()
                each.append(time.perf_counter() - t)
            alone = time.perf_counter() - t0
        print(f"server alone, {len(bodies)} requests in a row: {alone:.1f} s "
              f"(median {statistics.median(each):.1f} s, max {max(each):.1f} s)")
    finally:
        server.stop()

    for concurrency in (1, 2):
        folder = home / f"notes-{concurrency}"
        folder.mkdir()
        for path in notes:
            shutil.copy(path, folder / path.name)
        took = run([*debrief, "batch", str(folder), "--provider", "local", "--concurrency",
                    str(concurrency), *threads], env)
        print(f"batch of {len(notes)} at --concurrency {concurrency}: {took:.1f} s, "
              f"{alone / took:.2f} of the server-alone throughput")


if __name__ == "__main__":
    main()
