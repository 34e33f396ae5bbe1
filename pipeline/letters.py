"""What the core writes itself, whatever engine made the call: the note to send (a thank-you
to keep going, a graceful withdrawal) and the plain words on each angle.

A small model writes poor letters ("I regret this decision..."), and a letter must never burn
a bridge, so drafts come from these templates, filled with what the notes say: the
interviewer's name, the company as the person wrote it, one thing from the conversation,
and the person's own name when the config or profile gives it.
"""

from __future__ import annotations

import re

from pipeline.notes import Notes
from pipeline.settings import person_name

_TITLES = {"dr", "mr", "mrs", "ms", "mx", "prof", "professor", "sir", "dame"}
# a capitalised word the notes use as a person: "Dana (would be my manager)", "met Priya",
# "Gary said"; these words are never a name
_NAMED = re.compile(
    r"\b(?i:with|met|by|recruiter|manager|interviewer|lead|director|founder|ceo|cto|hr)\s+"
    r"(?P<a>[A-Z][a-z]{1,20})\b|\b(?P<b>[A-Z][a-z]{1,20})\s*\(|"
    r"\b(?P<c>[A-Z][a-z]{1,20})\s+(?:said|asked|told|mentioned|explained|seemed|was|showed|"
    r"called|admitted|laughed|wants|wanted)\b")
_NOT_NAMES = {"I", "The", "They", "She", "He", "We", "It", "My", "Our", "Their", "This", "That",
              "Then", "There", "Pay", "Office", "Team", "Role", "Salary", "Offer", "Manager",
              "Recruiter", "Interview", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
              "Saturday", "Sunday", "Overall", "Also", "But", "And", "So", "Honestly", "Round",
              "Note", "Notes", "Next", "Good", "Bad", "Nobody", "Everyone", "Someone", "HR"}
# one specific thing from the conversation, by what the strongest good sign was about
TOPIC_PHRASES = {
    "manager": "how you run the team day to day",
    "team": "the team and how you work together",
    "growth": "how people learn and grow on the team",
    "mission": "the work itself and the people it serves",
    "role": "what the role would take on",
    "flexibility": "how the team organises its time",
    "process": "how clearly you laid out the next steps",
    "security": "where the company is heading",
}
ANGLE_NOTES = {
    "practice": {
        "none": "Nothing here is worth rehearsing for other interviews.",
        "low": "Little here to practise for other interviews.",
        "medium": "Some moments here are worth rehearsing before the next interview.",
        "high": "Worth it as practice for the interviews that matter most.",
    },
    "leverage": {
        "none": "This process gives no leverage with other employers.",
        "low": "Little leverage with other employers yet.",
        "medium": "An offer here could strengthen your hand elsewhere.",
        "high": "This process is real leverage with other employers.",
    },
    "clarity": {
        "none": "It taught little about what you want.",
        "low": "It taught a little about what you want.",
        "medium": "It showed some of what you want and do not want.",
        "high": "It made clear what you want from your next job.",
    },
}


def interviewer(notes: Notes) -> str | None:
    """Who to write to: the first interviewer in the front matter, else the person the notes
    name most often. 'Dana Ruiz (manager)' -> 'Dana'; 'Dr. Alan Reyes' -> 'Dr. Reyes'."""
    if notes.meta.interviewers:
        words = [w for w in re.split(r"\s+", re.split(r"[(,]", notes.meta.interviewers[0])[0])
                 if w]
        if words:
            if words[0].lower().rstrip(".") in _TITLES and len(words) > 1:
                return f"{words[0]} {words[-1]}"
            return words[0]
    counts: dict[str, int] = {}
    for m in _NAMED.finditer(notes.body):
        name = m.group("a") or m.group("b") or m.group("c")
        if name and name not in _NOT_NAMES and name.lower() not in notes.company.lower():
            counts[name] = counts.get(name, 0) + 1
    return max(counts, key=lambda n: (counts[n], -notes.body.find(n))) if counts else None


def role_at(notes: Notes) -> str:
    role = notes.meta.role
    company = notes.company
    if role and company:
        return f"the {role} role at {company}"
    if role:
        return f"the {role} role"
    return f"the role at {company}" if company else "the role"


def _sign_off(closing: str, name: str | None) -> str:
    return f"{closing}\n{name or person_name() or '[your name]'}"


def thank_you(notes: Notes, *, topic: str | None = None, keen: bool = True,
              name: str | None = None) -> str:
    """``topic``: what the strongest good sign was about; ``keen``: whether the person wants
    this job (a backup kept for practice gets a warm note, not a declaration of interest)."""
    hello = f"Hi {interviewer(notes) or 'there'},"
    phrase = TOPIC_PHRASES.get(topic or "")
    specific = f" I especially valued hearing about {phrase}." if phrase else ""
    interest = ("I left more interested in the role" if keen
                else "It was useful to understand the role better")
    return (
        f"{hello}\n\nThank you for taking the time to talk with me about {role_at(notes)}."
        f"{specific} {interest}, and I am happy to share anything else you need before the "
        f"next step.\n\nI look forward to hearing from you.\n\n{_sign_off('Best regards,', name)}"
    )


def withdrawal(notes: Notes, *, name: str | None = None) -> str:
    company = notes.company or "your team"
    hello = f"Hi {interviewer(notes) or 'there'},"
    return (
        f"{hello}\n\nThank you for the time you and the team spent with me on {role_at(notes)}. "
        "After careful thought I have decided to withdraw from the process, as the role is not "
        f"the right fit for me at this point. I appreciated learning about {company}, and I "
        f"hope our paths cross again.\n\n{_sign_off('With best wishes,', name)}"
    )
