"""Benchmarks for issue 'reflect end to end', run by hand; prints ratios, asserts nothing.

1. Embedding the corpus chunks: chromadb's stock ONNXMiniLM_L6_V2 (pads to 256 tokens,
   batches of 32) against our LocalMiniLM (length-sorted, per-batch padding), same model
   file, same chunks, same run. Also checks the vectors agree.
2. Unchanged re-index: time of `AdviceIndex.build` when nothing changed; and the share of a
   full build spent writing it from the clean child process (index/writer.py).
3. Cold `debrief --help` against a bare `python -c "import click"`.
4. Warm offline `debrief reflect` on the example note, as a whole process: as a new note
   (embedding cache off) and as a note seen before (its vectors from the cache).
5. Batch independence: every chunk embedded alone against in the length-sorted batches
   (must be bit-identical: a text's vector is a function of the text alone), the cost of
   embedding one text at a time instead, and the cost of checking cached vectors on read
   (digest, finite, unit length) per 1,000 vectors.

    python bench/index.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _stock_embedder(tmp: Path):
    """The stock class, pointed at a folder holding the same six files (no download)."""
    from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

    from pipeline.index.embedding import model_path
    from pipeline.resources import tokenizer_dir

    onnx = tmp / "onnx"
    onnx.mkdir(parents=True)
    for f in tokenizer_dir().iterdir():
        if f.is_file():
            (onnx / f.name).symlink_to(f)
    (onnx / "model.onnx").symlink_to(model_path())
    ef = ONNXMiniLM_L6_V2(preferred_providers=["CPUExecutionProvider"])
    ef.DOWNLOAD_PATH = tmp
    return ef


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _proc(cmd: list[str], repeat: int, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=env, cwd=ROOT)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import numpy as np

    from pipeline.corpus import chunk_corpus, load_corpus
    from pipeline.index.embedding import LocalMiniLM
    from pipeline.resources import corpus_dir

    chunks = [c.embed_text for c in chunk_corpus(load_corpus([corpus_dir()]))]
    with tempfile.TemporaryDirectory() as tmp:
        stock = _stock_embedder(Path(tmp))
        ours = LocalMiniLM()
        stock(chunks[:2])
        ours.embed(chunks[:2])  # load both sessions before timing
        t_stock = _best(lambda: stock(chunks), args.repeat)
        t_ours = _best(lambda: ours.embed(chunks), args.repeat)
        a = np.array(stock(chunks))
        b = ours.embed(chunks)
        cos = float(np.min(np.sum(a * b, axis=1)))
    print(f"embed {len(chunks)} corpus chunks: stock {t_stock:.2f}s ({len(chunks) / t_stock:.1f}/s), "
          f"ours {t_ours:.2f}s ({len(chunks) / t_ours:.1f}/s), speed-up x{t_stock / t_ours:.2f}, "
          f"min cosine between the two {cos:.5f}")

    t = time.perf_counter()
    alone = np.stack([ours.embed([c])[0] for c in chunks])
    t_alone = time.perf_counter() - t
    diff = float(np.abs(alone - b).max())
    print(f"batch independence: max |alone - batched| over {len(chunks)} chunks = {diff:g} "
          f"(must be 0); one text at a time {t_alone:.2f}s vs batched {t_ours:.2f}s "
          f"(x{t_alone / t_ours:.2f})")
    with tempfile.TemporaryDirectory() as tmp:
        from pipeline.index.embed_cache import EmbeddingCache, usable

        cache = EmbeddingCache(Path(tmp) / "c.sqlite3", "bench")
        texts = [f"{i} {c}" for i, c in enumerate(chunks * 5)][:1000]
        vecs = np.resize(b, (len(texts), b.shape[1]))
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        cache.put_many(texts, vecs.astype(np.float32))
        from pipeline.index.embed_cache import _open

        t_get = _best(lambda: [usable(v) for v in cache.get_many(texts).values()], args.repeat)
        rows = cache._connect().execute("SELECT key, vec FROM vectors").fetchall()
        t_check = _best(lambda: [usable(_open(k, b)) for k, b in rows], args.repeat)
        cache.close()
    print(f"cached vectors: 1000 read {t_get * 1000:.1f} ms, of which the checks (digest, "
          f"finite, unit length) {t_check * 1000:.1f} ms")

    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, DEBRIEF_HOME=home, ANONYMIZED_TELEMETRY="False")
        os.environ.update(DEBRIEF_HOME=home)
        from pipeline.index import writer
        from pipeline.index.open import open_index
        from pipeline.settings import IndexSettings

        idx = open_index(IndexSettings(collection="advice"))
        writing: list[float] = []
        write_embedded = writer.write_embedded

        def timed_write(*a, **k):  # noqa: ANN002, ANN003, ANN202 - a bench wrapper
            t0 = time.perf_counter()
            try:
                return write_embedded(*a, **k)
            finally:
                writing.append(time.perf_counter() - t0)

        writer.write_embedded = timed_write
        t = time.perf_counter()
        idx.build(IndexSettings().corpus_folders())
        t_full = time.perf_counter() - t
        writer.write_embedded = write_embedded
        t_noop = _best(lambda: idx.build(IndexSettings().corpus_folders()), args.repeat)
        print(f"index: full build {t_full:.2f}s, unchanged re-index {t_noop:.3f}s "
              f"(target <= 0.3s), ratio x{t_full / t_noop:.0f}")
        print(f"index: of the full build, writing it in the clean child process (Python start "
              f"and chromadb import included) {writing[0]:.2f}s, {writing[0] / t_full:.0%}")

        exe = [sys.executable, "-m", "pipeline"]
        t_click = _proc([sys.executable, "-c", "import click"], args.repeat + 2, env)
        t_help = _proc([*exe, "--help"], args.repeat + 2, env)
        print(f"cold --help {t_help:.3f}s vs bare 'import click' {t_click:.3f}s: "
              f"x{t_help / t_click:.2f} (target <= 3)")
        note = str(ROOT / "examples" / "2026-11-20-acme.md")
        offline = [*exe, "reflect", note, "--provider", "offline"]  # the local model may be in
        _proc(offline, 1, env)  # warm: index built, files cached
        # a note never seen before: the embedding cache is off, so its text is embedded
        t_ref = _proc(offline, args.repeat,
                      {**env, "DEBRIEF_EMBEDDING_CACHE": "off"})
        # the same note again (another model, a new prompt): its vectors come from the cache
        t_again = _proc(offline, args.repeat, env)
        t_py = _proc([sys.executable, "-c", "pass"], args.repeat, env)
        print(f"warm offline reflect (whole process) {t_ref:.2f}s (target <= 1.5s); the same "
              f"note again, from the embedding cache {t_again:.2f}s; bare python start "
              f"{t_py:.3f}s")


if __name__ == "__main__":
    main()
