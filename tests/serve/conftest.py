"""Fixtures for the service tests: one app per module on the shipped models (256² requests,
a few sampling steps: each request takes well under a second on a CPU)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    from nar.serve import ServeConfig, create_app
    app = create_app(ServeConfig(role="all", device="cpu", max_wait_ms=5))
    with TestClient(app) as c:
        yield c
