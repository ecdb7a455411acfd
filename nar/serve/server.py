"""Running the app: `run` (blocking, for `nar serve`) and `running` (a uvicorn server on a
thread, for tests and benchmarks: binds 127.0.0.1 on a free port, stops when the block ends)."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from nar.core.errors import NarError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run(app, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    import uvicorn
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
    except OSError as e:  # e.g. the port is taken
        raise NarError(f"cannot serve on {host}:{port}: {e}") from None


@contextmanager
def running(app, host: str = "127.0.0.1", port: int | None = None, start_timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` on a background thread; yields its base URL; stops the server on exit."""
    import uvicorn
    port = port or free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="nar-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
