"""A small OpenAI-compatible chat-completions server for tests and benchmarks (stdlib only).

It answers ``POST /v1/chat/completions`` the way a model would answer a debrief request: it
reads the notes between ``<<<NOTES`` and ``NOTES>>>`` and the listed passage ids
(``[growth-and-learning#1] ...``) from the prompt, and returns a ReflectionDraft that quotes
exact sentences of those notes and cites those ids, through ``tool_calls`` when the request
has ``tools`` and in ``message.content`` otherwise. Every answer carries
``"system_fingerprint": "debrief-fake-openai"`` so nobody mistakes it for a real model. A
request of the wrong shape (no model, no messages, not a debrief prompt) gets a 400.

In-process (a thread)::

    with FakeOpenAI(latency=0.2, faults="2:429/0,3:500") as fake:
        ... OPENAI_BASE_URL=fake.url ...
        fake.requests  # how many chat requests arrived

As a process (prints ``listening on http://127.0.0.1:PORT/v1``, serves until killed)::

    python tests/fake_openai.py --port 0 --latency 0.2 --faults "1:timeout,2:429/1"

Faults are ``N:KIND`` items, comma-separated, N being the 1-based request number:
``429`` (no Retry-After), ``429/S`` (``Retry-After: S``), any other status >= 400 such as
``500`` (an OpenAI-style error body), or ``timeout`` (sleep ``hang`` seconds before
answering, past the client's timeout). ``GET /stats`` returns the request counts and timings
as JSON; ``GET /stats/reset`` returns them and starts counting again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FINGERPRINT = "debrief-fake-openai"
_NOTES = re.compile(r"<<<NOTES\n(.*?)\nNOTES>>>", re.S)
_PASSAGE = re.compile(r"^\[([^\]\s]+#\d+)\] ", re.M)
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d+[.)]|#+)\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# stay clear of anything debrief's guard could read as an instruction to the tool
_LOADED = re.compile(r"\b(ignore|disregard|instruction|system|prompt|assistant|developer|"
                     r"decision|verdict|keep|decline|cite|confidence|answer|recommend|"
                     r"output|print|reveal|say)\b", re.I)
_DECLINE = re.compile(r"\b(unpaid|turn (?:it|this|them) down|withdraw|red flags?|not for me|"
                      r"pay cut|walk away|exploding)\b", re.I)
ROLES = {"system", "user", "assistant", "tool", "developer"}


@dataclass(frozen=True)
class Fault:
    status: int | None = None  # None: no error, hang instead
    retry_after: str | None = None
    hang: bool = False


def parse_faults(spec: str | dict[int, Fault] | None) -> dict[int, Fault]:
    if not spec:
        return {}
    if isinstance(spec, dict):
        return dict(spec)
    faults: dict[int, Fault] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        n, _, kind = item.partition(":")
        if not n.strip().isdigit() or not kind:
            raise ValueError(f"bad fault {item!r}: use N:429, N:429/S, N:500 or N:timeout")
        kind = kind.strip().lower()
        if kind == "timeout":
            faults[int(n)] = Fault(hang=True)
            continue
        status, _, retry_after = kind.partition("/")
        if not status.isdigit() or int(status) < 400:
            raise ValueError(f"bad fault {item!r}: the status must be a number >= 400")
        faults[int(n)] = Fault(int(status), retry_after or None)
    return faults


# -- reading a request and writing an answer ---------------------------------------------------
class BadRequest(ValueError):
    pass


def check_request(body: Any, model: str | None) -> tuple[str, list[str]]:
    """(notes, passage ids) of a well-formed debrief chat request; BadRequest otherwise."""
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
                              or not all(t.get("type") == "function" for t in tools)):
        raise BadRequest("'tools' must be a list of function tools")
    fmt = body.get("response_format")
    if fmt is not None and fmt.get("type") not in ("json_schema", "json_object"):
        raise BadRequest("response_format.type must be json_schema or json_object")
    for m in messages:
        if m["role"] == "user" and isinstance(m.get("content"), str):
            notes = _NOTES.search(m["content"])
            ids = _PASSAGE.findall(m["content"])
            if notes and ids:
                return notes.group(1), ids
    raise BadRequest("no user message with notes between <<<NOTES and NOTES>>> and "
                     "passage ids like [growth-and-learning#1]")


def quotable(notes: str) -> list[str]:
    """Sentences that occur verbatim in the notes (whitespace-normalised)."""
    out: list[str] = []
    for line in notes.splitlines():
        line = _BULLET.sub("", line).strip()
        if not line or line.startswith(("<!--", "|", ">")):
            continue
        for part in _SENTENCE_END.split(line):
            part = " ".join(part.split())
            if len(part) >= 20 and len(part.split()) >= 4 and not _LOADED.search(part):
                out.append(part)
    return out


def draft_for(notes: str, ids: list[str]) -> dict[str, Any]:
    """A ReflectionDraft that passes debrief's validation for these notes and passages."""
    sents = quotable(notes) or [" ".join(notes.split())[:60]]
    decision = "decline" if _DECLINE.search(notes) else "keep"
    h = int(hashlib.sha256(notes.encode()).hexdigest(), 16)
    confidence = round(0.6 + (h % 35) / 100, 2)
    reasons = [{"point": "What the notes say about this part of the job.", "quote": s,
                "passage_ids": [ids[i % len(ids)]], "supports": decision}
               for i, s in enumerate(sents[:2])]
    return {
        "decision": decision,
        "confidence": confidence,
        "summary": f"An answer from the fake test server ({FINGERPRINT}), built from "
                   f"{len(sents)} sentences of the notes.",
        "reasons": reasons,
        "red_flags": [],
        "practice_value": {"rating": "low", "note": "The fake server does not judge this."},
        "leverage_value": {"rating": "low", "note": "The fake server does not judge this."},
        "clarity_value": {"rating": "medium", "note": "The fake server does not judge this."},
        "practice_plan": [],
        "questions_for_next_round": ["What does a normal week look like?"],
        "next_step": {"kind": "thank_you" if decision == "keep" else "withdrawal",
                      "draft": "Thank you for your time and for the conversation."},
    }


