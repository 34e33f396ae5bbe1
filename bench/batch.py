"""Benchmarks for issue 5 'Nightly batch', run by hand; prints numbers, asserts nothing.

Every model request goes to tests/fake_openai.py in a subprocess on 127.0.0.1, which sleeps
a fixed latency per request (default 0.2 s). N notes (default 48) are generated into a temp
dir from tests/fixtures/notes/clear/*.md and eval/cases/*.md, each altered by one line so
no two are the same.

(a) `debrief batch` at --concurrency 8, as a whole process, against the ideal
    N x latency / 8 (which counts only the waiting on the model, not our own work).
(b) The naive nightly loop a user would write, in this process: sequentially, for each
    note, re-read the corpus, re-embed it into a fresh in-memory Chroma collection with the
    same embedding function (loaded once), retrieve, build the prompt, and call
    ChatOpenAI(...).with_structured_output(its schema) directly. It embeds the whole corpus per
    note, so by default it runs on the first 6 notes and the per-note time is scaled to N
    (said so when printed); --naive-notes 0 runs all N.
(c) A no-op rerun over 100 notes (the folder of (a) plus new ones, reflected on first), as
    a whole process: the nightly cost when nothing changed.
(d) (a) again with --force: every note due again, as after a new prompt version or another
    model, with the notes' text already in the embedding cache.

    python bench/batch.py [--notes 48] [--latency 0.2] [--naive-notes 6] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MODEL = "bench-model"


def _sources() -> list[Path]:
    from pipeline.errors import DebriefError
    from pipeline.notes import read_notes

    paths = sorted((ROOT / "tests" / "fixtures" / "notes" / "clear").glob("*.md"))
    paths += sorted((ROOT / "eval" / "cases").glob("*.md"))
    good = []
    for p in paths:
        try:
            read_notes(p)
            good.append(p)
        except DebriefError:
            pass  # a case that is meant to be refused is no use here
    return good


def generate(folder: Path, count: int, start: int = 0) -> list[Path]:
    """`count` distinct notes: a source note plus one line naming the copy."""
    sources = _sources()
    made = []
    for i in range(start, start + count):
        src = sources[i % len(sources)]
        dest = folder / f"week-{i % 6:02d}" / f"{i:03d}-{src.name}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        text = src.read_text(encoding="utf-8").rstrip("\n")
        dest.write_text(f"{text}\n\nFollow-up call {i} is booked with the recruiter for next "
                        "week.\n", encoding="utf-8")
        made.append(dest)
    return made


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_openai.py"),
                             "--port", "0", "--latency", str(latency), "--model", MODEL],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        raise SystemExit(f"the fake server did not start: {line!r}")
    return proc, line.split()[-1]


def server_stats(url: str) -> dict:
    import httpx

    return httpx.get(url.removesuffix("/v1") + "/stats").json()


def breakdown(reqs: dict, began: float, wall: float, ideal: float, c: int) -> None:
    """Start-up, model span and tail of one run, from the server's clock (time.monotonic(),
    one clock for both processes)."""
    if reqs.get("first_arrival") is None:
        return
    head = reqs["first_arrival"] - began
    span = reqs["last_answer"] - reqs["first_arrival"]
    tail = began + wall - reqs["last_answer"]
    print(f"    where it went: start -> first request {head:.2f} s (interpreter, imports, "
          f"index, first retrieval); first request -> last answer {span:.2f} s; "
          f"last answer -> exit {tail:.2f} s")
    print(f"    model slots busy {reqs['busy_seconds'] / (c * span):.3f} of the span "
          f"({reqs['busy_seconds']:.2f} request-seconds / ({c} x {span:.2f} s)); "
          f"the span against the ideal: {ideal / span:.3f}")


def reset_stats(url: str) -> None:
    import httpx

    httpx.get(url.removesuffix("/v1") + "/stats/reset")


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, dict]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    try:
        return wall, json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}") from None


def naive_loop(paths: list[Path], url: str, k: int = 8) -> float:
    """The loop a user would write, re-embedding the corpus for every note."""
    import chromadb
    from chromadb.config import Settings
    from langchain_openai import ChatOpenAI

    from pipeline.corpus import chunk_corpus, load_corpus
    from pipeline.index.embedding import LocalMiniLM
    from pipeline.notes import read_notes
    from pipeline.prompts import build_prompt
    from pipeline.resources import corpus_dir
    from pipeline.retrieve import Passage, Retrieval
    from pipeline.schema import ModelAnswer

    ef = LocalMiniLM()  # the same embedding function, loaded once (kind to the naive loop)
    ef(["load the model before the clock starts"])
    client = chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))
    t = time.perf_counter()
    for i, path in enumerate(paths):
        notes = read_notes(path)
        chunks = chunk_corpus(load_corpus([corpus_dir()]))
        col = client.create_collection(f"naive-{i}", embedding_function=ef,
                                       configuration={"hnsw": {"space": "cosine"}})
        col.add(ids=[c.id for c in chunks], documents=[c.embed_text for c in chunks],
                metadatas=[{"i": n} for n in range(len(chunks))])
        res = col.query(query_texts=[notes.body[:4000]], n_results=k,
                        include=["metadatas", "distances"])
        passages = []
        for m, d in zip(res["metadatas"][0], res["distances"][0], strict=True):
            c = chunks[int(m["i"])]
            passages.append(Passage(id=c.id, doc_id=c.doc_id, title=c.title, heading=c.heading,
                                    text=c.text, stance=c.stance, source=c.source, tags=c.tags,
                                    score=1 - float(d)))
        prompt = build_prompt(notes, Retrieval(passages=passages, sentences=[], ignored=[]))
        llm = ChatOpenAI(model=MODEL, base_url=url, api_key="bench", timeout=60,
                         max_retries=2, temperature=0)
        answer = llm.with_structured_output(prompt.schema, method="function_calling") \
            .invoke(prompt.messages)
        ModelAnswer.model_validate(answer)
        client.delete_collection(f"naive-{i}")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--notes", type=int, default=48)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--naive-notes", type=int, default=6,
                    help="notes the naive loop runs on (scaled to --notes); 0 = all")
    ap.add_argument("--noop-notes", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5, help="runs of the no-op rerun (median)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="debrief-bench-batch-"))
    env = dict(os.environ, DEBRIEF_HOME=str(tmp / "home"), ANONYMIZED_TELEMETRY="False",
               PYTHONPATH=str(ROOT), NO_PROXY="127.0.0.1")
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "DEBRIEF_CONFIG"):
        env.pop(name, None)
    os.environ.update({k: env[k] for k in ("DEBRIEF_HOME", "ANONYMIZED_TELEMETRY", "NO_PROXY")})
    server, url = start_server(args.latency)
    try:
        py = [sys.executable, "-m", "pipeline"]
        subprocess.run([*py, "index"], env=env, cwd=ROOT, check=True, capture_output=True)
        notes = tmp / "notes"
        paths = generate(notes, args.notes)
        n, lat, c = len(paths), args.latency, args.concurrency
        print(f"# debrief batch bench: {n} notes, fake server latency {lat:.3f} s/request, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        print(f"# server: {shlex.join([sys.executable, 'tests/fake_openai.py', '--port', '0', '--latency', str(lat), '--model', MODEL])}")

        # (a) our batch
        cmd = [*py, "batch", str(notes), "--provider", "openai", "--base-url", url,
               "--model", MODEL, "--concurrency", str(c), "--json"]
        began = time.monotonic()
        wall, data = run(cmd, env)
        ideal = n * lat / c
        reqs = server_stats(url)
        print(f"\n(a) {shlex.join(cmd)}")
        print(f"    processed {data['processed']}, failed {data['failed']}; "
              f"{reqs['requests']} requests, at most {reqs['max_in_flight']} in flight")
        print(f"    whole process {wall:.2f} s; batch's own time {data['seconds']:.2f} s; "
              f"ideal {n} x {lat} / {c} = {ideal:.2f} s")
        print(f"    ratio ideal/actual: {ideal / wall:.3f} (whole process), "
              f"{ideal / data['seconds']:.3f} (batch's own time)")
        breakdown(reqs, began, wall, ideal, c)
        per_note = [r["seconds"] for r in data["results"] if r["status"] == "processed"]
        if per_note:
            print(f"    per note (retrieve + model + write, in its thread): median "
                  f"{statistics.median(per_note):.2f} s, max {max(per_note):.2f} s")

        # where the rest of the time goes: retrieval alone, sequential, same notes
        from pipeline.index.open import open_index
        from pipeline.notes import read_notes
        from pipeline.retrieve import retrieve
        from pipeline.settings import IndexSettings

        os.environ["DEBRIEF_EMBEDDING_CACHE"] = "off"  # the floor of notes never seen
        index = open_index(IndexSettings(collection="advice"))
        index.embedder.embed(["warm up"])
        t = time.perf_counter()
        for p in paths:
            retrieve(read_notes(p), index)
        retr = time.perf_counter() - t
        del os.environ["DEBRIEF_EMBEDDING_CACHE"]
        print(f"    retrieval alone for the {n} notes, sequential, in this process: {retr:.2f} s "
              f"({retr / n:.3f} s/note); a floor the ideal does not count")
        bound = max(ideal, retr)
        print(f"    against max(ideal, retrieval floor) = {bound:.2f} s: ratio "
              f"{bound / data['seconds']:.3f} (batch's own time)")

        # (d) the same notes due again (a new prompt version, another model, a re-indexed
        # corpus): their text is in the embedding cache, so retrieval embeds nothing
        cmd_again = [*cmd, "--force"]
        reset_stats(url)
        began = time.monotonic()
        wall2, data2 = run(cmd_again, env)
        reqs2 = server_stats(url)
        print(f"\n(d) {shlex.join(cmd_again)}  (every note due again; note text in the "
              f"embedding cache)")
        print(f"    processed {data2['processed']}, failed {data2['failed']}; "
              f"{reqs2['requests']} requests, at most {reqs2['max_in_flight']} in flight")
        print(f"    whole process {wall2:.2f} s; batch's own time {data2['seconds']:.2f} s; "
              f"ideal {ideal:.2f} s")
        print(f"    ratio ideal/actual: {ideal / wall2:.3f} (whole process), "
              f"{ideal / data2['seconds']:.3f} (batch's own time)")
        breakdown(reqs2, began, wall2, ideal, c)

        # (b) the naive loop
        k = n if args.naive_notes <= 0 else min(args.naive_notes, n)
        naive = naive_loop(paths[:k], url)
        naive_n = naive / k * n
        print("\n(b) naive loop (bench/batch.py:naive_loop): per note, load_corpus + chunk, fresh "
              "chromadb.EphemeralClient collection with LocalMiniLM, add all chunks, query, "
              "build_prompt, ChatOpenAI(...).with_structured_output(prompt.schema)")
        scaled = "" if k == n else f" (ran {k} notes: {naive:.2f} s, {naive / k:.2f} s/note, scaled to {n})"
        print(f"    naive loop for {n} notes: {naive_n:.2f} s{scaled}")
        print(f"    our speed-up: {naive_n / wall:.1f}x (whole process), "
              f"{naive_n / data['seconds']:.1f}x (batch's own time)")

        # (c) no-op rerun over 100 notes
        more = max(0, args.noop_notes - n)
        generate(notes, more, start=n)
        cmd = [*py, "batch", str(notes), "--provider", "openai", "--base-url", url,
               "--model", MODEL, "--concurrency", str(c), "--json"]
        _, fill = run(cmd, env)
        walls, inner = [], []
        for _ in range(args.repeat):
            w, d = run(cmd, env)
            walls.append(w)
            inner.append(d["seconds"])
        is_noop = d["processed"] == 0 and d["skipped"] == n + more
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare = time.perf_counter() - t
        print(f"\n(c) {shlex.join(cmd)}")
        print(f"    first filled in {fill['processed']} new notes; then {args.repeat} no-op "
              f"reruns over {n + more} notes (processed {d['processed']}, skipped "
              f"{d['skipped']}{'' if is_noop else ' -- NOT a no-op!'})")
        print(f"    no-op rerun: median {statistics.median(walls):.3f} s whole process "
              f"(min {min(walls):.3f}), batch's own time median {statistics.median(inner):.3f} s;"
              f" bare `python -c pass` {bare:.3f} s")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
