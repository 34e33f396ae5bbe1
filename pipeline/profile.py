"""What matters to this person: weighted criteria, must-haves, deal-breakers, and the current
situation every opportunity is weighed against. Stored as ``profile.toml`` in DEBRIEF_HOME.

A missing profile means no matrix: reflections stay exactly as they were without one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import DebriefError


@dataclass(frozen=True)
class Builtin:
    """A criterion the tool knows: the advice documents and note words that speak to it."""

    label: str
    description: str
    docs: tuple[str, ...]
    words: str  # a regex over one note sentence
    question: str


BUILTIN: dict[str, Builtin] = {
    "pay": Builtin(
        "Pay", "Base pay against what you earn now", ("total-compensation", "pay-below-current-job",
                                                     "red-flag-evasive-about-pay", "negotiating-an-offer"),
        r"\b(pay|paid|salary|base|band|comp(ensation)?|raise|bonus|equity|rsus?|stock|"
        r"commission|wage|rate|k\b|\$|£|€)|\d+k\b",
        "What is the pay range for this role, and how is it reviewed?"),
    "growth": Builtin(
        "Growth and learning", "Room to learn, be mentored and progress",
        ("growth-and-learning", "role-scope-and-level"),
        r"\b(learn\w*|grow(th|ing)?|mentor\w*|promot\w*|career path|progression|development|"
        r"training|stretch|new skills?|coach\w*|ladder|leveling|conferences?)\b",
        "How do people on this team learn and get promoted; can you give an example?"),
    "manager_team": Builtin(
        "Manager and team", "The manager you would work for and the people around you",
        ("manager-fit", "team-and-culture-signals", "red-flag-disrespect-in-the-process"),
        r"\b(manager|boss|team ?lead|team(mates)?|colleagues?|peers?|1:1s?|one-on-ones?|culture|"
        r"rude|kind|respect\w*|supportive|micromanag\w*|toxic|collaborat\w*)\b",
        "How does the manager run the team day to day (1:1s, feedback, decisions)?"),
    "stability": Builtin(
        "Stability", "How secure the job and the company are",
        ("company-stability", "red-flag-evasive-about-turnover", "when-options-are-scarce"),
        r"\b(layoffs?|laid off|runway|funding|funded|series [a-e]|profitab\w*|stable|stability|"
        r"turnover|attrition|(people|engineers|staff|nurses|folks|\w+s) (have )?(left|quit)|churn|"
        r"reorg\w*|fixed-term|permanent|job security|acquired|acquisition|bankrupt\w*)\b",
        "How long is the runway, and how has headcount changed over the last year?"),
    "hours_flexibility": Builtin(
        "Hours and flexibility", "Working hours, on-call, and control over your schedule",
        ("commute-and-hours", "red-flag-overwork-culture", "remote-and-flexibility"),
        r"\b(hours?|overtime|weekends?|evenings?|nights?|on-?call|pager|shifts?|rota|"
        r"flexib\w*|part-time|four-day|4-day|school run|childcare|pick-?ups?|"
        r"burn ?out|work-life|9-5|9 to 5)\b",
        "What do normal working hours and on-call look like in a typical month?"),
    "commute_remote": Builtin(
        "Commute or remote", "Travel to work, office days and remote options",
        ("commute-and-hours", "remote-and-flexibility"),
        r"\b(commut\w*|remote|hybrid|on-?site|in-?office|office|wfh|from home|relocat\w*|"
        r"drive|driving|minutes each way|each way|days a week in|days in)\b",
        "How many days a week are in the office, and is that written into the offer?"),
    "mission": Builtin(
        "Mission", "Whether the work matters to you",
        ("mission-and-values-fit",),
        r"\b(mission|purpose|impact|meaningful|values|ethic\w*|care about|patients|climate|"
        r"cause|social good)\b",
        "What would success in this role change for the people the company serves?"),
    "title_level": Builtin(
        "Title and level", "Title, level and scope against what you have now",
        ("role-scope-and-level", "red-flag-bait-and-switch-role", "posting-versus-reality"),
        r"\b(title|level|leveled|senior|junior|principal|staff engineer|scope|downlevel\w*|"
        r"step down|step up|posting|job description|jd)\b",
        "What level and title would the offer carry, and what scope comes with it?"),
    "benefits": Builtin(
        "Benefits", "Health cover, pension, leave and other benefits",
        ("total-compensation",),
        r"\b(benefits?|health (insurance|cover|plan)|dental|insurance|pension|401k|401\(k\)|"
        r"parental leave|maternity|paternity|pto|allowance|stipend|perks?)\b",
        "What benefits come with the role (health cover, pension match, leave)?"),
}

KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
HIGH_WEIGHT = 7  # from this weight an unknown criterion becomes a top question


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weight: int = Field(ge=1, le=10)
    description: str | None = Field(default=None, max_length=300)


class Situation(BaseModel):
    """The alternative to every opportunity: staying where you are, or keep looking."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["employed", "not_working"] = "employed"
    job: str | None = Field(default=None, max_length=200)
    pay: str | None = Field(default=None, max_length=100, description="e.g. '$95k' or '£42,000'")
    savings_months: int | None = Field(default=None, ge=0, le=600)


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    criteria: dict[str, Criterion] = Field(min_length=1, max_length=20)
    must_haves: list[str] = Field(default_factory=list, max_length=12)
    deal_breakers: list[str] = Field(default_factory=list, max_length=12)
    current: Situation = Field(default_factory=Situation)

    @field_validator("criteria", mode="before")
    @classmethod
    def _weights_as_numbers(cls, value: Any) -> Any:
        # `pay = 8` is the short form of `[criteria.pay] weight = 8`
        if isinstance(value, dict):
            return {k: {"weight": v} if isinstance(v, int) and not isinstance(v, bool) else v
                    for k, v in value.items()}
        return value

    @field_validator("must_haves", "deal_breakers")
    @classmethod
    def _clean_items(cls, items: list[str]) -> list[str]:
        out = [" ".join(i.split()) for i in items]
        for item in out:
            if not 3 <= len(item) <= 200:
                raise ValueError(f"{item!r} must be 3 to 200 characters")
        if len({i.lower() for i in out}) != len(out):
            raise ValueError("an item is listed twice")
        return out

    @model_validator(mode="after")
    def _known_or_described(self) -> Profile:
        for key, crit in self.criteria.items():
            if not KEY.match(key):
                raise ValueError(f"criterion name {key!r} must be lower_snake_case (a-z, 0-9, _)")
            if key not in BUILTIN and not (crit.description or "").strip():
                raise ValueError(f"criterion {key!r} is your own: give it a description "
                                 f"(built-in: {', '.join(BUILTIN)})")
        return self

    def label(self, key: str) -> str:
        return BUILTIN[key].label if key in BUILTIN else key.replace("_", " ").capitalize()

    def description(self, key: str) -> str:
        crit = self.criteria[key]
        return crit.description or BUILTIN[key].description

    def fingerprint(self) -> str:
        """Changes whenever anything that could change a reflection changes (batch uses it)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]


def profile_path() -> Path:
    env = os.environ.get("DEBRIEF_PROFILE")
    if env:
        return Path(env).expanduser()
    from pipeline.config import home

    return home() / "profile.toml"


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if p not in ("function-after[_known_or_described()]",))


def parse_profile(text: str, where: str) -> Profile:
    """TOML text -> Profile, or one DebriefError line naming the first problem and its field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DebriefError(f"profile {where} is not valid TOML: {exc}") from None
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        errs = exc.errors()
        first = errs[0]
        loc = _field(first["loc"]) or "profile"
        msg = first["msg"].removeprefix("Value error, ")
        more = f" (and {len(errs) - 1} more problem(s))" if len(errs) > 1 else ""
        raise DebriefError(f"profile {where}: {loc}: {msg}{more}; "
                           "run 'debrief profile check' for all of them.") from None


