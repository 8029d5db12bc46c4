"""uvicorn inside the service's own event loop, as one task of its TaskGroup.

The socket is bound here first, so a port in use is a clear error at start-up (uvicorn would
call sys.exit) and port 0 (tests) tells which port it got. uvicorn's signal capture is off: the
service owns SIGTERM/SIGINT and stops the server itself, first, on shutdown.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Final

import uvicorn
from fastapi import FastAPI

from ivr_agent.errors import ConfigError

# In-flight responses (a download) get this long to finish once shutdown starts.
GRACEFUL_SHUTDOWN: Final = 3


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.host = host
        self.config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
            # A reverse proxy on this host may say who the client is; nobody else may.
            proxy_headers=True,
            forwarded_allow_ips="127.0.0.1,::1",
        )
        self._server = _Server(self.config)
        self._sock: socket.socket | None = None
        self.port = port

    def bind(self) -> int:
        """Listen now; returns the port. ConfigError if the address cannot be used."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            sock = socket.create_server((self.host, self.config.port), family=family)
        except OSError as err:
            raise ConfigError(
                f"web: cannot listen on {self.host}:{self.config.port}: {err.strerror}"
            ) from None
        sock.setblocking(False)
        self._sock = sock
        self.port = int(sock.getsockname()[1])
        return self.port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def serve(self) -> None:
        """Runs until stop(); closes the socket on the way out."""
        if self._sock is None:
            self.bind()
        assert self._sock is not None  # noqa: S101  # bound just above
        try:
            await self._server.serve(sockets=[self._sock])
        finally:
            self._sock.close()

    def stop(self) -> None:
        self._server.should_exit = True

    def close(self) -> None:
        """Release the socket if serve() never ran (start-up failed after bind)."""
        if self._sock is not None and not self._server.started:
            self._sock.close()
