"""The offline engine's proposal for the decision matrix: per-criterion scores, deal-breakers
and must-haves, each resting on a sentence of the notes and a retrieved passage.

A sentence speaks to a criterion when it uses the criterion's words, matches one of its
explicit cues, or sits closest to one of its advice documents. Its signed weight (from
``evidence.weigh_sentence``) becomes the score. Deal-breakers and must-haves are matched by
the kinds of cue their wording names plus their own content words, with negations and
resolutions ("optional", "agreed in writing") read from the notes.
"""

from __future__ import annotations

import re
from functools import cache

from pipeline.llm.offline import lexicon as C
from pipeline.llm.offline.evidence import TOPIC_MIN, Evidence
from pipeline.llm.offline.lexicon import CRITERION_WORDS, KINDS
from pipeline.profile import Profile
from pipeline.retrieve import Retrieval
from pipeline.schema import CriterionScore, DealBreakerHit, MatrixDraft, MustHaveCheck

# words that say the thing named was settled: dropped, made optional, confirmed otherwise
RESOLVED = re.compile(
    r"\b(optional|not required|no longer|waived|dropped|removed|agreed|confirmed|in writing|"
    r"changed (it|that|this)|they'?ll pay|will (now )?be paid|paid trial|paid project|"
    r"fixed|resolved|scrapped|never (on )?weekends?|no (evening|weekend|night|on-?call)s?\b|"
    r"off (on )?weekends?)\b", re.I)
# words that say the thing named is not there at all ("a payback clause? there isn't one")
ABSENT = re.compile(r"\b(there isn'?t one|there is no|there'?s no \w+ clause|no such|"
                    r"isn'?t (one|any)|none)\b", re.I)
_STOP = {"work", "working", "with", "that", "this", "than", "from", "have", "more", "less",
         "about", "other", "would", "their", "there", "your", "what", "when", "must", "least",
         "at", "any", "job", "role", "jobs", "roles", "the", "and", "for", "not", "no", "my"}


def _content_words(text: str) -> list[str]:
    words = re.findall(r"[a-z][a-z'-]{3,}", text.lower())
    return [w.rstrip("s") for w in words if w not in _STOP]


@cache
def _words_rx(text: str) -> re.Pattern[str] | None:
    words = _content_words(text)
    if not words:
        return None
    # whole words, plural or not: "week" must not match "weekly"
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")(s|es)?\b", re.I)


def _named(rx: re.Pattern[str], sentence: str) -> bool:
    """Two of the item's own words occur, or its only word does."""
    wanted = rx.pattern.count("|", 0, rx.pattern.index(")")) + 1
    found = {m.group(1).lower() for m in rx.finditer(sentence)}
    return len(found) >= min(2, wanted)


def _kinds(text: str) -> set[str]:
    return {k for rx, keys in KINDS if rx.search(text) for k in keys}


def _passage_for(e: Evidence, docs: tuple[str, ...], retrieval: Retrieval) -> str | None:
    own = next((p.id for p in retrieval.passages if p.doc_id in docs), None)
    return own or e.sig.best_passage


def _speaks_to(e: Evidence, key: str, profile: Profile,
              custom_rx: re.Pattern[str] | None) -> int:
    """2 when the sentence names the criterion (its words or an explicit cue), 1 when it is
    only close to one of its advice topics, 0 when it is about something else."""
    if key in CRITERION_WORDS:
        b = CRITERION_WORDS[key]
        if any(c.doc in b.docs for c in e.cues) or re.search(b.words, e.sig.text, re.I):
            return 2
        return int(e.sig.cue_doc in b.docs and e.sig.cue_sim >= TOPIC_MIN)
    if custom_rx is None:
        return 0
    # an own criterion is named by its description: one shared word ("week") is chance
    return 2 * _named(custom_rx, e.sig.text)


def _offered(hits: list[Evidence], current: float | None) -> tuple[float, Evidence] | None:
    """The highest salary-sized figure the notes give for this job, and its sentence."""
    for e in sorted(hits, key=lambda e: -abs(e.weight)):
        low, high = (0.4 * current, 3 * current) if current else (10_000, 2_000_000)
        found = [a for a in C.amounts(e.sig.text) if low <= a <= high]
        if found and C.PAY_WORDS.search(e.sig.text):
            return max(found), e
    return None


