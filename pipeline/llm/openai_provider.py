"""Any OpenAI-compatible chat server through langchain-openai's ChatOpenAI and the openai client.

The structured-output method is a setting because servers differ: OpenAI takes
``json_schema``; llama.cpp's server refuses it but constrains ``json_object`` with a schema
(its own extension, which keeps the schema out of the prompt) and ``function_calling`` by
grammar; some servers only honour ``json_mode``, where the schema is not enforced at all.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any
from urllib.parse import urlparse

from pipeline.errors import ProviderError
from pipeline.llm.base import Attempt, Message, Request

METHODS = ("json_schema", "function_calling", "json_object", "json_mode")
DEFAULT_MODEL = "gpt-4o-mini"


def resolve_method(method: str | None, base_url: str | None) -> str:
    if method and method != "auto":
        if method not in METHODS:
            raise ProviderError(f"structured output method '{method}' is not one of {', '.join(METHODS)}.")
        return method
    # OpenAI itself supports strict JSON schema; compatible servers most widely accept tools
    return "json_schema" if is_openai(base_url) else "function_calling"


def is_openai(base_url: str | None) -> bool:
    """OpenAI itself (no base URL, or its own), as opposed to a compatible server."""
    return not base_url or "api.openai.com" in base_url


class OpenAIProvider:
    name = "openai"

    def __init__(self, *, model: str | None, api_key: str | None, base_url: str | None,
                 method: str | None = None, temperature: float = 0.0, timeout: float = 60.0,
                 max_retries: int = 2, http_client: Any = None,
                 max_tokens: int | None = None) -> None:
        if not api_key and not base_url:
            raise ProviderError(
                "provider 'openai' needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local "
                "OpenAI-compatible server such as Ollama or llama.cpp); or use --provider offline."
            )
        self.model = model or DEFAULT_MODEL
        self.base_url = _check_base_url(base_url)
        self.method = resolve_method(method, base_url)
        self.max_retries = max_retries
        self.max_tokens = max_tokens
        from langchain_openai import ChatOpenAI

        kwargs: dict[str, Any] = {}
        if max_tokens:
            # small local models can ramble to the context end. ChatOpenAI sends
            # `max_completion_tokens`, which OpenAI honours but llama.cpp's server ignores;
            # compatible servers get the classic `max_tokens` field instead.
            if not is_openai(base_url):
                kwargs["extra_body"] = {"max_tokens": max_tokens}
            else:
                kwargs["max_tokens"] = max_tokens
        http_client = http_client if http_client is not None else deadline_client(timeout,
                                                                                  base_url)
        if http_client is not None:
            kwargs["http_client"] = http_client
        # keys never leave this object: no logging, and recordings strip headers
        self._llm = ChatOpenAI(
            model=self.model,
            api_key=api_key or "not-needed",
            base_url=base_url,
            temperature=temperature,
            timeout=timeout,
            max_retries=max_retries,  # the openai client backs off and honours Retry-After
            **kwargs,
        )

    def _runnable(self, schema: dict[str, Any]) -> Any:
        if self.method == "json_object":
            return self._llm.bind(response_format={"type": "json_object", "schema": schema})
        return self._llm.with_structured_output(schema, method=self.method, include_raw=True)

    def complete(self, request: Request) -> Attempt:
        import openai

        try:
            out = self._invoke(self._runnable(request.prompt.schema), request.messages)
        except openai.LengthFinishReasonError as exc:
            # the answer ran into the token limit before its JSON closed: an answer that
            # cannot be used (fed back once), not a fault of the server
            return Attempt(raw=_cut_off_text(exc),
                           usage=_ints(dict(getattr(exc.completion, "usage", None) or {})),
                           error=self._cut_off())
        except openai.AuthenticationError:
            raise ProviderError("the model server rejected the API key (401); check OPENAI_API_KEY.") from None
        except openai.NotFoundError as exc:
            raise ProviderError(f"the model server does not know model '{self.model}' or the path ({_msg(exc)}).") from None
        except openai.RateLimitError as exc:
            raise ProviderError(f"rate limited by the model server after retries (429: {_msg(exc)}).") from None
        except openai.APITimeoutError:
            raise ProviderError(f"the model server at {self._where()} timed out after retries.") from None
        except openai.APIConnectionError as exc:
            raise ProviderError(_connection_message(exc, self._where())) from None
        except openai.APIStatusError as exc:
            raise ProviderError(f"the model server answered HTTP {exc.status_code}: {_msg(exc)}"
                                f"{self._method_hint(exc)}") from None
        except json.JSONDecodeError as exc:
            raise ProviderError(f"the model server's response body is not valid JSON (truncated "
                                f"or corrupt: {_msg(exc)}; retries: {self.max_retries}).") from None
        except (openai.APIError, ValueError) as exc:
            raise ProviderError(f"the model answer could not be read: {_msg(exc)}") from None
        except openai.OpenAIError as exc:  # e.g. a content filter stopped the answer
            raise ProviderError(f"the model answer could not be used: {_msg(exc)}") from None
        except (IndexError, KeyError, TypeError, AttributeError) as exc:
            # e.g. {"choices": []}: a 200 that is not a chat completion the client can read
            raise ProviderError(f"the model server at {self._where()} answered with something "
                                f"that is not a chat completion ({type(exc).__name__}); is it "
                                "an OpenAI-compatible server?") from None
        if self.method == "json_object":
            return _from_content(out)
        raw_msg = out.get("raw")
        usage = _ints(dict(getattr(raw_msg, "usage_metadata", None) or {}))
        raw = _raw_text(raw_msg)
        parsed = out.get("parsed")
        err = out.get("parsing_error")
        if getattr(raw_msg, "additional_kwargs", {}).get("refusal"):
            err = f"the model refused: {raw_msg.additional_kwargs['refusal']}"
        cut = (getattr(raw_msg, "response_metadata", None) or {}).get("finish_reason") == "length"
        if parsed is None and cut:  # a tool call cut short reads as no tool call at all
            raw = raw or _invalid_call_text(raw_msg)
            err = self._cut_off()
        elif parsed is None and not raw.strip() and not str(err or "").startswith("the model refused"):
            err = "empty answer (no content and no tool call)"
        if not isinstance(parsed, dict):
            parsed = None
            err = err or "no structured result in the answer"
        return Attempt(answer=parsed, raw=raw, error=str(err)[:2000] if err else None,
                       usage=usage)

    def close(self) -> None:
        """Nothing to release: the HTTP client closes with the process."""

    def _method_hint(self, exc: Exception) -> str:
        """Servers differ in how they take a schema (llama.cpp refuses json_schema; some
        builds refuse tools); when the refusal names that part, say which setting to try."""
        text = _msg(exc).lower()
        if not any(w in text for w in ("response_format", "json_schema", "tool",
                                       "function call")):
            return ""
        others = [m for m in METHODS if m != self.method]
        return (f" (this server may not take --structured-output {self.method}; try "
                f"{' or '.join(others)})")

    def _invoke(self, runnable: Any, messages: list[Message]) -> Any:
        """A body cut short (a proxy, a server restarting) is as passing as a 5xx, but the
        openai client retries only statuses and connections; a JSON body that does not parse
        gets the same number of retries here, with jittered exponential backoff."""
        from tenacity import (
            Retrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_random_exponential,
        )

        for attempt in Retrying(retry=retry_if_exception_type(json.JSONDecodeError),
                                stop=stop_after_attempt(self.max_retries + 1),
                                wait=wait_random_exponential(multiplier=0.5, max=8),
                                reraise=True):
            with attempt:
                return runnable.invoke(messages)
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _cut_off(self) -> str:
        limit = f"{self.max_tokens} tokens" if self.max_tokens else "the server's limit"
        return (f"the answer was cut off at the length limit ({limit}) before its JSON was "
                "complete; answer shorter")

    def _where(self) -> str:
        return self.base_url or "api.openai.com"


def _cut_off_text(exc: Any) -> str:
    """The partial answer a length-limited completion carries, for the feedback turn."""
    try:
        return str(exc.completion.choices[0].message.content or "")
    except (AttributeError, IndexError):
        return ""


def _invalid_call_text(msg: Any) -> str:
    """The arguments of a tool call that did not parse (cut short), for the feedback turn."""
    calls = getattr(msg, "invalid_tool_calls", None) or []
    return str(calls[0].get("args") or "") if calls else ""


def _from_content(msg: Any) -> Attempt:
    """A json_object answer: the JSON is the message content. Small models put raw newlines
    inside strings, which strict JSON forbids and every reader accepts."""
    usage = _ints(dict(getattr(msg, "usage_metadata", None) or {}))
    raw = _raw_text(msg)
    if not raw.strip():
        return Attempt(raw=raw, error="empty answer (no content)", usage=usage)
    try:
        parsed = json.loads(raw, strict=False)
    except json.JSONDecodeError as exc:
        return Attempt(raw=raw, error=f"the answer is not JSON ({_msg(exc)})", usage=usage)
    if not isinstance(parsed, dict):
        return Attempt(raw=raw, error="the answer is JSON but not an object", usage=usage)
    return Attempt(answer=parsed, raw=raw, usage=usage)


def deadline_client(total: float, base_url: str | None) -> Any:
    """An HTTP client whose requests end by ``total`` seconds even when a server trickles;
    None (the openai client's own, which honours proxy settings) when a proxy is set for
    the server, since the deadline transport talks to servers directly."""
    import httpx  # heavy: it loads click and rich when they are installed

    from pipeline.llm.deadline import DeadlineTransport  # built on httpx, likewise

    host = urlparse(base_url or "https://api.openai.com").hostname or ""
    proxies = urllib.request.getproxies()
    if proxies and not urllib.request.proxy_bypass(host):
        return None
    return httpx.Client(transport=DeadlineTransport(total), timeout=total)


def _ints(usage: dict[str, Any]) -> dict[str, int]:
    return {k: int(v) for k, v in usage.items() if isinstance(v, int)}


def _check_base_url(base_url: str | None) -> str | None:
    """A clear error now rather than httpx's InvalidURL (or a DNS lookup of junk) later."""
    if not base_url:
        return base_url
    try:
        url = urlparse(base_url)
        url.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        url = urlparse("")
    if (url.scheme not in ("http", "https") or not url.hostname
            or any(ord(c) <= 32 or ord(c) == 127 for c in base_url)):
        raise ProviderError(f"base URL {base_url!r} is not an http(s) URL like "
                            "http://127.0.0.1:11434/v1 (--base-url, OPENAI_BASE_URL).")
    return base_url


def _connection_message(exc: Exception, where: str) -> str:
    """'cannot reach' when nothing answered; otherwise name what broke mid-answer."""
    chain: list[BaseException] = []
    cause = exc.__cause__
    while cause is not None and len(chain) < 8:  # the SDK and httpx re-wrap the socket error
        chain.append(cause)
        cause = cause.__cause__
    if not chain or any(type(c).__name__ in ("ConnectError", "ConnectionRefusedError", "gaierror")
                        for c in chain):
        return f"cannot reach the model server at {where}; is it running?"
    cause = chain[-1]
    return (f"the connection to the model server at {where} broke mid-answer after retries "
            f"({type(cause).__name__}: {_msg(cause)}).")


def _msg(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return " ".join(str(text).split())[:300]


def _raw_text(msg: Any) -> str:
    if msg is None:
        return ""
    calls = getattr(msg, "tool_calls", None) or []
    if calls:
        return json.dumps(calls[0].get("args", {}), ensure_ascii=False)
    content = getattr(msg, "content", "")
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
