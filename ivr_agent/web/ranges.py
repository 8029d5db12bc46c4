"""HTTP Range (RFC 9110 §14) for one byte range, and a response that streams an open file.

Browsers seek in <audio> with `Range: bytes=N-`: answered 206 with Content-Range. A range past
the end is 416 with `Content-Range: bytes */size`. Malformed, multi-range or non-byte Range
headers are ignored (the whole file, 200), as the RFC allows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

import anyio.to_thread
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

CHUNK: Final = 256 * 1024


class RangeNotSatisfiable(Exception):  # named after the HTTP status
    """The range starts past the end of the file (HTTP 416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte positions, inclusive, or None for the whole file."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    spec = spec.strip()
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not dash or not (first_text or last_text):
        return None
    if not all(t.isdigit() for t in (first_text, last_text) if t):
        return None
    if not first_text:  # suffix range: the last N bytes
        n = int(last_text)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - n), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # syntactically invalid: ignored
    if first >= size:
        raise RangeNotSatisfiable
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)


class OpenFileResponse(Response):
    """Streams bytes [first, last] of an already opened file descriptor, which it owns and
    closes (also when the client goes away mid-stream). Reads happen in a worker thread."""

    def __init__(
        self,
        fd: int,
        *,
        size: int,
        byte_range: tuple[int, int] | None,
        media_type: str,
        headers: Mapping[str, str],
    ) -> None:
        self.fd = fd
        if byte_range is None:
            self.first, self.last, status = 0, size - 1, 200
            extra = {}
        else:
            self.first, self.last = byte_range
            status = 206
            extra = {"Content-Range": f"bytes {self.first}-{self.last}/{size}"}
        length = max(0, self.last - self.first + 1)
        super().__init__(
            status_code=status,
            media_type=media_type,
            headers={**headers, **extra, "Content-Length": str(length), "Accept-Ranges": "bytes"},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code,
                 "headers": self.raw_headers}
            )  # fmt: skip
            if scope.get("method") == "HEAD":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            pos, left = self.first, self.last - self.first + 1
            while left > 0:
                chunk = await anyio.to_thread.run_sync(os.pread, self.fd, min(CHUNK, left), pos)
                if not chunk:
                    break  # the file shrank under us: end the body short; the client sees it
                pos += len(chunk)
                left -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
            if left > 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            os.close(self.fd)
