"""Real servers for tests that need a socket (a FHIR client library, a browser)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.applications import Starlette


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(app: Starlette, port: int) -> Iterator[None]:
    """The app on a real uvicorn server on 127.0.0.1:port, in a thread, while the block runs."""
    import uvicorn

    from yilian.kit.http_server import CoalescingHttpToolsProtocol

    server = uvicorn.Server(  # as `yilian serve` runs it
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                       http=CoalescingHttpToolsProtocol)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine = getattr(app.state, "engine", None)  # the FHIR app's; a bare test app has none
        if engine is not None:
            engine.dispose()
