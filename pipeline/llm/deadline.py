"""An HTTP transport whose every request has a total deadline.

httpx's timeouts bound each connect, read and write; a server that trickles a byte every
second never trips them and can hold a request for minutes. Here every socket operation of
a request gets at most what is left of ``total`` seconds, so a request ends by its deadline
whatever the server does. Built on httpcore's public network-backend interface; httpx has
no total timeout of its own (its docs say so), and no maintained library adds one.
"""

from __future__ import annotations

import contextvars
import ssl
import time
import typing
from collections.abc import Iterable, Iterator

import httpcore
import httpx

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)
# httpcore's errors as the httpx ones the openai client understands (retries, messages)
_ERRORS: list[tuple[type[Exception], type[Exception]]] = [
    (httpcore.ConnectTimeout, httpx.ConnectTimeout), (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout), (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError), (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
]


def _budget(timeout: float | None) -> float | None:
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the request's total time ran out")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _budget(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _budget(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, _budget(timeout)))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[typing.Any] | None = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_tcp(host, port, _budget(timeout), local_address,
                                               socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[typing.Any] | None = None
                            ) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(path, _budget(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _mapped(exc: Exception) -> Exception:
    for theirs, ours in _ERRORS:
        if isinstance(exc, theirs):
            return ours(str(exc) or theirs.__name__)
    return exc


class _Body(httpx.SyncByteStream):
    """The response body, read under the same deadline as the request that asked for it."""

    def __init__(self, stream: Iterable[bytes], deadline: float, close: typing.Any) -> None:
        self._stream, self._deadline, self._close = stream, deadline, close

    def __iter__(self) -> Iterator[bytes]:
        token = _deadline.set(self._deadline)
        try:
            yield from self._stream
        except tuple(t for t, _ in _ERRORS) as exc:
            raise _mapped(exc) from None
        finally:
            _deadline.reset(token)

    def close(self) -> None:
        self._close()


class DeadlineTransport(httpx.BaseTransport):
    """Like httpx.HTTPTransport, but a request, body included, takes at most ``total`` s."""

    def __init__(self, total: float) -> None:
        self.total = total
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(),
                                             network_backend=_Backend())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + self.total
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port,
                             target=url.raw_path),
            headers=request.headers.raw, content=request.stream,
            extensions=request.extensions)
        token = _deadline.set(deadline)
        try:
            response = self._pool.handle_request(core)
        except tuple(t for t, _ in _ERRORS) as exc:
            raise _mapped(exc) from None
        finally:
            _deadline.reset(token)
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_Body(typing.cast(Iterable[bytes], response.stream),
                                           deadline, response.close),
                              extensions=response.extensions)

    def close(self) -> None:
        self._pool.close()
