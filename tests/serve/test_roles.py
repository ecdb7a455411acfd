"""Roles in separate servers: a generate role that hands PNG decoding to a decode role over
HTTP gives the same image as one all-in-one server, and loads no decoder itself."""
from __future__ import annotations

import json

import numpy as np
import pytest
from serve_helpers import png_array

REQ = {"prior": "sundae", "size": 256, "steps": 2, "seed": 21, "format": "png"}


def test_generate_role_decodes_through_the_decode_role(client):
    import httpx
    from fastapi.testclient import TestClient

    from nar.serve import ServeConfig, create_app
    from nar.serve.server import running
    decode_app = create_app(ServeConfig(role="decode", device="cpu"))
    with running(decode_app) as decode_url:
        gen_app = create_app(ServeConfig(role="generate", device="cpu", decode_url=decode_url))
        with TestClient(gen_app) as gen:
            r = gen.post("/generate", json=REQ)
            assert r.status_code == 200, r.text
            timings = json.loads(r.headers["x-nar-settings"])["timings_ms"]
            assert "decode_remote" in timings and "decode" not in timings
            assert gen.get("/health").json()["loaded"] == ["sundae"]      # no tokenizer weights here
            assert gen.post("/decode", json={"tokens": [[1]]}).status_code == 404
        assert httpx.get(decode_url + "/health").json()["queue"]["requests_run"] == 1
    together = client.post("/generate", json=REQ)
    assert np.array_equal(png_array(r.content), png_array(together.content))


def test_generate_role_reports_an_unreachable_decode_service():
    from fastapi.testclient import TestClient

    from nar.serve import ServeConfig, create_app
    from nar.serve.server import free_port
    app = create_app(ServeConfig(role="generate", device="cpu", decode_url=f"http://127.0.0.1:{free_port()}"))
    with TestClient(app) as c:
        r = c.post("/generate", json=REQ)
        assert r.status_code == 502 and "unreachable" in r.json()["detail"]
        assert c.post("/generate", json={**REQ, "format": "json"}).status_code == 200


def test_unknown_role_is_refused():
    from nar.core.errors import NarError
    from nar.serve import ServeConfig, create_app
    with pytest.raises(NarError, match="unknown role"):
        create_app(ServeConfig(role="everything"))
