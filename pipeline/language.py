"""Is a note in English? The embedding model and the offline engine read English only.

A note in another language still gets a reflection, but it says so: retrieval matches
it poorly, and the offline engine finds none of its cues, so its call rests on nothing.
English function words settle most notes at no cost; the rest (terse bullet lists, other
languages) go to langdetect, whose profiles load in about 0.2 s, only then.
"""

from __future__ import annotations

import re
import threading

_WORD = re.compile(r"[^\W\d_]+")
# common in English notes and rare as words of the languages langdetect knows best
_EN = frozenset({
    "the", "and", "of", "to", "is", "was", "were", "with", "that", "this", "they", "it", "for",
    "on", "at", "be", "have", "has", "had", "not", "but", "we", "you", "my", "our", "their",
    "she", "what", "about", "would", "will", "been", "are", "very"})
EN_SHARE = 0.08  # plain English prose runs at 0.3 or more; bullet lists far lower
MIN_WORDS = 6  # fewer words cannot be told apart
MIN_CONFIDENCE = 0.9  # langdetect's probability needed to call a note another language
# langdetect publishes its profile factory before it has loaded the profiles: a second thread
# (a batch works on two notes at once) then detects against a half-loaded set of languages
_DETECT_LOCK = threading.Lock()


def detect_language(text: str) -> str | None:
    """The language code of ``text`` when it is clearly not English, else None."""
    words = _WORD.findall(text)
    # scripts written without spaces (Chinese, Japanese) make few "words" of many letters
    if len(words) < MIN_WORDS and sum(ch.isalpha() for ch in text) < 4 * MIN_WORDS:
        return None
    hits = sum(1 for w in words if w == "I" or w.lower() in _EN)
    if hits / len(words) >= EN_SHARE:
        return None
    from langdetect import DetectorFactory, LangDetectException, detect_langs

    DetectorFactory.seed = 0  # langdetect samples at random; a seed makes it repeatable
    try:
        with _DETECT_LOCK:
            best = detect_langs(text[:5000])[0]
    except LangDetectException:
        return None
    return best.lang if best.lang != "en" and best.prob >= MIN_CONFIDENCE else None


def language_notice(text: str, engine: str) -> str | None:
    lang = detect_language(text)
    if lang is None:
        return None
    reader = ("the offline engine reads English only, so this call rests on almost nothing "
              "in them" if engine == "offline" else
              "advice retrieval matches English, so the cited advice may fit them poorly")
    return (f"These notes look like they are not in English (detected: {lang}); {reader}. "
            "Writing them in English gives a grounded reflection.")