_CRITERION = re.compile(r"^- ([a-z][a-z0-9_]*): .*; weight \d+$", re.M)
_BREAKERS = re.compile(r"^Deal-breakers: (.+)$", re.M)


def asks_for_matrix(body: dict[str, Any]) -> bool:
    """True when the request's schema has the profile's `matrix` (a profiled reflection)."""
    return '"matrix"' in json.dumps(body.get("tools") or body.get("response_format") or {})


def matrix_for(body: dict[str, Any], notes: str, ids: list[str]) -> dict[str, Any]:
    """Scores every criterion the prompt's profile lists: the first one +1 on a real quote,
    the rest unknown; a deal-breaker whose words all occur in a sentence is reported."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    sents = quotable(notes) or [" ".join(notes.split())[:60]]
    crits = _CRITERION.findall(user)
    rows = [{"criterion": c, "score": 1 if i == 0 else None,
             "quote": sents[0] if i == 0 else None,
             "passage_ids": [ids[0]] if i == 0 else []} for i, c in enumerate(crits)]
    hits = []
    m = _BREAKERS.search(user)
    for breaker in (m.group(1).split("; ") if m and m.group(1) != "(none)" else []):
        words = [w for w in re.findall(r"[a-z]{4,}", breaker.lower())]
        for sent in sents:
            if words and all(w in sent.lower() for w in words):
                hits.append({"deal_breaker": breaker, "quote": sent, "passage_ids": [ids[0]],
                             "resolved": False, "resolution_quote": None})
                break
    return {"criteria": rows, "deal_breakers": hits, "must_haves": []}


def completion(body: dict[str, Any], draft: dict[str, Any], n: int) -> dict[str, Any]:
    args = json.dumps(draft)
    message: dict[str, Any] = {"role": "assistant", "content": None}
    finish = "stop"
    if body.get("tools"):
        choice = body.get("tool_choice")
        name = (choice.get("function", {}).get("name") if isinstance(choice, dict) else None) \
            or body["tools"][0]["function"]["name"]
        message["tool_calls"] = [{"id": f"call_{n}", "type": "function",
                                  "function": {"name": name, "arguments": args}}]
        finish = "tool_calls"
    else:
        message["content"] = args
    return {
        "id": f"chatcmpl-fake-{n}", "object": "chat.completion", "created": int(time.time()),
        "model": body["model"], "system_fingerprint": FINGERPRINT,
        "choices": [{"index": 0, "finish_reason": finish, "message": message,
                     "logprobs": None}],
        "usage": {"prompt_tokens": len(json.dumps(body["messages"])) // 4,
                  "completion_tokens": len(args) // 4,
                  "total_tokens": (len(json.dumps(body["messages"])) + len(args)) // 4},
    }


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 429: "rate_limit_exceeded"}.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None},
            "system_fingerprint": FINGERPRINT}


# -- the server ------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real API
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.fake.verbose:
            sys.stderr.write(f"fake-openai: {format % args}\n")

    def _send(self, status: int, payload: dict[str, Any],
              headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout fault): nothing to answer

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/stats":
            self._send(200, self.server.fake.stats())
        elif self.path.rstrip("/") == "/stats/reset":  # a benchmark's next run starts at zero
            self._send(200, self.server.fake.reset_stats())
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
            status, body, headers = self._answer(fake, n, raw)
            if fake.latency:
                # the answer leaves `latency` seconds after the request arrived, however
                # long building it took: a fixed latency, as the benchmark's ideal assumes
                fake._stop.wait(max(0.0, arrived + fake.latency - time.monotonic()))
            self._send(status, body, headers)
        finally:
            fake._leave(arrived)

    def _answer(self, fake: FakeOpenAI, n: int,
                raw: bytes) -> tuple[int, dict[str, Any], dict[str, str] | None]:
        fault = fake.faults.get(n)
        if fault and fault.hang:
            fake._answered(n, "timeout")
            fake._stop.wait(fake.hang)
        if not self.headers.get("Authorization", "").startswith("Bearer "):
            fake._answered(n, 401)
            return 401, error_body(401, "missing bearer token"), None
        try:
            body = json.loads(raw or b"null")
            notes, ids = check_request(body, fake.model)
        except (ValueError, AttributeError) as exc:
            fake._answered(n, 400)
            return 400, error_body(400, f"bad request: {exc}"), None
        if fault and fault.status:
            fake._answered(n, fault.status)
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            return fault.status, error_body(fault.status, f"fault injected for request {n}"), headers
        if not (fault and fault.hang):
            fake._answered(n, 200)
        draft = draft_for(notes, ids)
        if asks_for_matrix(body):
            draft["matrix"] = matrix_for(body, notes, ids)
        return 200, completion(body, draft, n), None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    fake: FakeOpenAI


class FakeOpenAI:
    """The server, bound to 127.0.0.1 only. ``start()`` runs it in a daemon thread."""

    def __init__(self, port: int = 0, *, latency: float = 0.0,
                 faults: str | dict[int, Fault] | None = None, model: str | None = None,
                 hang: float = 30.0, verbose: bool = False) -> None:
        self.latency = latency
        self.faults = parse_faults(faults)
        self.model = model
        self.hang = hang
        self.verbose = verbose
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests being answered at the same time
        # time.monotonic() is one clock for every process on Linux: a benchmark can place
        # these against its own timings
        self.first_arrival: float | None = None
        self.last_answer: float | None = None
        self.busy_seconds = 0.0  # summed over requests, arrival to answer
        self.statuses: dict[str, int] = {}  # "200", "429", "timeout"...
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

    def _arrive(self, at: float) -> int:
        with self._lock:
            if self.first_arrival is None:
                self.first_arrival = at
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.requests

    def _leave(self, arrived: float) -> None:
        with self._lock:
            self.in_flight -= 1
            self.last_answer = time.monotonic()
            self.busy_seconds += self.last_answer - arrived

    def _answered(self, n: int, status: int | str) -> None:
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
        return before

    def start(self) -> FakeOpenAI:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fake-openai",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes handlers sleeping out a latency or a timeout fault
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    ap.add_argument("--latency", type=float, default=0.0, help="seconds from a request's arrival to its answer")
    ap.add_argument("--faults", default="", help="e.g. '1:429/0,2:500,3:timeout'")
    ap.add_argument("--hang", type=float, default=30.0, help="seconds a timeout fault sleeps")
    ap.add_argument("--model", default=None, help="refuse requests for any other model")
    ap.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = ap.parse_args(argv)
    fake = FakeOpenAI(args.port, latency=args.latency, faults=args.faults, model=args.model,
                      hang=args.hang, verbose=args.verbose)

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
