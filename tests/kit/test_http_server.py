"""The HTTP protocol `yilian serve` runs: each answer leaves in one write, and HTTP keeps
working as uvicorn's own protocol does it (keep-alive, HEAD, streaming, 100-continue, close)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from servers import free_port, serving
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from yilian.kit.http_server import HOLD_AT_MOST, CoalescingTransport


class RecordingTransport:
    """The transport below: records what reaches it."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.calls: list[str] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.calls.append("write")

    def is_closing(self) -> bool:
        self.calls.append("is_closing")
        return self.closing

    def close(self) -> None:
        self.calls.append("close")
        self.closing = True

    def abort(self) -> None:
        self.calls.append("abort")

    def get_write_buffer_size(self) -> int:
        return 0


def _coalescing(loop: asyncio.AbstractEventLoop) -> tuple[CoalescingTransport, RecordingTransport]:
    below = RecordingTransport()
    return CoalescingTransport(below, loop), below  # type: ignore[arg-type]


def test_a_head_and_body_written_in_one_step_leave_as_one_write() -> None:
    async def answer() -> list[bytes]:
        transport, below = _coalescing(asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"{}")
        assert below.writes == []  # held until something else is asked, or the loop turns
        assert transport.get_write_buffer_size() == 40
        assert transport.is_closing() is False  # what uvicorn asks once an answer is complete
        return below.writes

    assert asyncio.run(answer()) == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


def test_what_is_held_leaves_when_the_loop_turns_even_if_nothing_else_is_asked() -> None:
    async def answer() -> list[bytes]:
        transport, below = _coalescing(asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await asyncio.sleep(0)
        return below.writes

    assert asyncio.run(answer()) == [b"HTTP/1.1 100 Continue\r\n\r\n"]


def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    async def answer() -> tuple[RecordingTransport, RecordingTransport]:
        loop = asyncio.get_running_loop()
        closed, closed_below = _coalescing(loop)
        closed.write(b"last words")
        closed.close()
        aborted, aborted_below = _coalescing(loop)
        aborted.write(b"never sent")
        aborted.abort()
        await asyncio.sleep(0)
        return closed_below, aborted_below

    closed_below, aborted_below = asyncio.run(answer())
    assert closed_below.calls == ["write", "close"]
    assert closed_below.writes == [b"last words"]
    assert aborted_below.calls == ["abort"] and aborted_below.writes == []


# --- over a real socket ---------------------------------------------------------------------


async def small(request: Request) -> Response:
    return Response(b'{"resourceType":"Patient"}', media_type="application/fhir+json",
                    headers={"ETag": 'W/"1"'})


async def streamed(request: Request) -> StreamingResponse:
    async def lines() -> AsyncIterator[bytes]:
        for number in range(3):
            await asyncio.sleep(0.01)
            yield b'{"n":%d}\n' % number

    return StreamingResponse(lines(), media_type="application/fhir+ndjson")


async def echo(request: Request) -> Response:
    return Response(await request.body(), status_code=201)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    app = Starlette(routes=[Route("/small", small), Route("/stream", streamed),
                            Route("/echo", echo, methods=["POST"])])
    port = free_port()
    with serving(app, port):
        yield f"http://127.0.0.1:{port}"


def test_keep_alive_answers_one_after_another_on_one_connection(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        answers = [client.get("/small") for _ in range(5)]
        head = client.head("/small")
    assert all(a.status_code == 200 and a.json() == {"resourceType": "Patient"}
               and a.headers["etag"] == 'W/"1"' for a in answers)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(b'{"resourceType":"Patient"}'))


def test_a_streamed_answer_arrives_whole_and_in_order(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client, client.stream("GET", "/stream") as answer:
        assert answer.headers["transfer-encoding"] == "chunked"
        body = b"".join(answer.iter_bytes())
    assert body == b'{"n":0}\n{"n":1}\n{"n":2}\n'


def _raw_exchange(base_url: str, request: bytes, *, then: bytes = b"") -> bytes:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        if then:
            received = sock.recv(65536)  # the interim 100 Continue, before the body is sent
            sock.sendall(then)
        while not received.endswith(b"payload") and (chunk := sock.recv(65536)):
            received += chunk
        return received


def test_expect_100_continue_gets_its_interim_answer_before_the_body(base_url: str) -> None:
    received = _raw_exchange(
        base_url,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nExpect: 100-continue\r\n"
        b"Connection: close\r\n\r\n",
        then=b"payload",
    )
    assert received.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n")
    assert received.endswith(b"\r\n\r\npayload")


def test_connection_close_gets_the_whole_answer_then_the_end(base_url: str) -> None:
    def read_all(request: bytes) -> Any:
        host, port = base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(request)
            received = b""
            while chunk := sock.recv(65536):  # until the server closes
                received += chunk
            return received

    received = read_all(b"GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"connection: close\r\n" in received
    assert received.endswith(b'\r\n\r\n{"resourceType":"Patient"}')


def test_large_writes_are_not_held_and_held_bytes_stay_bounded() -> None:
    """A big body goes straight through after the head; small chunks written without the
    loop turning (a streamed answer that never awaits) reach the transport below every
    HOLD_AT_MOST bytes, so that its flow control can pause the application."""

    async def answer() -> tuple[list[bytes], list[bytes]]:
        loop = asyncio.get_running_loop()
        big, big_below = _coalescing(loop)
        big.write(b"head")
        big.write(b"x" * HOLD_AT_MOST)
        streamed, streamed_below = _coalescing(loop)
        chunk = b"y" * 1000
        for _ in range(200):
            streamed.write(chunk)
        per_write = HOLD_AT_MOST // len(chunk)  # chunks a write to the transport carries
        assert len(streamed_below.writes) == 200 // per_write
        assert streamed.get_write_buffer_size() == 200 % per_write * len(chunk)
        await asyncio.sleep(0)
        return big_below.writes, streamed_below.writes

    big_writes, streamed_writes = asyncio.run(answer())
    assert big_writes == [b"head", b"x" * HOLD_AT_MOST]
    assert all(len(write) <= HOLD_AT_MOST for write in streamed_writes)
    assert b"".join(streamed_writes) == b"y" * 200_000
