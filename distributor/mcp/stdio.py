"""stdin/stdout for the SDK's stdio transport on the event loop's own pipes.

The SDK's ``stdio_server()`` reads each line and writes each reply through a worker thread
(``anyio.wrap_file``): three thread hops per tool call, which cost milliseconds on a busy
machine, more than the queue operation itself. When stdin and stdout are pipes or sockets (as
agent CLIs spawn servers), this module hands ``stdio_server()`` streams that read and write them
on the event loop instead; the SDK still does the framing and the JSON-RPC. Elsewhere (a
terminal, a file) the SDK's own streams are used.

Like the SDK's, it keeps the wire to itself: it serves private duplicates of fds 0 and 1, and
points fd 0 at the null device and fd 1 at stderr while serving, so nothing printed by accident
can corrupt the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import AsyncIterator
from typing import Any


def _is_pipe(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def usable() -> bool:
    """Whether stdin and stdout are pipes or sockets (event-loop streams can serve them)."""
    return _is_pipe(0) and _is_pipe(1)


class LineReader:
    """``async for line in reader``: text lines from a pipe, as the SDK's stdin reader wants."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> LineReader:
        return self

    async def __anext__(self) -> str:
        line = await self._reader.readline()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


class LineWriter:
    """``await write(text)`` / ``await flush()`` on a pipe, as the SDK's stdout writer wants."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> None:
        self._writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self._writer.drain()


@contextlib.asynccontextmanager
async def pipe_streams() -> AsyncIterator[tuple[Any, Any]]:
    """``(stdin, stdout)`` for ``stdio_server(stdin, stdout)``, on private copies of fds 0, 1."""
    loop = asyncio.get_running_loop()
    wire_in, wire_out = os.dup(0), os.dup(1)
    saved_in, saved_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    in_file, out_file = os.fdopen(wire_in, "rb", buffering=0), os.fdopen(wire_out, "wb", 0)
    reader = asyncio.StreamReader(limit=2**24)
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), in_file
    )
    write_transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, out_file
    )
    writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
    try:
        yield LineReader(reader), LineWriter(writer)
    finally:
        read_transport.close()
        write_transport.close()
        for fd in (saved_in, saved_out):  # the pipes' descriptions are shared: blocking again
            with contextlib.suppress(OSError):
                os.set_blocking(fd, True)
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        os.close(saved_in)
        os.close(saved_out)
