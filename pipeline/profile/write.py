"""Writing a profile ('debrief profile init'): commented TOML that reads back equal."""

from __future__ import annotations

import json
import re
import textwrap

from pipeline.profile.model import BUILTIN, Criterion, Profile

DEFAULT_WEIGHTS: dict[str, int] = {
    "pay": 8, "growth": 6, "manager_team": 7, "stability": 6, "hours_flexibility": 5,
    "commute_remote": 4, "mission": 4, "title_level": 3, "benefits": 4,
}
EXAMPLE_MUST_HAVES = ("at least my current pay", "the pay and title in a written offer")
EXAMPLE_DEAL_BREAKERS = ("no unpaid trial work",)
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_string(value: str) -> str:
    """A TOML basic string. JSON's escapes are TOML's; TOML also wants DEL escaped."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else toml_string(key)


def _toml_list(items: list[str]) -> str:
    if not items:
        return "[]"
    return "[\n" + "".join(f"    {toml_string(i)},\n" for i in items) + "]"


def to_toml(profile: Profile, *, template: bool = False) -> str:
    """Profile -> commented TOML that parse_profile reads back equal to `profile`.

    Criteria without a description use the short form (`pay = 8`), the others a
    `[criteria.NAME]` table. User text only ever appears inside strings, never in comments.
    """
    head = ("# A template: change the weights, must-haves and deal-breakers to yours, then run"
            "\n# 'debrief profile check'." if template else
            "# Written by 'debrief profile init'. Change it with 'debrief profile edit'.")
    out = [
        "# What matters to you in a job. 'debrief reflect' weighs every interview against it.",
        head,
        "",
        "# What an offer must have, and what rules one out (3 to 200 characters each, up to 12).",
        f"must_haves = {_toml_list(profile.must_haves)}",
        f"deal_breakers = {_toml_list(profile.deal_breakers)}",
        "",
        "# How much each criterion matters: 1 (a little) to 10 (it decides). Delete a line to",
        "# leave a criterion out.",
        *textwrap.wrap("Built-in criteria: " + ", ".join(BUILTIN) + ".", width=90,
                       initial_indent="# ", subsequent_indent="#   "),
        "[criteria]",
    ]
    tables = []
    for key, crit in profile.criteria.items():
        if crit.description is not None:
            tables.append((key, crit))
            continue
        line = f"{_toml_key(key)} = {crit.weight}"
        if key in BUILTIN:
            line = f"{line:<24}# {BUILTIN[key].label}: {BUILTIN[key].description.lower()}"
        out.append(line)
    if any(key not in BUILTIN for key in profile.criteria):
        out += ["", "# Your own criteria, each with a description of what your notes should tell."]
    else:
        out += ["", "# Your own criterion needs a description, for example:",
                "# [criteria.four_day_week]", "# weight = 7",
                '# description = "Whether I can work four days a week"']
    for key, crit in tables:
        out += [f"[criteria.{_toml_key(key)}]", f"weight = {crit.weight}",
                f"description = {toml_string(crit.description or '')}", ""]
    if tables:
        out.pop()
    cur = profile.current
    out += [
        "",
        "# Where you are now: every offer is weighed against it.",
        '# status is "employed" (then job and pay) or "not_working" (then savings_months).',
        "[current]",
        f"status = {toml_string(cur.status)}",
    ]
    hints = {"job": '"Support engineer at a logistics firm"', "pay": '"$68k"',
             "savings_months": "6  # months you could live on your savings"}
    for name, hint in hints.items():
        value = getattr(cur, name)
        if value is None:
            out.append(f"# {name} = {hint}")
        else:
            out.append(f"{name} = {toml_string(value) if isinstance(value, str) else value}")
    return "\n".join(out) + "\n"


def template_profile() -> Profile:
    return Profile(criteria={k: Criterion(weight=w) for k, w in DEFAULT_WEIGHTS.items()},
                   must_haves=list(EXAMPLE_MUST_HAVES),
                   deal_breakers=list(EXAMPLE_DEAL_BREAKERS))


def template_text() -> str:
    """The commented template 'debrief profile init --template' writes."""
    return to_toml(template_profile(), template=True)
