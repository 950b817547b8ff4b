"""The REST sender's own HTTP/1.1 handling against a raw asyncio server on 127.0.0.1: chunked
answers, `Connection: close`, the request bytes it writes, and kept-alive reuse."""

from __future__ import annotations

import asyncio

from benchbox.remote.http1 import Sender, request_bytes
from benchbox.remote.wire import Prepared

ANSWER = b'{"outputs": []}'


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list) -> None:
    seen.append("connection")
    for _ in range(50):  # bounded: a test sends a handful of requests per connection
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        body = await reader.readexactly(length)
        seen.append((head, body))
        path = head.split(b" ")[1]
        if path.startswith(b"/chunked"):
            half = len(ANSWER) // 2
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for part in (ANSWER[:half], ANSWER[half:]):
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            writer.write(b"0\r\n\r\n")
        elif path.startswith(b"/close"):
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(ANSWER), ANSWER))  # fmt: skip
            await writer.drain()
            writer.close()
            return
        else:
            writer.write(b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy")
        await writer.drain()


def run(path: str, sends: int) -> tuple[list, list]:
    async def main() -> tuple[list, list]:
        seen: list = []
        server = await asyncio.start_server(lambda r, w: _handle(r, w, seen), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        prepared = Prepared("http", f"http://127.0.0.1:{port}{path}", (b'{"a": 1}',),
                            headers=(("Authorization", "Bearer t"),), timeout_s=5.0)  # fmt: skip
        sender = Sender(prepared, 1)
        await sender.open()
        results = [await asyncio.wait_for(sender.send(i), 10) for i in range(sends)]
        await sender.close()
        server.close()
        await server.wait_closed()
        return results, seen

    return asyncio.run(main())


def test_a_chunked_answer_is_joined_and_the_connection_kept():
    results, seen = run("/chunked?x=1", 3)
    assert results == [(None, (ANSWER, None))] * 3
    assert seen.count("connection") == 1  # kept alive across the three


def test_connection_close_opens_a_fresh_connection_for_the_next_request():
    results, seen = run("/close", 2)
    assert results == [(None, (ANSWER, None))] * 2
    assert seen.count("connection") == 2


def test_a_non_200_answer_is_an_error_line_and_the_request_bytes_are_whole():
    results, seen = run("/busy?token=1", 1)
    err, answer = results[0]
    assert answer is None and "503" in err and "busy" in err
    head, body = seen[1]
    assert head.startswith(b"POST /busy?token=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Authorization: Bearer t\r\n" in head and b"Content-Type: application/json" in head
    assert body == b'{"a": 1}'


def test_binary_bodies_carry_their_header_length():
    prepared = Prepared("http", "http://h:1/v2/models/m/infer", (b"0123456789",),
                        header_lengths=(4,))  # fmt: skip
    (raw,) = request_bytes(prepared)
    assert b"Inference-Header-Content-Length: 4\r\n" in raw
    assert b"Content-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\n0123456789" in raw
