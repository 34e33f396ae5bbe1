"""The person's priorities profile: the model, reading it and writing it."""

from pipeline.profile.check import Problem
from pipeline.profile.model import (
           BUILTIN,
           HIGH_WEIGHT,
           Criterion,
           Profile,
           Situation,
           criterion_question,
)
from pipeline.profile.read import (
           load_profile,
           parse_profile,
           profile_problems,
           read_profile,
           read_text,
)

__all__ = ["BUILTIN", "HIGH_WEIGHT", "Criterion", "Problem", "Profile", "Situation",
           "criterion_question",
           "load_profile", "parse_profile", "profile_problems", "read_profile", "read_text"]
