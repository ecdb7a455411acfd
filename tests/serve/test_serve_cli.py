"""`nar serve` as users start it: a real process on 127.0.0.1 (decode role: quick to start),
answering /health and /decode, stopped by the test; bad options are NarErrors (one line, exit 2)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def test_nar_serve_process_answers_and_stops():
    import httpx

    from nar.serve.server import free_port
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nar.cli", "serve", "--role", "decode", "--port", str(port),
                             "--device", "cpu", "--log-level", "warning"], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "nar serve did not come up"
            time.sleep(0.2)
        assert httpx.get(url + "/health").json()["role"] == "decode"
        r = httpx.post(url + "/decode", json={"tokens": [[0, 1], [2, 3]]}, timeout=60)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    finally:
        proc.terminate()
        proc.wait(30)


def test_nar_serve_bad_options_are_user_errors():
    from typer.testing import CliRunner

    from nar.cli import app
    from nar.core.errors import NarError
    for args, words in ((["--role", "everything"], "--role must be one of"), (["--ckpt", "ar"], "NAME=PATH"),
                        (["--port", "0"], "--port must be")):
        r = CliRunner().invoke(app, ["serve", *args])
        assert isinstance(r.exception, NarError) and words in str(r.exception)   # main() prints it, exit 2
