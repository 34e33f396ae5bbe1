"""Every problem in a profile, in one pass, each with its field, what is wrong and what to
write instead ('debrief profile check'; the first one is what a command refuses with).

The model (profile/model.py) stops at the first broken layer: a bad weight hides a criterion
with no description. This walks the whole file instead, with the model's own rules.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.profile.model import BUILTIN, KEY, Criterion, Profile, Situation

MAX_CRITERIA = 20
MAX_ITEMS = 12
STATUSES = ("employed", "not_working")
_TOP = tuple(Profile.model_fields)
_CRITERION = tuple(Criterion.model_fields)
_CURRENT = tuple(Situation.model_fields)
_LIMITS = {"job": 200, "pay": 100}  # characters, as Situation says


@dataclass(frozen=True)
class Problem:
    field: str  # e.g. criteria.pay.weight
    problem: str  # what is wrong, in the file's terms
    fix: str  # what to write instead

    def line(self) -> str:
        return f"{self.field}: {self.problem}; {self.fix}"

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def _shown(value: Any) -> str:
    """A value as TOML shows it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a table"
    return repr(value)


def _close(word: str, options: Any) -> str | None:
    found = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return found[0] if found else None


def _mean(word: str, options: Any) -> str:
    close = _close(word, options)
    return f" (did you mean '{close}'?)" if close else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_data(data: dict[str, Any]) -> list[Problem]:
    """Every problem with a profile's parsed TOML, in file order."""
    out: list[Problem] = []
    for key, value in data.items():
        if key == "criteria":
            out += _criteria(value)
        elif key in ("must_haves", "deal_breakers"):
            out += _items(key, value)
        elif key == "current":
            out += _current(value)
        elif key in BUILTIN:
            out.append(Problem(key, "a criterion outside the [criteria] table",
                               f"move '{key} = ...' below the [criteria] line"))
        else:
            close = _close(key, _TOP)
            out.append(Problem(key, f"not a profile setting{_mean(key, _TOP)}",
                               f"rename it to {close}" if close else
                               f"remove it; a profile has {', '.join(_TOP)}"))
    if "criteria" not in data:
        out.insert(0, Problem("criteria", "missing: a profile needs at least one criterion",
                              "add a [criteria] table with a weight from 1 to 10, e.g. "
                              "[criteria] then pay = 8"))
    return out


def _weight(where: str, value: Any) -> list[Problem]:
    fix = "write a whole number from 1 (a little) to 10 (it decides), without quotes"
    if _is_int(value):
        if 1 <= value <= 10:
            return []
        return [Problem(where, f"{value} is out of range", fix)]
    if isinstance(value, float) and math.isfinite(value) and 1 <= value <= 10:
        return [Problem(where, f"{value} is not a whole number", f"round it to {round(value)}")]
    if isinstance(value, str) and value.strip().isdigit():
        return [Problem(where, f"{_shown(value)} is text", f"write {value.strip()} without quotes")]
    return [Problem(where, f"{_shown(value)} is not a weight", fix)]


def _criteria(value: Any) -> list[Problem]:
    if not isinstance(value, dict):
        return [Problem("criteria", f"{_shown(value)} is not a table of criteria",
                        "write [criteria] on its own line, then one criterion per line, "
                        "e.g. pay = 8")]
    if not value:
        return [Problem("criteria", "no criteria", "add at least one below [criteria], with a "
                        f"weight from 1 to 10, e.g. pay = 8 (built-in: {', '.join(BUILTIN)})")]
    out: list[Problem] = []
    if len(value) > MAX_CRITERIA:
        out.append(Problem("criteria", f"{len(value)} criteria, more than {MAX_CRITERIA}",
                           "keep the ones that decide; remove the others"))
    for name, crit in value.items():
        where = f"criteria.{name}"
        if not KEY.match(name):
            snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)  # FourDay -> Four_Day
            fixed = re.sub(r"[^a-z0-9]+", "_", snake.lower()).strip("_")
            fixed = fixed if KEY.match(fixed) else "four_day_week"
            out.append(Problem(where, f"'{name}' is not a valid criterion name",
                               f"use lower_snake_case (a-z, 0-9, _), e.g. {fixed}"))
        if isinstance(crit, dict):
            weight, description = crit.get("weight"), crit.get("description")
            if "weight" not in crit:
                out.append(Problem(f"{where}.weight", "missing",
                                   "add weight = N, from 1 (a little) to 10 (it decides)"))
            else:
                out += _weight(f"{where}.weight", weight)
            for extra in crit:
                if extra not in _CRITERION:
                    close = _close(extra, _CRITERION)
                    out.append(Problem(f"{where}.{extra}",
                                       f"not a criterion setting{_mean(extra, _CRITERION)}",
                                       f"rename it to {close}" if close else
                                       "a criterion has only weight and description"))
            if description is not None and not isinstance(description, str):
                out.append(Problem(f"{where}.description", f"{_shown(description)} is not text",
                                   'write it in quotes, e.g. description = "A four-day week"'))
            elif isinstance(description, str) and len(description) > 300:
                out.append(Problem(f"{where}.description",
                                   f"{len(description)} characters, more than 300",
                                   "say it in one sentence"))
        else:
            description = None
            out += _weight(f"{where}.weight", crit)
        if name in BUILTIN or not KEY.match(name):
            continue
        if not (isinstance(description, str) and description.strip()):
            out.append(_own_criterion(name, crit))
    return out