def problems(text: str) -> list[str]:
    """Every problem in a profile text, one line each ('debrief profile check')."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [f"not valid TOML: {exc}"]
    try:
        Profile.model_validate(data)
    except ValidationError as exc:
        return [f"{_field(e['loc']) or 'profile'}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()]
    return []


def read_text(path: Path) -> str:
    """The profile file's text, or one DebriefError line (unreadable, too big, not UTF-8)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DebriefError(f"profile {path} cannot be read ({exc.strerror or exc}).") from None
    if len(raw) > 64_000:
        raise DebriefError(f"profile {path} is {len(raw) // 1000} KB; a profile is a few lines.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DebriefError(f"profile {path} is not UTF-8 text.") from None


def read_profile(path: Path) -> Profile:
    return parse_profile(read_text(path), str(path))


def load_profile(path: Path | None = None, *, enabled: bool = True) -> Profile | None:
    """The profile to weigh with: an explicit path must exist; the default one may not."""
    if not enabled:
        return None
    if path is not None:
        if not path.is_file():
            raise DebriefError(f"profile {path} does not exist; 'debrief profile init' writes one.")
        return read_profile(path)
    default = profile_path()
    return read_profile(default) if default.is_file() else None


def criterion_question(profile: Profile, key: str) -> str:
    if key in BUILTIN:
        return BUILTIN[key].question
    return f"What can you find out about this: {profile.description(key).rstrip('.')}?"


# -- writing a profile ('debrief profile init') ----------------------------------------------
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