def _pay_score(hits: list[Evidence], current: float | None) -> tuple[int, Evidence] | None:
    """Pay against the current pay, by ratio, when a sentence names a salary-sized figure."""
    got = _offered(hits, current) if current else None
    if got is None or not current:
        return None
    ratio = got[0] / current
    score = 2 if ratio >= 1.15 else 1 if ratio >= 1.03 else -2 if ratio <= 0.85 \
        else -1 if ratio <= 0.97 else 0
    return score, got[1]


def _score(total: float, key: str, profile: Profile) -> int:
    score = 0 if abs(total) < 0.5 else max(-2, min(2, round(total / 1.5) or (1 if total > 0 else -1)))
    if key == "pay" and profile.current.status == "not_working":
        score = min(2, score + 1)  # any pay beats none: the alternative here is no income
    return score


def propose(evidence: list[Evidence], profile: Profile, retrieval: Retrieval,
            current_pay: float | None = None) -> MatrixDraft:
    usable = [e for e in evidence if e.sig.best_passage]
    rows: list[CriterionScore] = []
    for key in profile.criteria:
        custom_rx = None if key in CRITERION_WORDS else _words_rx(profile.description(key) + " " + key.replace("_", " "))
        # "not sure how on-call works; didn't ask" names the criterion but says it is unknown
        level = {e.sig.index: _speaks_to(e, key, profile, custom_rx) for e in usable
                 if not C.UNKNOWN.search(e.sig.text)}
        best = max(level.values(), default=0)
        # sentences that name the criterion; only without any, those near its advice topics
        hits = [e for e in usable if best and level.get(e.sig.index) == best]
        if not hits:
            rows.append(CriterionScore(criterion=key, score=None))
            continue
        total = sum(e.weight for e in hits)
        lead = max(hits, key=lambda e: (abs(e.weight), -e.sig.index))
        score = _score(total, key, profile)
        if key == "pay" and (by_ratio := _pay_score(hits, current_pay)) is not None:
            score, lead = by_ratio
        docs = CRITERION_WORDS[key].docs if key in CRITERION_WORDS else ()
        pid = _passage_for(lead, docs, retrieval)
        rows.append(CriterionScore(criterion=key, score=score,
                                   quote=lead.sig.text, passage_ids=[pid] if pid else []))
    sims = _similarity(profile.deal_breakers + profile.must_haves, usable)
    return MatrixDraft(criteria=rows,
                       deal_breakers=_deal_breakers(usable, profile, retrieval, sims, current_pay),
                       must_haves=_must_haves(usable, profile, rows, sims, current_pay))


SIM_WITH_WORD = 0.45  # cosine from which one shared word is enough
SIM_ALONE = 0.52  # cosine from which the meaning alone is ("sports betting" ~ "gambling")
_LEADING_NO = re.compile(r"^(no|not|never|any|avoid)\s+", re.I)


def _similarity(items: list[str], usable: list[Evidence]) -> dict[tuple[str, int], float]:
    """Cosine of each profile item (without its leading 'no') and each note sentence."""
    if not items or not usable:
        return {}
    texts = [_LEADING_NO.sub("", i) for i in items] + [e.sig.text for e in usable]
    from pipeline.index.embedding import get_embedder  # heavy: chromadb's ONNX class

    vecs = get_embedder().embed(texts, cached=True)
    sims = vecs[:len(items)] @ vecs[len(items):].T
    return {(item, e.sig.index): float(sims[i, j])
            for i, item in enumerate(items) for j, e in enumerate(usable)}


def _alternatives(item: str) -> list[str]:
    """'no evening or weekend work' -> ['evening', 'weekend work']: each must be absent."""
    parts = re.split(r"\s+or\s+|\s*,\s*|\s*/\s*", _LEADING_NO.sub("", item))
    return [p for p in parts if p.strip()] or [item]


def _named_alternatives(sentence: str, item: str) -> set[str]:
    return {alt for alt in _alternatives(item)
            if (rx := _words_rx(alt)) is not None and _named(rx, sentence)}


def _mentions(e: Evidence, text: str, sims: dict[tuple[str, int], float]) -> bool:
    kinds = _kinds(text)
    if any(c.key in kinds for c in e.cues):
        return True
    sim = sims.get((text, e.sig.index), 0.0)
    if sim >= SIM_ALONE:
        return True
    for alt in _alternatives(text):
        rx = _words_rx(alt)
        if rx is None:
            continue
        # by its own words, an item is named when two of them occur ("training" alone is
        # not "training repayment clause"), or one of them in a sentence close in meaning
        if _named(rx, e.sig.text) or (rx.search(e.sig.text) is not None and sim >= SIM_WITH_WORD):
            return True
    return False


