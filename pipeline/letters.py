"""The notes a person sends after deciding: a thank-you to keep going, a graceful withdrawal.

The core writes these, not a provider, so every engine's draft reads the same way.
"""

from __future__ import annotations

import re

from pipeline.notes import Notes

_TITLES = {"dr", "mr", "mrs", "ms", "mx", "prof", "professor", "sir", "dame"}


def _first_name(notes: Notes) -> str:
    """'Dana Ruiz (manager)' -> 'Dana'; 'Dr. Alan Reyes' -> 'Dr. Reyes'."""
    if not notes.meta.interviewers:
        return "there"
    words = re.split(r"\s+", re.split(r"[(,]", notes.meta.interviewers[0])[0].strip())
    words = [w for w in words if w]
    if not words:
        return "there"
    if words[0].lower().rstrip(".") in _TITLES and len(words) > 1:
        return f"{words[0]} {words[-1]}"
    return words[0]


def role_at(notes: Notes) -> str:
    role = notes.meta.role
    company = notes.company
    if role and company:
        return f"the {role} role at {company}"
    if role:
        return f"the {role} role"
    return f"the role at {company}" if company else "the role"


def thank_you(notes: Notes) -> str:
    return (
        f"Hi {_first_name(notes)},\n\n"
        f"Thank you for taking the time to talk with me about {role_at(notes)}. I enjoyed "
        "the conversation and I left more interested in the work and the team. If it would "
        "help, I am happy to share anything else you need from me before the next step.\n\n"
        "I look forward to hearing from you.\n\nBest regards,"
    )


def withdrawal(notes: Notes) -> str:
    company = notes.company or "your team"
    return (
        f"Hi {_first_name(notes)},\n\n"
        f"Thank you for the time you and the team spent with me on {role_at(notes)}. "
        "After careful thought I have decided to withdraw from the process, as the role is not "
        f"the right fit for me at this point. I appreciated learning about {company}, and I "
        "hope our paths cross again.\n\nWishing you and the team all the best,"
    )
