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

from pipeline.settings import DEFAULT_COLLECTION, PROVIDERS, IndexSettings, ProviderSettings

F = Callable[..., Any]
METHODS = ["auto", "json_schema", "function_calling", "json_mode"]


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
                     show_default=True, help="Chroma collection holding the advice index."),
        click.option("--chroma-url", envvar="DEBRIEF_CHROMA_URL", default=None, metavar="URL",
                     help="Use a `chroma run` server (e.g. http://127.0.0.1:8000) instead of "
                          "the embedded index. Token: DEBRIEF_CHROMA_TOKEN."),
        click.option("--corpus", "corpus_dirs", multiple=True, envvar="DEBRIEF_CORPUS",
                     type=click.Path(file_okay=False, path_type=Path),
                     help="Extra folder of advice documents (repeatable); see "
                          "corpus/README.md."),
    ])


def provider_options(*, timeout: float = 60.0, choose: bool = True,
                     timeout_help: str = "Seconds per model request.") -> Callable[[F], F]:
    """The model settings, passed on as ``provider: ProviderSettings``. ``choose=False``
    leaves out --provider (eval picks the engine with --mode)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, model: str | None, base_url: str | None,
                    structured_output: str, timeout: float, max_tokens: int | None,
                    max_retries: int, provider: str = "auto", **kwargs: Any) -> Any:
            return fn(*args, provider=ProviderSettings(
                provider=provider, model=model, base_url=base_url,
                structured_output=structured_output, timeout=timeout, max_tokens=max_tokens,
                max_retries=max_retries), **kwargs)

        opts = [
            click.option("--model", envvar="DEBRIEF_MODEL", default=None,
                         help="Model name for the openai provider [default: gpt-4o-mini]."),
            click.option("--base-url", envvar=["DEBRIEF_BASE_URL", "OPENAI_BASE_URL"],
                         default=None, metavar="URL", help="OpenAI-compatible server, e.g. "
                         "http://127.0.0.1:11434/v1 for Ollama."),
            click.option("--structured-output", "structured_output",
                         envvar="DEBRIEF_STRUCTURED_OUTPUT", default="auto", show_default=True,
                         type=click.Choice(METHODS),
                         help="How to ask for JSON. auto = json_schema on OpenAI, "
                              "function_calling elsewhere (llama.cpp, Ollama)."),
            click.option("--timeout", envvar="DEBRIEF_TIMEOUT", default=timeout,
                         show_default=True, type=click.FloatRange(min=0.1, max=3600),
                         callback=not_nan, help=timeout_help),
            click.option("--max-tokens", envvar="DEBRIEF_MAX_TOKENS", default=None,
                         type=click.IntRange(64, 100000),
                         help="Cap on the answer's length (useful for small local models)."),
            click.option("--max-retries", envvar="DEBRIEF_MAX_RETRIES", default=2,
                         show_default=True, type=click.IntRange(0, 10),
                         help="Retries on 429/5xx/timeouts, with backoff and Retry-After."),
        ]
        if choose:
            opts.insert(0, click.option(
                "--provider", envvar="DEBRIEF_PROVIDER", default="auto", show_default=True,
                type=click.Choice(list(PROVIDERS)),
                help="auto = openai when OPENAI_API_KEY or OPENAI_BASE_URL is set, "
                     "else the offline engine."))
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
