"""Options several commands share, as decorators, each with its environment variable.

Each decorator turns its options into one typed settings object for the core
(``provider: ProviderSettings``, ``index: IndexSettings``), so a setting is declared once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pipeline.settings import (
    DEFAULT_COLLECTION,
    PROVIDERS,
    RANGES,
    STRUCTURED_OUTPUT,
    IndexSettings,
    ProviderSettings,
)

F = Callable[..., Any]


def int_range(key: str) -> click.IntRange:
    """The bounds of a numeric setting (pipeline.settings.RANGES), which the config file's
    check uses too."""
    low, high = RANGES[key]
    return click.IntRange(int(low), int(high))


def not_nan(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    # FloatRange lets "nan" through (every comparison with it is false)
    if value is not None and value != value:
        raise click.BadParameter("nan is not a number of seconds.", ctx=ctx, param=param)
    return value


def _apply(fn: F, opts: list[Callable[[F], F]]) -> F:
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def index_options(fn: F) -> F:
    """--collection, --chroma-url and --corpus, passed on as ``index: IndexSettings``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, collection: str, chroma_url: str | None,
                corpus_dirs: tuple[Path, ...], **kwargs: Any) -> Any:
        return fn(*args, index=IndexSettings(collection=collection, chroma_url=chroma_url,
                                             corpus_dirs=tuple(corpus_dirs)), **kwargs)

    return _apply(wrapper, [
        click.option("--collection", envvar="DEBRIEF_COLLECTION", default=DEFAULT_COLLECTION,
                     show_default=True, metavar="NAME",
                     help="Chroma collection holding the advice index."),
        click.option("--chroma-url", envvar="DEBRIEF_CHROMA_URL", default=None, metavar="URL",
                     help="Use a `chroma run` server (e.g. http://127.0.0.1:8000) instead of "
                          "the embedded index. Token: DEBRIEF_CHROMA_TOKEN."),
        click.option("--corpus", "corpus_dirs", multiple=True, envvar="DEBRIEF_CORPUS",
                     type=click.Path(file_okay=False, path_type=Path),
                     help="Extra folder of advice documents (repeatable); see "
                          "corpus/README.md. reflect and index add it to the advice index "
                          "(embedding only what changed); batch and compare use the index as "
                          "built, so run 'debrief index --corpus DIR' for them."),
    ])


def provider_options(*, timeout: float | None = None, choose: bool = True,
                     timeout_help: str = "Seconds per model request [default: 60; 600 with "
                                         "--provider local].") -> Callable[[F], F]:
    """The model settings, passed on as ``provider: ProviderSettings``. ``choose=False``
    leaves out --provider (eval picks the engine with --mode)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, model: str | None, base_url: str | None,
                    structured_output: str, timeout: float | None, max_tokens: int | None,
                    max_retries: int, local_model: str | None, local_threads: int | None,
                    provider: str = "auto", **kwargs: Any) -> Any:
            return fn(*args, provider=ProviderSettings(
                provider=provider, model=model, base_url=base_url,
                structured_output=structured_output, timeout=timeout, max_tokens=max_tokens,
                max_retries=max_retries, local_model=local_model,
                local_threads=local_threads), **kwargs)

        opts = [
            click.option("--model", envvar="DEBRIEF_MODEL", default=None,
                         help="Model name for the openai provider [default: gpt-4o-mini]."),
            click.option("--base-url", envvar=["DEBRIEF_BASE_URL", "OPENAI_BASE_URL"],
                         default=None, metavar="URL", help="OpenAI-compatible server, e.g. "
                         "http://127.0.0.1:11434/v1 for Ollama."),
            click.option("--structured-output", "structured_output",
                         envvar="DEBRIEF_STRUCTURED_OUTPUT", default="auto", show_default=True,
                         type=click.Choice(STRUCTURED_OUTPUT),
                         help="How to ask for JSON. auto = json_schema on OpenAI, "
                              "json_object with a grammar for --provider local, "
                              "function_calling elsewhere (Ollama, other servers)."),
            click.option("--timeout", envvar="DEBRIEF_TIMEOUT", default=timeout,
                         metavar="SECONDS",
                         show_default=timeout is not None,
                         type=click.FloatRange(*RANGES["timeout"]), callback=not_nan,
                         help=timeout_help),
            click.option("--max-tokens", envvar="DEBRIEF_MAX_TOKENS", default=None,
                         type=int_range("max_tokens"),
                         help="Cap on the answer's length (useful for small local models)."),
            click.option("--max-retries", envvar="DEBRIEF_MAX_RETRIES", default=2,
                         show_default=True, type=int_range("max_retries"),
                         help="Retries on 429/5xx/timeouts, with backoff and Retry-After."),
            click.option("--local-model", envvar="DEBRIEF_LOCAL_MODEL", default=None,
                         metavar="GGUF", help="A GGUF model file for --provider local "
                         "[default: the packaged Qwen2.5-Coder-1.5B-Instruct]; 'off' keeps "
                         "auto from choosing local."),
            click.option("--local-threads", envvar="DEBRIEF_LOCAL_THREADS", default=None,
                         type=int_range("local_threads"),
                         help="CPU threads for the local model [default: all cores; 1 leaves "
                              "a core free for other work]."),
        ]
        if choose:
            opts.insert(0, click.option(
                "--provider", envvar="DEBRIEF_PROVIDER", default="auto", show_default=True,
                type=click.Choice(list(PROVIDERS)),
                help="auto = openai when OPENAI_API_KEY or OPENAI_BASE_URL is set, else "
                     "local when the local model is installed, else the offline engine."))
        return _apply(wrapper, opts)

    return decorate


def profile_options(fn: F) -> F:
    fn = click.option("--no-profile", "no_profile", is_flag=True,
                      help="Ignore the priorities profile: no decision matrix.")(fn)
    fn = click.option("--profile", "profile_path", envvar="DEBRIEF_PROFILE", default=None,
                      type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
                      help="Priorities profile to weigh with [default: $DEBRIEF_HOME/"
                           "profile.toml when it exists]; see 'debrief profile'.")(fn)
    return fn