def _own_criterion(name: str, crit: Any) -> Problem:
    """A criterion that is not built in and says nothing of what it means: most often a typo
    of a built-in one."""
    where = f"criteria.{name}"
    weight = crit.get("weight") if isinstance(crit, dict) else crit
    w = weight if _is_int(weight) and 1 <= weight <= 10 else 5
    close = _close(name, BUILTIN)
    if close:
        return Problem(where, f"not a built-in criterion (did you mean '{close}'?)",
                       f"write {close} = {w}; or, for a criterion of your own, "
                       f'[criteria.{name}] with weight = {w} and description = "what it means"')
    return Problem(where, "your own criterion has no description",
                   f'write [criteria.{name}] with weight = {w} and description = "what it '
                   f"means to you\" (built-in criteria need none: {', '.join(BUILTIN)})")


def _items(key: str, value: Any) -> list[Problem]:
    example = "at least my current pay" if key == "must_haves" else "no unpaid trial work"
    if isinstance(value, str):
        return [Problem(key, "one text, not a list", f'write it as a list: {key} = ["{value}"]')]
    if not isinstance(value, list):
        return [Problem(key, f"{_shown(value)} is not a list",
                        f'write a list of short phrases, e.g. {key} = ["{example}"]')]
    out: list[Problem] = []
    if len(value) > MAX_ITEMS:
        out.append(Problem(key, f"{len(value)} items, more than {MAX_ITEMS}",
                           "keep the ones that decide"))
    seen: set[str] = set()
    for i, item in enumerate(value):
        where = f"{key}[{i + 1}]"
        if not isinstance(item, str):
            out.append(Problem(where, f"{_shown(item)} is not text",
                               f'write it in quotes, e.g. "{example}"'))
            continue
        text = " ".join(item.split())
        if not 3 <= len(text) <= 200:
            size = "too short" if len(text) < 3 else "too long"
            out.append(Problem(where, f"{_shown(text)} is {size} ({len(text)} characters)",
                               f'write 3 to 200 characters, e.g. "{example}"'))
        elif text.lower() in seen:
            out.append(Problem(where, f"{_shown(text)} is listed twice", "remove one of them"))
        seen.add(text.lower())
    return out


def _current(value: Any) -> list[Problem]:
    if not isinstance(value, dict):
        return [Problem("current", f"{_shown(value)} is not a table",
                        'write [current] on its own line, then e.g. status = "employed"')]
    out: list[Problem] = []
    for key, item in value.items():
        where = f"current.{key}"
        if key not in _CURRENT:
            close = _close(key, _CURRENT)
            out.append(Problem(where, f"not a [current] setting{_mean(key, _CURRENT)}",
                               f"rename it to {close}" if close else
                               f"[current] has {', '.join(_CURRENT)}"))
        elif key == "status":
            if item not in STATUSES:
                close = _close(item, STATUSES) if isinstance(item, str) else None
                out.append(Problem(where, f"{_shown(item)} is not employed or not_working"
                                   + (f" (did you mean '{close}'?)" if close else ""),
                                   'write status = "employed" or status = "not_working"'))
        elif key == "savings_months":
            if not (_is_int(item) and 0 <= item <= 600):
                out.append(Problem(where, f"{_shown(item)} is not a number of months",
                                   "write a whole number from 0 to 600, without quotes, "
                                   "e.g. savings_months = 6"))
        else:  # job, pay: text; a number is taken as text (pay = 95000)
            limit = _LIMITS[key]
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                example = "$95k" if key == "pay" else "Data analyst at Acme"
                out.append(Problem(where, f"{_shown(item)} is not text",
                                   f'write it in quotes, e.g. {key} = "{example}"'))
            elif len(str(item)) > limit:
                out.append(Problem(where, f"{len(str(item))} characters, more than {limit}",
                                   "shorten it"))
    return out
