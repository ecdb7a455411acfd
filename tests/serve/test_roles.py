"""Roles in separate servers: a generate role that hands PNG decoding to a decode role over
HTTP gives the same image as one all-in-one server, and loads no decoder itself."""
from __future__ import annotations

import base64
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


def test_upscale_role_doubles_a_png(tmp_path):
    """With an SR checkpoint (a tiny untrained one here) /upscale answers the 2x PNG."""
    upscale_mod = pytest.importorskip("nar.pipelines.upscale", reason="no nar.pipelines.upscale in this build")
    from dataclasses import asdict

    from fastapi.testclient import TestClient
    from PIL import Image
    from serve_helpers import b64_png

    from nar.core.checkpoint import save_checkpoint
    from nar.serve import Limits, ServeConfig, create_app
    from nar.sr.model import SRModelConfig, SRNet
    cfg = SRModelConfig(channels=4, blocks=1)
    ckpt = save_checkpoint(tmp_path / "sr.safetensors", SRNet(cfg).state_dict(), {"kind": "sr", "config": asdict(cfg)})
    app = create_app(ServeConfig(role="upscale", device="cpu", sr_ckpt=str(ckpt), limits=Limits(max_upscale_side=64)))
    with TestClient(app) as c:
        assert c.get("/models").json()["upscale"]["available"] is True
        image = np.random.default_rng(0).integers(0, 255, (24, 40, 3), dtype=np.uint8)
        r = c.post("/upscale", content=base64.b64decode(b64_png(image)), headers={"Content-Type": "image/png"})
        assert r.status_code == 200, r.text
        out = png_array(r.content)
        assert out.shape == (48, 80, 3)
        expected = np.asarray(upscale_mod.upscale(Image.fromarray(image), upscale_mod.load_sr(ckpt)))
        assert np.array_equal(out, expected)
        big = base64.b64decode(b64_png(np.zeros((80, 80, 3), np.uint8)))
        r = c.post("/upscale", content=big, headers={"Content-Type": "image/png"})
        assert r.status_code == 400 and "over this server's limit of 64" in r.json()["detail"]
        assert c.post("/upscale", content=b"", headers={"Content-Type": "image/png"}).status_code == 400
        assert c.post("/generate", json={}).status_code == 404


def test_generate_above_a_priors_native_size_is_drawn_there_and_super_resolved(tiny_models, tiny_sr):
    """A prior that learnt 32² scenes, asked for 64²: its 4x4 grid is drawn, decoded, then 2x SR'd,
    exactly as `nar sample` (Pipeline.sample) does it."""
    from fastapi.testclient import TestClient

    from nar.pipelines import Pipeline
    from nar.serve import ServeConfig, create_app
    prior = str(tiny_models["priors"]["maskgit"])
    app = create_app(ServeConfig(role="all", device="cpu", tokenizer=str(tiny_models["tokenizer"]),
                                 priors={"maskgit": prior}, sr_ckpt=str(tiny_sr), max_wait_ms=1))
    with TestClient(app) as c:
        body = {"prior": "maskgit", "size": 64, "steps": 1, "seed": 3}
        reply = c.post("/generate", json=body)
        assert reply.status_code == 200, reply.text
        js = reply.json()
        assert js["grid"] == [4, 4] and js["settings"]["size"] == 64
        png = c.post("/generate", json={**body, "format": "png"})
        assert png.status_code == 200, png.text
        image = png_array(png.content)
        assert image.shape == (64, 64, 3)
        settings = json.loads(png.headers["X-Nar-Settings"])
        assert settings["super_resolution"]["generated_size"] == [32, 32] and settings["image_size"] == [64, 64]
        pipe = Pipeline.load(tokenizer=tiny_models["tokenizer"], priors={"maskgit": prior}, device="cpu")
        expected = pipe.sample(prior="maskgit", n=1, size=64, steps=1, seed=3, sr_ckpt=tiny_sr)
        assert js["tokens"] == expected.tokens[0].tolist()
        assert np.array_equal(image, np.asarray(expected.images[0]))