def _deal_breakers(usable: list[Evidence], profile: Profile, retrieval: Retrieval,
                   sims: dict[tuple[str, int], float],
                   current_pay: float | None = None) -> list[DealBreakerHit]:
    out: list[DealBreakerHit] = []
    for breaker in profile.deal_breakers:
        if "pay-below" in _kinds(breaker):
            # a pay deal-breaker is a matter of figures, not of words ("$178k base" names
            # base pay without cutting it): the offered figure against the floor, or an
            # explicit pay-cut line
            shown = [e for e in usable if any(c.key == "pay-below" for c in e.cues)]
            floor = _pay_floor(breaker, current_pay) or (current_pay and current_pay * 0.97)
            got = _offered([e for e in usable if re.search(CRITERION_WORDS["pay"].words, e.sig.text, re.I)],
                           current_pay)
            if got is not None and floor and got[0] < floor:
                shown.insert(0, got[1])
            if shown:
                ids = [p.id for p in retrieval.passages if p.doc_id == "pay-below-current-job"][:1]
                out.append(DealBreakerHit(deal_breaker=breaker, quote=shown[0].sig.text,
                                          passage_ids=ids or [shown[0].sig.best_passage or ""]))
            continue
        limit = _duration_limit(breaker)
        if limit is not None:
            # "no commute over 45 minutes": a matter of the stated journey, not of words
            longer = [e for e in usable if (d := _journey_minutes(e.sig.text)) and d > limit]
            if longer:
                ids = [p.id for p in retrieval.passages if p.doc_id == "commute-and-hours"][:1]
                out.append(DealBreakerHit(deal_breaker=breaker, quote=longer[0].sig.text,
                                          passage_ids=ids or [longer[0].sig.best_passage or ""]))
            continue
        about = sorted((e for e in usable if _mentions(e, breaker, sims)),
                       key=lambda e: e.sig.index)
        shown = [e for e in about if not RESOLVED.search(e.sig.text)
                 and not ABSENT.search(e.sig.text) and not _negated(breaker, e.sig.text)
                 and e.weight <= 0.3]
        if not shown:
            continue
        first = shown[0]
        # "no evening work" settles the evening part, not the Saturday the notes showed
        alts = _named_alternatives(first.sig.text, breaker)
        settled = [e for e in about if RESOLVED.search(e.sig.text) and e.sig.index > first.sig.index
                   and (not alts or alts & _named_alternatives(e.sig.text, breaker))]
        pid = next((c.doc for c in first.cues if c.key in _kinds(breaker)), None)
        ids = [p.id for p in retrieval.passages if p.doc_id == pid][:1] or [first.sig.best_passage]
        out.append(DealBreakerHit(
            deal_breaker=breaker, quote=first.sig.text, passage_ids=[i for i in ids if i],
            resolved=bool(settled), resolution_quote=settled[0].sig.text if settled else None))
    return out


_LIMIT = re.compile(r"\b(?:over|more than|longer than|above|beyond)\s+(an?|one|two|\d+(?:\.\d+)?)"
                    r"\s*(hours?|hrs?|minutes?|mins?)\b", re.I)
_JOURNEY = re.compile(r"\b(commut\w*|drive|driving|train|bus|tube|journey|each way|door to door|"
                      r"travel\w*)\b", re.I)
_DURATION = re.compile(r"\b(an?|one|two|\d+(?:\.\d+)?)(?:\s*(?:-|to)\s*(\d+(?:\.\d+)?))?\s*"
                       r"(hours?|hrs?|h|minutes?|mins?)\b", re.I)
_NUM = {"a": 1.0, "an": 1.0, "one": 1.0, "two": 2.0}


def _minutes(num: str, unit: str) -> float:
    n = _NUM.get(num.lower()) or float(num)
    return n * 60 if unit.lower().startswith("h") else n


def _duration_limit(item: str) -> float | None:
    """'no commute over 45 minutes each way' -> 45."""
    m = _LIMIT.search(item)
    return _minutes(m.group(1), m.group(2)) if m and _JOURNEY.search(item) else None


