"""The one fake OpenAI-compatible chat server for debrief's tests and benchmarks (stdlib only).

It answers ``POST /v1/chat/completions`` the way a model would answer a debrief request
under the ``reflect-v2`` contract (``reflect-profile-v2`` with a priorities profile). It
reads from the prompt the listed note sentences between ``<<<NOTES`` and ``NOTES>>>``
(numbered ``S1. ...`` lines, or ``- ...`` lines to quote from), the listed passages
(``[doc-id#n] heading (stance): excerpt``) and, with a profile, its criteria, must-haves
(``- M1: ...``) and deal-breakers (``- D1: ...``). It answers ``{"points": [...],
"practice", "leverage", "clarity"}`` (plus any other field the request's schema asks for,
and ``criteria``, ``deal_breakers``, ``must_haves`` under a profile), citing only listed
sentences (by number or by exact quote, whichever the schema asks for), listed passage ids
and profile numbers: through ``tool_calls`` when the request has ``tools``, in
``message.content`` otherwise (``json_schema``, ``json_object`` with or without a schema).
Every answer and error carries ``"system_fingerprint": "debrief-fake-openai"``, and so do
the points' reasons, so nobody mistakes it for a real model. A request of the wrong shape
(no model, no messages, not a debrief prompt, a schema that disagrees with the prompt) gets
a 400 and is kept in ``errors``.

In-process (a thread), as a context manager or with ``start()``/``stop()``::

    with FakeOpenAI(latency=0.2, faults="2:429/0,3:500") as fake:
        ... OPENAI_BASE_URL=fake.url ...
        fake.requests          # how many chat requests arrived
        fake.seen[0].sentences  # each request, parsed (see Request)
        fake.check()           # no malformed request, no handler error

    FakeOpenAI(plans=["schema", "ok"])                 # call n gets plans[n] (the last repeats)
    FakeOpenAI(choose=lambda req, n: "refusal" if "Zephyr" in req.user else "ok")
    FakeOpenAI(plans=[lambda req: {**answer_for(req), "practice": "high"}])  # own answer
    FakeOpenAI(key="sk-...", models=["a", "b"], corpus_ids=[...])

As a process (prints ``listening on http://127.0.0.1:PORT/v1``, serves until killed)::

    python tests/fake_openai.py --port 0 --latency 0.2 --faults "1:timeout,2:429/1"

A plan is one of PLANS, a status (``429``, ``429/S`` for ``Retry-After: S``, any status
>= 400 with an OpenAI-style error body), or a callable ``plan(request)`` returning an
answer dict (sent like a model's answer) or a ``Reply``. The plan for call n is
``choose(request, n)`` when set, else ``faults[n]`` when given (``"N:PLAN,..."``), else
``plans[n]``. ``GET /v1/models`` lists ``models``; ``GET /stats`` returns the request counts
and timings as JSON; ``GET /stats/reset`` returns them and starts counting again.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FINGERPRINT = "debrief-fake-openai"
REFUSAL = "I'm sorry, I cannot help with that request."
MADE_UP_ID = "not-retrieved-doc#42"
UNLISTED = "The foreman promised a corner office with a sea view."
PLANS = {
    "ok": "a valid answer built from the request",
    "timeout": "no answer: hold the connection `hang` seconds, then close it",
    "reset": "headers and a third of the body, then RST (SO_LINGER 0)",
    "short-body": "Content-Length promises more than is sent, then a clean close",
    "truncated": "a complete HTTP 200 whose JSON body is cut in half",
    "schema": "well-formed JSON that does not fit the answer schema",
    "refusal": "a refusal in the message, no content",
    "empty": "an empty answer: no content, no tool call",
    "echo": "the request's own messages echoed back as the answer",
    "bad-citation": f"the first point cites a made-up passage id ({MADE_UP_ID})",
    "cites-unretrieved": "the first point cites a real corpus passage not listed (corpus_ids)",
    "cites-unlisted-sentence": "the first point cites S99 (or quotes UNLISTED), a sentence "
                               "the prompt does not list",
    "raw-newlines": "a valid answer in content with raw newlines inside its strings",
    "trickle": "a valid answer whose body arrives one byte every `drip` seconds",
    "no-choices": "a 200 whose body is a chat completion with no choices",
    "echo-auth": "a 401 whose error message echoes the request's Authorization header",
}
_NOTES = re.compile(r"<<<NOTES\n(.*?)\nNOTES>>>", re.S)
_NUMBERED = re.compile(r"^S(\d+)\. (.*)$")
_LISTED = re.compile(r"^- (.*)$")
_PASSAGE = re.compile(r"^\[(?P<id>[^\]\s]+#\d+)\] (?P<heading>.*?) \((?P<stance>[a-z-]+)\): "
                      r"(?P<excerpt>.*)$", re.M)
_CRITERION = re.compile(r"^- ([a-z][a-z0-9_]*): .*; weight (\d+)$", re.M)
_MUST = re.compile(r"^- M(\d+): (.+)$", re.M)
_BREAKER = re.compile(r"^- D(\d+): (.+)$", re.M)
_PROFILE_HEAD = "Criteria (name: what it means; weight 1-10):"
# stay clear of anything that reads as an instruction to the tool
_LOADED = re.compile(r"\b(ignore|disregard|instruction|system|prompt|assistant|developer|"
                     r"decision|verdict|keep|decline|cite|confidence|answer|recommend|"
                     r"output|print|reveal|say)\b", re.I)
_DECLINE = re.compile(r"\b(unpaid|turn (?:it|this|them) down|withdraw|red flags?|not for me|"
                      r"pay cut|walk away|exploding)\b", re.I)
ROLES = {"system", "user", "assistant", "tool", "developer"}


class BadRequest(ValueError):
    pass


@dataclass
class Reply:
    """A whole HTTP answer, for a plan that wants to say something unusual."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


