"""The HTTP API on the shipped models: same seed as the CLI, PNG/JSON answers, decode role
without an encoder, inpainting, and one-line 4xx answers that leave the server serving."""
from __future__ import annotations

import base64
import json
import os

import numpy as np
import pytest
import torch

from serve_helpers import b64_png, png_array
from nar.sampling import INPAINT_OPTIONS, INPAINT_TEMPERATURE

REQ = {"prior": "sundae", "size": 256, "steps": 2}


def test_generate_same_seed_same_image_as_cli(client, tmp_path):
    from typer.testing import CliRunner

    from nar.cli import app as cli_app
    r = CliRunner().invoke(cli_app, ["sample", "--prior", "sundae", "--n", "1", "--size", "256", "--steps", "2",
                                     "--seed", "5", "--device", "cpu", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    cli_png = next(p for p in sorted(tmp_path.glob("*.png")) if "grid" not in p.name)
    via_cli = png_array(cli_png.read_bytes())

    r = client.post("/generate", json={**REQ, "seed": 5, "format": "png"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert np.array_equal(png_array(r.content), via_cli)
    settings = json.loads(r.headers["x-nar-settings"])
    assert settings["seed"] == 5 and settings["n"] == 1 and settings["grid"] == [16, 16]
    assert settings["cli"].startswith("nar sample --prior sundae --seed 5 --n 1")
    assert {"queue", "sample", "decode"} <= set(settings["timings_ms"])
    assert "sample;dur=" in r.headers["server-timing"]


def test_generate_samples_with_the_priors_own_defaults_unless_told(client):
    """A request without temperature or top_p draws with the prior's shipped defaults (ar: 1.0 and
    0.98), records them, and gives the tokens an explicit request with those values gives."""
    req = {"prior": "ar", "size": 256, "seed": 3}
    default = client.post("/generate", json=req).json()
    assert default["settings"]["temperature"] == 1.0 and default["settings"]["top_p"] == 0.98
    assert "--temperature" not in default["settings"]["cli"]
    explicit = client.post("/generate", json={**req, "temperature": 1.0, "top_p": 0.98}).json()
    assert default["tokens"] == explicit["tokens"]
    hot = client.post("/generate", json={**req, "temperature": 1.1}).json()
    assert hot["settings"]["temperature"] == 1.1 and hot["tokens"] != default["tokens"]


def test_generate_json_tokens_and_accept_png(client):
    r = client.post("/generate", json={**REQ, "seed": 9})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    tokens = torch.tensor(body["tokens"])
    assert tokens.shape == (16, 16) and body["grid"] == [16, 16] and body["settings"]["seed"] == 9
    # the same request asking for a PNG by header gives the decoded tokens
    r2 = client.post("/generate", json={**REQ, "seed": 9}, headers={"Accept": "image/png"})
    assert r2.headers["content-type"] == "image/png"
    r3 = client.post("/decode", json={"tokens": body["tokens"]})
    assert r3.status_code == 200 and r3.headers["content-type"] == "image/png"
    assert np.array_equal(png_array(r2.content), png_array(r3.content))


def test_decode_role_never_loads_the_encoder(monkeypatch):
    from fastapi.testclient import TestClient

    import nar.pipelines.pipeline as pipeline_mod
    from nar.serve import ServeConfig, create_app
    calls = []
    real = pipeline_mod.load_tokenizer

    def spy(path, decode_only=False, device="cpu"):
        calls.append(decode_only)
        return real(path, decode_only=decode_only, device=device)

    monkeypatch.setattr(pipeline_mod, "load_tokenizer", spy)
    app = create_app(ServeConfig(role="decode", device="cpu"))
    with TestClient(app) as c:
        r = c.post("/decode", json={"tokens": [[1, 2, 3, 4]] * 4})
        assert r.status_code == 200 and png_array(r.content).shape == (64, 64, 3)
        assert c.post("/generate", json=REQ).status_code == 404
        assert "role 'decode'" in c.post("/inpaint", json={}).json()["detail"]
        assert c.get("/health").json()["loaded"] == ["tokenizer (decoder only)"]
    tok = app.state.engine.pipeline.tokenizer
    assert calls == [True] and tok.decode_only
    assert not any(name.startswith("encoder") for name, _ in tok.named_modules())


def test_inpaint_image_keeps_unmasked_pixels(client):
    r = client.post("/generate", json={**REQ, "seed": 3, "format": "png"})
    original = png_array(r.content)
    mask = np.zeros(original.shape[:2], dtype=np.uint8)
    mask[64:160, 96:200] = 255
    r = client.post("/inpaint", json={"prior": "sundae", "steps": 2, "seed": 1, "image": b64_png(original),
                                      "mask": "data:image/png;base64," + b64_png(mask)})
    assert r.status_code == 200, r.text
    out = png_array(r.content)
    changed = (out != original).any(axis=2)
    assert not changed[mask == 0].any()
    assert changed[mask > 0].mean() > 0.3
    settings = json.loads(r.headers["x-nar-settings"])
    assert settings["tokens_regenerated"] > 0 and "encode" in settings["timings_ms"]


def test_inpaint_tokens_keeps_unmasked_cells(client):
    tokens = torch.tensor(client.post("/generate", json={**REQ, "seed": 4}).json()["tokens"])
    cells = torch.zeros_like(tokens)
    cells[4:10, 2:8] = 1
    r = client.post("/inpaint", json={"prior": "sundae", "steps": 2, "seed": 2, "tokens": tokens.tolist(),
                                      "cells": cells.tolist(), "format": "json"})
    assert r.status_code == 200, r.text
    new = torch.tensor(r.json()["tokens"])
    assert torch.equal(new[cells == 0], tokens[cells == 0])
    assert (new[cells == 1] != tokens[cells == 1]).any()
    r = client.post("/inpaint", json={"prior": "sundae", "steps": 2, "tokens": tokens.tolist(), "cells": cells.tolist()})
    assert r.headers["content-type"] == "image/png" and png_array(r.content).shape == (256, 256, 3)
    # a maskgit fill of cells refines as Pipeline.inpaint's does (nar.sampling.INPAINT_OPTIONS)
    r = client.post("/inpaint", json={"prior": "maskgit", "steps": 2, "seed": 2, "tokens": tokens.tolist(),
                                      "cells": cells.tolist(), "format": "json"})
    assert r.status_code == 200, r.text
    assert torch.equal(torch.tensor(r.json()["tokens"])[cells == 0], tokens[cells == 0])
    settings = r.json()["settings"]
    assert settings["options"]["refine_rounds"] > 0 and settings["steps_run"] > 2


def test_models_and_health(client):
    m = client.get("/models").json()
    names = [p["name"] for p in m["priors"]]
    assert {"ar", "maskgit", "sundae"} <= set(names)
    sundae = m["priors"][names.index("sundae")]
    assert "lake" in sundae["class_names"] and m["tokenizer"]["factor"] == 16
    assert m["defaults"]["inpaint_temperature"] == INPAINT_TEMPERATURE   # the web UI's fill temperature
    assert m["defaults"]["inpaint_prior"] == "maskgit"
    assert m["defaults"]["inpaint_options"] == INPAINT_OPTIONS   # e.g. maskgit's refinement rounds
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["role"] == "all" and h["queue"]["max_queue"] == 64
    assert "/generate" in client.get("/openapi.json").json()["paths"]


BAD = [  # (method, path, kwargs, status, words in the one-line reason)
    ("post", "/generate", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422, "malformed JSON"),
    ("post", "/generate", {"json": {"prior": "sundae", "colour": "red"}}, 422, "colour: unknown field"),
    ("post", "/generate", {"json": {"prior": "sundae", "steps": 0}}, 422, "steps"),
    ("post", "/generate", {"json": {"prior": "nope"}}, 404, "unknown prior 'nope'"),
    ("post", "/generate", {"json": {"prior": "sundae", "size": 4096}}, 400, "over this server's limit"),
    ("post", "/generate", {"json": {"prior": "sundae", "size": 250}}, 400, "not a multiple"),
    ("post", "/generate", {"json": {"prior": "sundae", "size": 256, "steps": 2, "class": "moon"}}, 400, "unknown class 'moon'"),
    ("post", "/decode", {"json": {"tokens": [[1, 2], [3, 100000]]}}, 400, "token id 100000 is out of range"),
    ("post", "/decode", {"json": {"tokens": [[1, 2], [3]]}}, 400, "rows of equal length"),
    ("post", "/inpaint", {"json": {"image": b64_png(np.zeros((64, 64, 3), np.uint8)),
                                   "mask": b64_png(np.full((32, 32), 255, np.uint8))}}, 400, "the mask is 32x32"),
    ("post", "/inpaint", {"json": {"image": "%%%", "mask": "%%%"}}, 400, "not valid base64"),
    ("post", "/inpaint", {"json": {"image": base64.b64encode(b"hello").decode(), "mask": "aGVsbG8="}}, 400, "not a PNG"),
    ("post", "/inpaint", {"json": {"prior": "sundae"}}, 400, "give image + mask"),
    ("post", "/inpaint", {"content": b"x" * (17 * 2**20), "headers": {"Content-Type": "application/json"}}, 413, "over this server's limit"),
    ("get", "/nothing-here", {}, 404, "not served here"),
]


@pytest.mark.parametrize("method,path,kwargs,status,words", BAD, ids=[f"{b[1]}-{b[3]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_answers_one_line_4xx(client, method, path, kwargs, status, words):
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and words in detail


def test_server_keeps_serving_and_writes_nothing(client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _, path, kwargs, _, _ in BAD[:6]:
        client.post(path, **kwargs)
    r = client.post("/generate", json={**REQ, "seed": 1, "format": "png"})
    assert r.status_code == 200
    assert os.listdir(tmp_path) == []


def test_out_of_memory_is_507_and_the_server_recovers(client, monkeypatch):
    engine = client.app.state.engine
    real = engine._generate
    calls = []

    def once(*args):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("simulated")
        return real(*args)

    monkeypatch.setattr(engine, "_generate", once)
    r = client.post("/generate", json={**REQ, "seed": 1})
    assert r.status_code == 507 and "out of memory" in r.json()["detail"]
    assert client.post("/generate", json={**REQ, "seed": 1}).status_code == 200


def test_upscale_answers_501_until_there_is_a_model(client):
    engine = client.app.state.engine
    ok, why = engine.upscale_available()
    r = client.post("/upscale", content=base64.b64decode(b64_png(np.zeros((32, 32, 3), np.uint8))),
                    headers={"Content-Type": "image/png"})
    if not ok:
        assert r.status_code == 501 and "super-resolution" in r.json()["detail"]
    else:
        assert r.status_code == 200 and png_array(r.content).shape == (64, 64, 3)
