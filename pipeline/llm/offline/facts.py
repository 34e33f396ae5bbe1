"""Facts in a note sentence that need no reading of tone: money figures, and pay against the
person's current pay. A figure says the same thing however the sentence is phrased, so these
are the engine's only hand-written rules; everything about meaning comes from the sentence
model."""

from __future__ import annotations

import re

AMOUNT = re.compile(
    r"(?P<cur>[$£€])?\s?(?P<num>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s?(?P<suf>k\b|K\b|000\b)?"
)
_RANGE = re.compile(r"(\d+)(\s*(?:-|–|to)\s*[$£€]?\d+)\s?([kK])\b")
_UNIT = re.compile(r"\s*(/|per |an |a |each )\s*(?P<u>hour|hr|h|week|wk|month|mo|year|yr|annum)\b",
                   re.I)
_PER_YEAR = {"hour": 2080, "hr": 2080, "h": 2080, "week": 52, "wk": 52, "month": 12, "mo": 12,
             "year": 1, "yr": 1, "annum": 1}
PER_CHANGE = 8.0  # a lean of 0.8 for a 10% change in pay, at most 1 either way


def amounts(text: str) -> list[float]:
    """Money amounts in a sentence as yearly figures (an hourly rate times 2080 and so on).

    An amount needs a currency sign, a k suffix, or four or more digits; a bare small number
    with a sign and no unit is read as an hourly rate.
    """
    found: list[float] = []
    # "$125-135k": the suffix of a range's upper end applies to its lower end too
    text = _RANGE.sub(lambda m: f"{m.group(1)}{m.group(3)}{m.group(2)}{m.group(3)}", text)
    for m in AMOUNT.finditer(text):
        try:
            value = float(m.group("num").replace(",", ""))
        except ValueError:
            continue
        unit = _UNIT.match(text, m.end())
        if m.group("suf"):
            value *= 1000
        elif not m.group("cur") and value < 1000 and not unit:
            continue
        if unit:
            value *= _PER_YEAR[unit.group("u").lower()]
        elif value < 300:
            value *= 2080
        if value >= 1000:
            found.append(value)
    return found


def current_pay(*texts: str | None) -> float | None:
    """The person's current yearly pay from the first text that states one."""
    for text in texts:
        found = amounts(text or "")
        if found:
            return max(found)
    return None


def pay_against(sentence: str, current: float | None) -> float | None:
    """The lean of the sentence's pay figures against ``current``: proportional to the change
    (a range counts by its middle), from -1 (a cut of an eighth or more) to +1; None when it
    states no figure in the range of a salary (fees and bonuses are not pay)."""
    if not current:
        return None
    offered = [a for a in amounts(sentence) if 0.4 * current <= a <= 3 * current]
    if not offered:
        return None
    middle = (min(offered) + max(offered)) / 2
    return round(max(-1.0, min(1.0, (middle / current - 1) * PER_CHANGE)), 4)