def _journey_minutes(sentence: str) -> float | None:
    """The longest journey time a sentence about getting to work states, in minutes."""
    if not _JOURNEY.search(sentence):
        return None
    found = [_minutes(m.group(2) or m.group(1), m.group(3)) for m in _DURATION.finditer(sentence)]
    return max(found, default=None)


def _negated(item: str, sentence: str) -> bool:
    """The sentence says the item's own thing is absent: 'no Sundays', 'never weekends'."""
    rx = _words_rx(_LEADING_NO.sub("", item))
    if rx is None:
        return False
    words = "|".join(re.escape(m.group(1)) for m in rx.finditer(_LEADING_NO.sub("", item)))
    return re.search(rf"\b(no|never|not|without|zero|shut|closed|off)\s+(\w+\s+)?({words})",
                     sentence, re.I) is not None


_PCT_BELOW = re.compile(r"(\d{1,2})\s*%\s*(below|less|under)", re.I)
_CURRENT = re.compile(r"current|what i (earn|make|get)|earn now|my pay|i earn", re.I)


def _pay_floor(must: str, current: float | None) -> float | None:
    """The pay a must-have asks for: an amount ('at least $170k base'), a share of the
    current pay ('no more than 10% below my current pay'), or the current pay itself."""
    if not re.search(r"pay|salary|base|earn|income|£|\$|€|\d+k", must, re.I):
        return None
    amounts = [a for a in C.amounts(must) if a >= 1000]
    if amounts:
        return max(amounts)
    if current and (m := _PCT_BELOW.search(must)):
        return current * (1 - int(m.group(1)) / 100)
    if current and _CURRENT.search(must):
        return current * 0.97
    return None


def _must_haves(usable: list[Evidence], profile: Profile, rows: list[CriterionScore],
                sims: dict[tuple[str, int], float],
                current_pay: float | None = None) -> list[MustHaveCheck]:
    by_key = {r.criterion: r for r in rows}
    out: list[MustHaveCheck] = []
    pay_lines = [e for e in usable if re.search(CRITERION_WORDS["pay"].words, e.sig.text, re.I)]
    for must in profile.must_haves:
        floor = _pay_floor(must, current_pay)
        if floor is not None:
            got = _offered(pay_lines, current_pay)
            if got is None:
                out.append(MustHaveCheck(must_have=must, status="unknown"))
            else:
                out.append(MustHaveCheck(must_have=must, quote=got[1].sig.text,
                                         status="met" if got[0] >= floor else "unmet"))
            continue
        # "at least my current pay" is about the pay criterion when the profile scores pay
        linked = next((k for k in by_key if k in CRITERION_WORDS and (
            re.search(CRITERION_WORDS[k].words, must, re.I) or k.replace("_", " ") in must.lower())), None)
        kinds = _kinds(must)
        if "pay-below" in kinds and "pay" in by_key:
            linked = "pay"
        row = by_key.get(linked) if linked else None
        if row is not None and row.score is not None:
            out.append(MustHaveCheck(must_have=must, status="met" if row.score >= 0 else "unmet",
                                     quote=row.quote))
            continue
        about = [e for e in usable if _mentions(e, must, sims)]
        if not about:
            out.append(MustHaveCheck(must_have=must, status="unknown"))
            continue
        lead = max(about, key=lambda e: (abs(e.weight), -e.sig.index))
        status = "unmet" if lead.weight <= -0.5 else "met" if lead.weight >= 0.3 else "unknown"
        out.append(MustHaveCheck(must_have=must, status=status,
                                 quote=None if status == "unknown" else lead.sig.text))
    return out



def lean(evidence_total: float, matrix: MatrixDraft, profile: Profile) -> float:
    """The evidence total, moved by the person's weighted matrix: a sentence-by-sentence sum
    treats pay and commute alike, the profile says which one this person cares about.

    The weighted matrix (-1..1 of its best) counts as much as about eight strong lines of
    evidence; an open deal-breaker decides on its own (matrix.apply_matrix enforces it too).
    """
    if any(not h.resolved for h in matrix.deal_breakers):
        return min(evidence_total, -1.0)
    known = [(profile.criteria[r.criterion].weight, r.score) for r in matrix.criteria
             if r.score is not None and r.criterion in profile.criteria]
    if not known:
        return evidence_total
    max_total = 2 * sum(c.weight for c in profile.criteria.values())
    normalized = sum(w * s for w, s in known) / max_total
    return 0.5 * evidence_total + 20 * normalized
