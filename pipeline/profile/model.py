"""What matters to this person: weighted criteria, must-haves, deal-breakers, and the current
situation every opportunity is weighed against. Stored as ``profile.toml`` in DEBRIEF_HOME.

A missing profile means no matrix: reflections stay exactly as they were without one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


@dataclass(frozen=True)
class Builtin:
    """A criterion the tool knows: how it is shown, and what to ask when notes are silent."""

    label: str
    description: str
    question: str


BUILTIN: dict[str, Builtin] = {
    "pay": Builtin(
        "Pay",
        "Base pay against what you earn now",
        "What is the pay range for this role, and how is it reviewed?"),
    "growth": Builtin(
        "Growth and learning",
        "Room to learn, be mentored and progress",
        "How do people on this team learn and get promoted; can you give an example?"),
    "manager_team": Builtin(
        "Manager and team",
        "The manager you would work for and the people around you",
        "How does the manager run the team day to day (1:1s, feedback, decisions)?"),
    "stability": Builtin(
        "Stability",
        "How secure the job and the company are",
        "How long is the runway, and how has headcount changed over the last year?"),
    "hours_flexibility": Builtin(
        "Hours and flexibility",
        "Working hours, on-call, and control over your schedule",
        "What do normal working hours and on-call look like in a typical month?"),
    "commute_remote": Builtin(
        "Commute or remote",
        "Travel to work, office days and remote options",
        "How many days a week are in the office, and is that written into the offer?"),
    "mission": Builtin(
        "Mission",
        "Whether the work matters to you",
        "What would success in this role change for the people the company serves?"),
    "title_level": Builtin(
        "Title and level",
        "Title, level and scope against what you have now",
        "What level and title would the offer carry, and what scope comes with it?"),
    "benefits": Builtin(
        "Benefits",
        "Health cover, pension, leave and other benefits",
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

    @field_validator("job", "pay", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: Any) -> Any:
        # `pay = 95000` means the text "95000"; true/false stay refused
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return value


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


def criterion_question(profile: Profile, key: str) -> str:
    if key in BUILTIN:
        return BUILTIN[key].question
    return f"What can you find out about this: {profile.description(key).rstrip('.')}?"
