"""`--provider local`: a GGUF model served by a llama.cpp server that debrief starts itself.

`locate_model` finds the user's GGUF or assembles the packaged one; `LocalServer` runs the
server as a child process and gives the openai provider its `base_url` and model `alias`.
"""

from pipeline.llm.local.model import (
    DEFAULT_MODEL,
    LocalModel,
    ModelPart,
    PackagedModel,
    locate_model,
)
from pipeline.llm.local.server import NOT_INSTALLED, LocalServer, default_threads, server_installed

__all__ = [
    "DEFAULT_MODEL",
    "NOT_INSTALLED",
    "LocalModel",
    "LocalServer",
    "ModelPart",
    "PackagedModel",
    "default_threads",
    "locate_model",
    "server_installed",
]