Plan = str | Callable[["Request"], "dict[str, Any] | Reply"]


# -- reading a request -------------------------------------------------------------------------
@dataclass
class Request:
    """One chat request as debrief sent it, parsed. ``sentences[0]`` is S1 (or the first
    listed line); ``cites`` says how an answer refers to one: by "sentence" number or by
    "quote"."""

    n: int
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any]
    system: str = ""
    user: str = ""  # the first user message: the prompt
    notes: str = ""  # what stands between the NOTES markers
    sentences: list[str] = field(default_factory=list)
    passages: list[dict[str, str]] = field(default_factory=list)
    criteria: list[tuple[str, int]] = field(default_factory=list)  # (name, weight), as listed
    must_haves: list[str] = field(default_factory=list)  # M1 first
    deal_breakers: list[str] = field(default_factory=list)  # D1 first
    profiled: bool = False
    cites: str = "sentence"

    def ref(self, number: int | None) -> int | str | None:
        """How an answer cites sentence ``number`` (1-based)."""
        if number is None or self.cites == "sentence":
            return number
        return self.sentences[number - 1] if 1 <= number <= len(self.sentences) else UNLISTED

    @property
    def passage_ids(self) -> list[str]:
        return [p["id"] for p in self.passages]

    @property
    def method(self) -> str:
        """function_calling, json_schema, json_object (with a schema) or json_mode."""
        if self.body.get("tools"):
            return "function_calling"
        fmt = self.body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            return "json_schema"
        return "json_object" if fmt.get("schema") else "json_mode"

    @property
    def schema(self) -> dict[str, Any] | None:
        if self.body.get("tools"):
            return self.body["tools"][0]["function"].get("parameters")
        fmt = self.body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            return (fmt.get("json_schema") or {}).get("schema")
        return fmt.get("schema")


