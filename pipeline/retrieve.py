"""Notes -> ranked, diversified advice passages, plus per-sentence topic signals.

Queries are the whole note and its sentences; scores fuse the best sentence match with the
whole-note match; a per-document cap keeps one document from filling every slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel

from pipeline.corpus import PassageText
from pipeline.guard import injection_lines
from pipeline.index.chroma import AdviceIndex
from pipeline.notes import Notes
from pipeline.sentence_model import TOPICS, sentence_model
from pipeline.text import sentences

MAX_SENTENCES = 60
CUE_MIN = 0.45  # below this cosine a cue line says nothing about a sentence


class Passage(PassageText):
    score: float


class SentenceSignal(BaseModel):
    """One note sentence: the advice topic it is closest to, the passage it fits best, and
    what the sentence model reads in it (``stance``: P(keep), P(decline), P(neutral))."""

    text: str
    index: int
    cue_doc: str | None = None
    cue_stance: str | None = None
    cue_sim: float = 0.0
    best_passage: str | None = None
    passage_sim: float = 0.0
    stance: tuple[float, float, float] = (0.0, 0.0, 1.0)
    topic: str = "logistics"
    topic_p: float = 0.0
    topics: tuple[float, ...] = ()  # P(topic) for every topic of sentence_model.TOPICS

    def about(self, topic: str) -> float:
        """P(this sentence is about ``topic``)."""
        return self.topics[TOPICS.index(topic)] if self.topics else 0.0

    @property
    def lean(self) -> float:
        """P(keep) - P(decline): which way, and how surely, the sentence pushes."""
        return self.stance[0] - self.stance[1]


class Retrieval(BaseModel):
    passages: list[Passage]
    sentences: list[SentenceSignal]
    ignored: list[str]

    def passage_for(self, quote: str) -> str:
        """The id of the retrieved passage that fits the note sentence holding ``quote``
        best, for a reason written in code (a forced decline) rather than by the engine;
        failing that, the best-ranked passage that argues for declining, then the first."""
        q = " ".join(quote.casefold().split())
        best: SentenceSignal | None = None
        for sig in self.sentences:
            s = " ".join(sig.text.casefold().split())
            if sig.best_passage and s and (q in s or s in q) and (
                    best is None or sig.passage_sim > best.passage_sim):
                best = sig
        if best is not None and best.best_passage:
            return best.best_passage
        return next((p.id for p in self.passages if p.stance == "decline"),
                    self.passages[0].id)


@dataclass
class RetrieveOptions:
    k: int = 8
    per_doc: int = 2
    candidates: int = 24


def _pick_sentences(all_sents: list[str]) -> list[int]:
    """Indices of the sentences to query with; long notes keep their longest, most specific lines."""
    idx = [i for i, s in enumerate(all_sents) if len(s.split()) >= 3]
    if len(idx) <= MAX_SENTENCES:
        return idx
    keep = sorted(idx, key=lambda i: -len(all_sents[i]))[:MAX_SENTENCES]
    return sorted(keep)


def retrieve(notes: Notes, index: AdviceIndex, opts: RetrieveOptions | None = None) -> Retrieval:
    opts = opts or RetrieveOptions()
    all_sents = sentences(notes.body)
    ignored = injection_lines(all_sents)
    usable = [s for s in all_sents if s not in ignored]
    chosen = _pick_sentences(usable)
    sent_texts = [usable[i] for i in chosen]
    whole = " ".join(usable)[:4000] or notes.body[:4000]

    vectors = index.embedder.embed([whole, *sent_texts], cached=True)
    whole_vec, sent_vecs = vectors[0], vectors[1:]

    passages_col = index.passages()
    cues_col = index.cues()
    n_pass = min(opts.candidates, max(passages_col.count(), 1))

    # candidate chunks from every query; score = best sentence sim + half the whole-note sim
    res = passages_col.query(query_embeddings=vectors, n_results=n_pass, include=[])
    rows = index.rows(passages_col, sorted({cid for q_ids in res["ids"] for cid in q_ids}))
    meta = {cid: m for cid, (m, _) in rows.items()}
    emb = {cid: e for cid, (_, e) in rows.items()}
    ids = sorted(meta)
    if not ids:
        return Retrieval(passages=[], sentences=[], ignored=ignored)
    mat = np.stack([emb[i] for i in ids])
    whole_sim = mat @ whole_vec
    sent_sim = sent_vecs @ mat.T if len(sent_texts) else np.zeros((0, len(ids)))
    best_sent = sent_sim.max(axis=0) if len(sent_texts) else np.zeros(len(ids))

    # cue lines: which advice topic each sentence is about; the sentence model: which way
    model = sentence_model()
    stance, topic = model.stance(sent_vecs, sent_texts), model.topic(sent_vecs)
    signals = [SentenceSignal(text=t, index=i, stance=tuple(round(float(x), 4) for x in st),
                              topic=TOPICS[int(tp.argmax())], topic_p=round(float(tp.max()), 4),
                              topics=tuple(round(float(x), 4) for x in tp))
               for i, t, st, tp in zip(chosen, sent_texts, stance, topic, strict=True)]
    cue_boost: dict[str, float] = {}
    if len(sent_texts) and cues_col.count():
        cres = cues_col.query(query_embeddings=sent_vecs, n_results=min(3, cues_col.count()),
                              include=["metadatas", "distances"])
        for sig, c_metas, c_dists in zip(signals, cres["metadatas"], cres["distances"], strict=False):
            if not c_metas:
                continue
            sim = 1.0 - float(c_dists[0])
            if sim >= CUE_MIN:
                sig.cue_doc = str(c_metas[0].get("doc_id"))
                sig.cue_stance = str(c_metas[0].get("stance", "neutral"))
                sig.cue_sim = round(sim, 4)
                cue_boost[sig.cue_doc] = max(cue_boost.get(sig.cue_doc, 0.0), sim)

    score = best_sent + 0.5 * whole_sim
    for j, cid in enumerate(ids):
        score[j] += 0.3 * cue_boost.get(str(meta[cid].get("doc_id")), 0.0)
    order = sorted(range(len(ids)), key=lambda j: (-score[j], ids[j]))

    picked: list[int] = []
    per_doc: dict[str, int] = {}
    for j in order:
        doc = str(meta[ids[j]].get("doc_id"))
        if per_doc.get(doc, 0) >= opts.per_doc:
            continue
        picked.append(j)
        per_doc[doc] = per_doc.get(doc, 0) + 1
        if len(picked) >= opts.k:
            break

    passages = [
        Passage(
            id=ids[j],
            doc_id=str(meta[ids[j]].get("doc_id")),
            title=str(meta[ids[j]].get("title", "")),
            heading=str(meta[ids[j]].get("heading", "")),
            text=str(meta[ids[j]].get("text", "")),
            stance=str(meta[ids[j]].get("stance", "neutral")),
            source=str(meta[ids[j]].get("source", "")),
            tags=[t for t in str(meta[ids[j]].get("tags", "")).split(",") if t],
            score=round(float(score[j]), 4),
        )
        for j in picked
    ]
    if len(sent_texts):
        sims = sent_sim[:, picked]
        for s, sig in enumerate(signals):
            # prefer a chunk of the cue's own document when one was retrieved
            cand = [p for p, ps in enumerate(passages) if ps.doc_id == sig.cue_doc] or range(len(passages))
            best = max(cand, key=lambda p: sims[s, p])
            sig.best_passage = passages[best].id
            sig.passage_sim = round(float(sims[s, best]), 4)
    return Retrieval(passages=passages, sentences=signals, ignored=ignored)