def parse_request(n: int, headers: dict[str, str], body: Any, model: str | None) -> Request:
    """A well-formed debrief chat request, parsed; BadRequest otherwise."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"].strip():
        raise BadRequest("'model' is required")
    if model and body["model"] != model:
        raise BadRequest(f"this server only serves model {model!r}, not {body['model']!r}")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise BadRequest(f"messages[{i}] needs a role among {sorted(ROLES)}")
        if not isinstance(m.get("content"), str) and not m.get("tool_calls"):
            raise BadRequest(f"messages[{i}].content must be a string")
    if messages[0]["role"] != "system":
        raise BadRequest("a debrief request starts with its system message")
    tools = body.get("tools")
    if tools is not None and (not isinstance(tools, list) or not tools
                              or not all(isinstance(t, dict) and t.get("type") == "function"
                                         for t in tools)):
        raise BadRequest("'tools' must be a list of function tools")
    fmt = body.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict)
                            or fmt.get("type") not in ("json_schema", "json_object")):
        raise BadRequest("response_format.type must be json_schema or json_object")
    user = next((m["content"] for m in messages if m["role"] == "user"
                 and isinstance(m.get("content"), str)), "")
    req = Request(n, headers, body, system=messages[0]["content"], user=user)
    notes = _NOTES.search(user)
    if not notes:
        raise BadRequest("no user message with the notes between <<<NOTES and NOTES>>>")
    req.notes = notes.group(1)
    if req.notes.strip() != "(no usable sentences)":
        lines = req.notes.split("\n")
        req.cites = "sentence" if lines[0].startswith("S1. ") else "quote"
        for i, line in enumerate(lines, 1):
            m = _NUMBERED.match(line) if req.cites == "sentence" else _LISTED.match(line)
            if not m or (req.cites == "sentence" and int(m.group(1)) != i):
                raise BadRequest(f"notes line {i} is not 'S{i}. <sentence>' nor "
                                 f"'- <sentence>' like line 1: {line[:80]!r}")
            req.sentences.append(m.group(m.lastindex or 1))
    before_notes = user[:notes.start()]
    req.passages = [m.groupdict() for m in _PASSAGE.finditer(before_notes)]
    if not req.passages:
        raise BadRequest("no passages listed like '[growth-and-learning#1] heading (keep): ...'")
    if _PROFILE_HEAD in before_notes:
        req.profiled = True
        block = before_notes.split(_PROFILE_HEAD, 1)[1]
        req.criteria = [(name, int(w)) for name, w in _CRITERION.findall(block)]
        req.must_haves = _numbered(_MUST.findall(block), "M")
        req.deal_breakers = _numbered(_BREAKER.findall(block), "D")
    _check_schema(req)
    return req


def _numbered(found: list[tuple[str, str]], prefix: str) -> list[str]:
    if [int(i) for i, _ in found] != list(range(1, len(found) + 1)):
        raise BadRequest(f"the profile's {prefix}<n> items are not numbered from 1")
    return [text for _, text in found]


def _check_schema(req: Request) -> None:
    """The schema must allow exactly what the prompt lists: a model constrained by it can
    then only cite those sentences and passages."""
    schema = req.schema
    if schema is None:
        if req.method != "json_mode":
            raise BadRequest(f"{req.method} request without a schema")
        return
    try:
        props = schema["properties"]
        point = props["points"]["items"]["properties"]
        req.cites = "sentence" if "sentence" in point else "quote"
        cite = point[req.cites]
        ids = point["passage"].get("enum", req.passage_ids)
    except (KeyError, TypeError, AttributeError):
        raise BadRequest("the schema has no points[].sentence or .quote, nor .passage") from None
    listed = (list(range(1, len(req.sentences) + 1)) or [1] if req.cites == "sentence"
              else req.sentences or ["(none)"])
    if "enum" in cite and cite["enum"] != listed:
        raise BadRequest(f"the schema allows the sentences {cite['enum']}, the prompt lists "
                         f"{listed}")
    if ids != req.passage_ids:
        raise BadRequest(f"the schema allows passages {ids}, the prompt lists {req.passage_ids}")
    if ("criteria" in props) != req.profiled:
        raise BadRequest("the schema and the prompt disagree on whether there is a profile")
    if req.profiled:
        names = props["criteria"]["items"]["properties"]["criterion"]["enum"]
        if sorted(names) != sorted(c for c, _ in req.criteria):
            raise BadRequest(f"the schema's criteria {names} are not the prompt's")


# -- writing an answer -------------------------------------------------------------------------
def usable(req: Request) -> list[int]:
    """Numbers of the sentences a careful model would cite: none that reads like an
    instruction to the tool."""
    return [i for i, s in enumerate(req.sentences, 1) if not _LOADED.search(s)]


def _passage_for(req: Request, stance: str, i: int) -> str:
    fitting = [p["id"] for p in req.passages if p["stance"] == stance]
    ids = fitting or req.passage_ids
    return ids[i % len(ids)]


def answer_for(req: Request) -> dict[str, Any]:
    """A valid v2 answer for this request: decline points (weight 3) for the sentences the
    _DECLINE rule matches, up to two keep points (weight 1) for the others, so one decline
    sentence decides; ratings (and a question and a summary, where the request asks for
    them); and with a profile, the first criterion +1 on the first usable sentence and the
    rest unknown, and each deal-breaker whose words all occur in one sentence."""
    numbers = usable(req) or [1]
    text = {i: req.sentences[i - 1] if i <= len(req.sentences) else "" for i in numbers}
    declines = [i for i in numbers if _DECLINE.search(text[i])][:3]
    keeps = [i for i in numbers if i not in declines][:2]
    fewest = ((req.schema or {}).get("properties", {}).get("points", {})).get("minItems", 1)
    if len(declines) + len(keeps) < fewest:  # as many as the schema asks for, if there are
        keeps += [i for i in range(1, len(req.sentences) + 1)
                  if i not in declines + keeps][:fewest - len(declines) - len(keeps)]
    key = req.cites
    points = [{key: req.ref(i), "stance": "decline", "weight": 3,
               "why": f"A warning sign the advice says to weigh heavily ({FINGERPRINT}).",
               "passage": _passage_for(req, "decline", k)} for k, i in enumerate(declines)]
    points += [{key: req.ref(i), "stance": "keep", "weight": 1,
                "why": f"What the notes say about this part of the job ({FINGERPRINT}).",
                "passage": _passage_for(req, "keep", k)} for k, i in enumerate(keeps)]
    answer: dict[str, Any] = {
        "points": points,
        "practice": "low",
        "leverage": "low",
        "clarity": "medium",
        "questions": ["What does a normal week look like?"],
        "summary": f"An answer from the fake test server ({FINGERPRINT}), built from "
                   f"{len(req.sentences)} numbered sentences of the notes.",
    }
    if req.profiled:
        first = numbers[0]
        answer["criteria"] = [{"criterion": c, "score": 1 if k == 0 else None,
                               key: req.ref(first) if k == 0 else None}
                              for k, (c, _) in enumerate(req.criteria)]
        hits = []
        for d, breaker in enumerate(req.deal_breakers, 1):
            words = re.findall(r"[a-z]{4,}", breaker.lower())
            for i in numbers:
                if words and all(w in text[i].lower() for w in words):
                    hits.append({"deal_breaker": d, key: req.ref(i), "resolved_by": None})
                    break
        answer["deal_breakers"] = hits
        answer["must_haves"] = []
    # only the fields the request asks for: its schema's, or those its system message names
    props = (req.schema or {}).get("properties")
    asked = set(props) if props else {k for k in answer if f'"{k}"' in req.system}
    return {k: v for k, v in answer.items() if k in asked}


def completion(req: Request, answer: dict[str, Any] | None = None, *,
               refusal: str | None = None, content: str | None = None) -> dict[str, Any]:
    """A chat.completion carrying ``answer`` the way the request asked for it (or a refusal,
    or ``content`` as it is)."""
    message: dict[str, Any] = {"role": "assistant", "content": None}
    finish = "stop"
    args = ""
    if refusal is not None:
        message["refusal"] = refusal
    elif answer is not None and req.body.get("tools"):
        choice = req.body.get("tool_choice")
        name = (choice.get("function", {}).get("name") if isinstance(choice, dict) else None) \
            or req.body["tools"][0]["function"]["name"]
        args = json.dumps(answer)
        message["tool_calls"] = [{"id": f"call_{req.n}", "type": "function",
                                  "function": {"name": name, "arguments": args}}]
        finish = "tool_calls"
    elif answer is not None:
        message["content"] = args = json.dumps(answer)
    else:
        message["content"] = args = content if content is not None else ""
    prompt_tokens = len(json.dumps(req.body.get("messages"))) // 4
    return {
        "id": f"chatcmpl-fake-{req.n}", "object": "chat.completion", "created": int(time.time()),
        "model": req.body.get("model", "?"), "system_fingerprint": FINGERPRINT,
        "choices": [{"index": 0, "finish_reason": finish, "message": message,
                     "logprobs": None}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(args) // 4,
                  "total_tokens": prompt_tokens + len(args) // 4},
    }


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 401: "invalid_api_key",
            429: "rate_limit_exceeded"}.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None},
            "system_fingerprint": FINGERPRINT}


def _status_plan(plan: str) -> tuple[int, str | None] | None:
    """(status, Retry-After) for '500', '429', '429/2', '429-retry-after'; else None."""
    if plan == "429-retry-after":
        return 429, "0"
    status, _, retry_after = plan.partition("/")
    if status.isdigit() and int(status) >= 400:
        return int(status), retry_after or None
    return None


def check_plan(plan: Plan) -> Plan:
    if callable(plan) or plan in PLANS or _status_plan(plan) is not None:
        return plan
    raise ValueError(f"unknown plan {plan!r}: use a status >= 400 (429/S for Retry-After), "
                     f"or one of {', '.join(PLANS)}")


def parse_faults(spec: str | dict[int, Plan] | None) -> dict[int, Plan]:
    """``"1:timeout,2:429/1"`` (1-based request numbers) into {1: "timeout", 2: "429/1"}."""
    if not spec:
        return {}
    if isinstance(spec, dict):
        return {int(n): check_plan(p) for n, p in spec.items()}
    faults: dict[int, Plan] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        n, _, kind = item.partition(":")
        if not n.strip().isdigit() or not kind.strip():
            raise ValueError(f"bad fault {item!r}: use N:PLAN such as 2:429/1, 3:500, 4:reset")
        faults[int(n)] = check_plan(kind.strip().lower())
    return faults


# -- the server ------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real API
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.fake.verbose:
            sys.stderr.write(f"fake-openai: {format % args}\n")

    def _send(self, status: int, payload: dict[str, Any] | bytes,
              headers: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up: nothing to answer

    def do_GET(self) -> None:
        fake = self.server.fake
        path = self.path.rstrip("/")
        if path == "/stats":
            self._send(200, fake.stats())
        elif path == "/stats/reset":  # a benchmark's next run starts at zero
            self._send(200, fake.reset_stats())
        elif path in ("/v1/models", "/models"):
            self._send(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "debrief-tests"}
                for m in fake.models]})
        else:
            self._send(404, error_body(404, f"no route GET {self.path}"))

    def do_POST(self) -> None:
        arrived = time.monotonic()
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, error_body(404, f"no route POST {self.path}"))
            return
        n = fake._arrive(arrived)
        try:
            self._serve(fake, n, raw, arrived)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # surfaced by check()
            fake.errors.append(f"request {n}: {type(exc).__name__}: {exc}")
            raise
        finally:
            fake._leave(arrived)

    def _serve(self, fake: FakeOpenAI, n: int, raw: bytes, arrived: float) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            body = None
            bad: str | None = f"the body is not JSON ({exc})"
        else:
            bad = None
        req = Request(n, headers, body if isinstance(body, dict) else {})
        if bad is None:
            try:
                req = parse_request(n, headers, body, fake.model)
            except (BadRequest, AttributeError, KeyError, TypeError) as exc:
                bad = str(exc) or type(exc).__name__
        fake._keep(req)
        plan = fake.plan_for(req, n)
        if plan == "timeout":
            fake._answered("timeout")
            fake._stop.wait(fake.hang)
            self.close_connection = True
            return
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or (fake.key is not None and auth != f"Bearer {fake.key}"):
            fake._answered(401)
            self._reply(fake, arrived, 401, error_body(401, "Incorrect API key provided"))
            return
        if bad is not None:
            fake.errors.append(f"request {n}: bad request: {bad}")
            fake._answered(400)
            self._reply(fake, arrived, 400, error_body(400, f"bad request: {bad}"))
            return
        status, payload, extra = self._build(fake, req, plan)
        if plan == "trickle":
            self._trickle(fake, payload)
            return
        if plan in ("reset", "short-body"):
            self._broken(fake, arrived, plan, payload)
            return
        if plan == "truncated":
            fake._answered("truncated")
            data = json.dumps(payload).encode()
            self._reply(fake, arrived, 200, data[: len(data) // 2])
            return
        fake._answered(status)
        self._reply(fake, arrived, status, payload, extra)

    def _reply(self, fake: FakeOpenAI, arrived: float, status: int,
               payload: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> None:
        if fake.latency:
            # the answer leaves `latency` seconds after the request arrived, however long
            # building it took: a fixed latency, as the benchmark's ideal assumes
            fake._stop.wait(max(0.0, arrived + fake.latency - time.monotonic()))
        self._send(status, payload, headers)

    def _trickle(self, fake: FakeOpenAI, payload: dict[str, Any]) -> None:
        """Every byte in time for a per-read timeout, the whole far too late for a total one."""
        fake._answered("trickle")
        data = json.dumps(payload).encode()
        self.close_connection = True
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         + f"Content-Length: {len(data)}\r\n\r\n".encode())
        self.wfile.flush()
        for i in range(len(data)):
            if fake._stop.wait(fake.drip):
                return
            try:
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
            except OSError:
                return  # the client gave up, as it should

    def _broken(self, fake: FakeOpenAI, arrived: float, plan: str,
                payload: dict[str, Any]) -> None:
        fake._answered(plan)
        if fake.latency:
            fake._stop.wait(max(0.0, arrived + fake.latency - time.monotonic()))
        data = json.dumps(payload).encode()
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(data)}\r\n\r\n".encode())
        self.close_connection = True
        if plan == "reset":
            self.wfile.write(head + data[: len(data) // 3])
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        else:
            self.wfile.write(head + data[: len(data) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    def _build(self, fake: FakeOpenAI, req: Request,
               plan: Plan) -> tuple[int, dict[str, Any], dict[str, str] | None]:
        if callable(plan):
            out = plan(req)
            if isinstance(out, Reply):
                return out.status, out.body, out.headers
            return 200, completion(req, out), None
        status = _status_plan(plan)
        if status is not None:
            code, retry_after = status
            return code, error_body(code, f"fault injected for request {req.n} ({code})"), \
                ({"Retry-After": retry_after} if retry_after else None)
        if plan == "echo-auth":
            auth = req.headers.get("authorization", "")
            return 401, error_body(401, f"invalid credentials in header Authorization: {auth}"), \
                None
        answer = answer_for(req)
        if plan in ("ok", "reset", "short-body", "truncated", "trickle"):
            return 200, completion(req, answer), None
        if plan == "no-choices":
            return 200, {**completion(req, answer), "choices": []}, None
        if plan == "raw-newlines":
            answer["points"][0]["why"] = "A reason\nover two lines."
            # strict JSON forbids a raw newline inside a string; small models write them
            text = json.dumps(answer).replace("\\n", "\n")
            return 200, completion(req, content=text), None
        if plan == "schema":
            answer["points"][0]["stance"] = "maybe"
            answer["points"][0]["weight"] = 7
            del answer["practice"]
        elif plan == "refusal":
            return 200, completion(req, refusal=REFUSAL), None
        elif plan == "empty":
            return 200, completion(req, content=""), None
        elif plan == "echo":
            return 200, completion(req, content=json.dumps(req.body.get("messages"))), None
        elif plan == "bad-citation":
            answer["points"][0]["passage"] = MADE_UP_ID
        elif plan == "cites-unretrieved":
            answer["points"][0]["passage"] = next(
                i for i in fake.corpus_ids if i not in req.passage_ids)
        elif plan == "cites-unlisted-sentence":
            answer["points"][0][req.cites] = req.ref(99)
        else:
            raise ValueError(f"unknown plan {plan!r}")
        return 200, completion(req, answer), None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    fake: FakeOpenAI


class FakeOpenAI:
    """The server, bound to 127.0.0.1 only. ``start()`` runs it in a daemon thread."""

    def __init__(self, port: int = 0, *, latency: float = 0.0,
                 faults: str | dict[int, Plan] | None = None, plans: list[Plan] | None = None,
                 choose: Callable[[Request, int], Plan] | None = None,
                 model: str | None = None, models: list[str] | None = None,
                 key: str | None = None, corpus_ids: list[str] | None = None,
                 hang: float = 30.0, drip: float = 0.5, verbose: bool = False) -> None:
        self.latency = latency
        self.drip = drip  # seconds between the bytes of a "trickle" answer
        self.faults = parse_faults(faults)
        self.plans: list[Plan] = [check_plan(p) for p in (plans or ["ok"])]
        self.choose = choose
        self.model = model  # refuse requests for any other model
        self.models = models or [model or "fake-model"]
        self.key = key  # when set, any other bearer token gets a 401
        self.corpus_ids = corpus_ids or []
        self.hang = hang
        self.verbose = verbose
        self.seen: list[Request] = []  # every chat request, parsed, in arrival order
        self.errors: list[str] = []  # malformed requests and handler errors; see check()
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests being answered at the same time
        # time.monotonic() is one clock for every process on Linux: a benchmark can place
        # these against its own timings
        self.first_arrival: float | None = None
        self.last_answer: float | None = None
        self.busy_seconds = 0.0  # summed over requests, arrival to answer
        self.statuses: dict[str, int] = {}  # "200", "429", "timeout", "reset"...
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.httpd = _Server(("127.0.0.1", port), _Handler)
        self.httpd.fake = self

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def plan_for(self, req: Request, n: int) -> Plan:
        if self.choose is not None:
            return check_plan(self.choose(req, n))
        if n in self.faults:
            return self.faults[n]
        return self.plans[min(n, len(self.plans)) - 1]

    def _arrive(self, at: float) -> int:
        with self._lock:
            if self.first_arrival is None:
                self.first_arrival = at
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.requests

    def _keep(self, req: Request) -> None:
        with self._lock:
            self.seen.append(req)
            self.seen.sort(key=lambda r: r.n)

    def _leave(self, arrived: float) -> None:
        with self._lock:
            self.in_flight -= 1
            self.last_answer = time.monotonic()
            self.busy_seconds += self.last_answer - arrived

    def _answered(self, status: int | str) -> None:
        with self._lock:
            self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self.requests, "max_in_flight": self.max_in_flight,
                    "first_arrival": self.first_arrival, "last_answer": self.last_answer,
                    "busy_seconds": round(self.busy_seconds, 6),
                    "by_status": dict(sorted(self.statuses.items())),
                    "system_fingerprint": FINGERPRINT}

    def reset_stats(self) -> dict[str, Any]:
        before = self.stats()
        with self._lock:
            self.requests = self.max_in_flight = 0
            self.first_arrival = self.last_answer = None
            self.busy_seconds = 0.0
            self.statuses = {}
            self.seen = []
        return before

    def check(self) -> None:
        """Fail when a request broke the contract or a handler raised."""
        assert not self.errors, self.errors

    def start(self) -> FakeOpenAI:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fake-openai",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes handlers sleeping out a latency or a timeout
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    ap.add_argument("--latency", type=float, default=0.0,
                    help="seconds from a request's arrival to its answer")
    ap.add_argument("--faults", default="", help="e.g. '1:429/0,2:500,3:timeout,4:reset'")
    ap.add_argument("--plans", default="ok",
                    help="comma-separated plans for calls 1, 2, ... (the last repeats)")
    ap.add_argument("--hang", type=float, default=30.0, help="seconds a timeout holds on")
    ap.add_argument("--model", default=None, help="refuse requests for any other model")
    ap.add_argument("--key", default=None, help="refuse any other bearer token (401)")
    ap.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = ap.parse_args(argv)
    fake = FakeOpenAI(args.port, latency=args.latency, faults=args.faults, model=args.model,
                      plans=[p.strip() for p in args.plans.split(",") if p.strip()],
                      key=args.key, hang=args.hang, verbose=args.verbose)

    def _bye(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _bye)
    print(f"listening on {fake.url}", flush=True)
    try:
        fake.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake._stop.set()
        fake.httpd.server_close()


if __name__ == "__main__":
    main()
