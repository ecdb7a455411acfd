"""The FastAPI app behind `nar serve`: JSON/PNG endpoints per role, the batching queue, the page.

    from nar.serve import ServeConfig, create_app
    app = create_app(ServeConfig(role="all", max_batch=8, max_wait_ms=10, max_queue=64))

Roles: ``all`` (everything in one process), ``generate`` (prior -> tokens; PNGs are decoded
by the service at ``decode_url`` when one is given, else locally; also /inpaint and the
page), ``decode`` (tokens -> PNG with the decoder weights only: the encoder is never built),
``upscale`` (PNG -> 2x PNG). Every role answers GET /health and GET /models; OpenAPI docs at
/docs, the schema at /openapi.json. Nothing a request sends is written to disk.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import io
from contextlib import asynccontextmanager
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from fastapi import FastAPI, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from nar.core.errors import NarError
from nar.priors.base import default_grid
from nar.sampling import INPAINT_OPTIONS, INPAINT_PRIOR, INPAINT_TEMPERATURE
from nar.serve.batching import BatchQueue, QueueFull
from nar.serve.engine import (Engine, GenerateJob, GenerateKey, InpaintJob, Limits, NotAvailable, NotFound,
                              Result, memory_error_types)

STATIC = Path(__file__).resolve().parent / "static"
ROLES = ("all", "generate", "decode", "upscale")


@dataclass
class ServeConfig:
    role: str = "all"
    device: str = "cpu"
    tokenizer: str | None = None                 # checkpoint (default: shipped / the priors')
    priors: dict[str, str] = field(default_factory=dict)   # name -> checkpoint (default: shipped)
    sr_ckpt: str | None = None
    decode_url: str | None = None                # generate role: where PNGs are decoded
    upscale_url: str | None = None               # generate role: where /upscale is forwarded
    max_batch: int = 8                           # requests per batched model call
    max_wait_ms: float = 10.0                    # how long the first request waits for company
    max_queue: int = 64                          # waiting requests before 503
    limits: Limits = field(default_factory=Limits)
    preload: tuple[str, ...] = ()                # priors to load at start-up


# ---- request bodies ------------------------------------------------------------------------------
class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    prior: str = Field("sundae", description="ar | maskgit | sundae (GET /models lists this server's)")
    class_name: str | None = Field(None, alias="class", description="Scene label, e.g. lake (conditional models)")
    cfg: float = Field(1.0, ge=0, le=50, description="Classifier-free guidance scale (1 = none)")
    steps: int | None = Field(None, ge=1, description="Sampling steps (default: the prior's; AR ignores it)")
    temperature: float | None = Field(None, ge=0, le=10, description=">= 0; 0 = greedy; default: the prior's own, else 1")
    top_k: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = Field(None, ge=0, lt=2**63, description=(
        "Same seed -> same image as `nar sample --seed S --n 1`. Omitted: the server picks one, and "
        "requests without a seed are batched together (the answer says how to reproduce them)."))
    size: int | None = Field(None, ge=1, description="Image side in pixels (default: the prior's training size)")
    grid: list[int] | None = Field(None, min_length=2, max_length=2, description="Token grid [h, w] instead of size")
    format: Literal["json", "png"] | None = Field(None, description="json (tokens + settings) or png; "
                                                  "default json unless Accept: image/png")


class DecodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokens: list[list[int]] = Field(..., min_length=1, description="Token grid as rows of ids")


class InpaintRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    prior: str = INPAINT_PRIOR
    image: str | None = Field(None, description="PNG/JPEG as base64 (a data: URL is fine)")
    mask: str | None = Field(None, description="PNG of the image's size as base64: WHITE = regenerate")
    tokens: list[list[int]] | None = Field(None, description="Token grid as rows (instead of image)")
    cells: list[list[int]] | None = Field(None, description="Cell mask of the grid's shape: 1 = regenerate")
    seed: int = Field(0, ge=0, lt=2**63)
    steps: int | None = Field(None, ge=1)
    temperature: float = Field(INPAINT_TEMPERATURE, ge=0, le=10,
                               description="inpainting samples cooler than /generate: the fill must agree with its surroundings")
    class_name: str | None = Field(None, alias="class")
    cfg: float = Field(1.0, ge=0, le=50)
    feather: int = Field(0, ge=0, le=64, description="Mix original pixels back in over this many pixels inside the mask (image mode; default 0: nothing of the original under the mask survives)")
    format: Literal["json", "png"] | None = Field(None, description="png (default) or json (tokens + settings)")


# ---- helpers -------------------------------------------------------------------------------------
class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes (413) before anything reads them."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, int(limit)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            response = JSONResponse({"detail": f"request body of {int(length)} bytes is over this server's "
                                               f"limit of {self.limit} bytes"}, status_code=413)
            return await response(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(f"request body is over this server's limit of {self.limit} bytes")
            return message

        return await self.app(scope, limited, send)


def png_bytes(image: np.ndarray, settings: dict | None = None) -> bytes:
    from PIL.PngImagePlugin import PngInfo
    info = PngInfo()
    if settings:
        info.add_text("nar", json.dumps(settings))
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", pnginfo=info, compress_level=1)
    return buf.getvalue()


def read_image(data: bytes, what: str, max_side: int) -> Image.Image:
    """Bytes -> PIL image, refusing anything that is not an image or is too large (checked from
    the header, before the pixels are decoded)."""
    try:
        img = Image.open(io.BytesIO(data))
    except Exception:
        raise NarError(f"{what} is not a PNG or JPEG image") from None
    if max(img.size) > max_side:
        raise NarError(f"{what} is {img.size[0]}x{img.size[1]}, over this server's limit of {max_side} pixels a side")
    try:
        img.load()
    except Exception:
        raise NarError(f"{what} could not be decoded (truncated or corrupt)") from None
    return img


def b64_image(text: str, what: str, max_side: int) -> Image.Image:
    if text.startswith("data:"):
        text = text.split(",", 1)[-1]
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NarError(f"{what} is not valid base64") from None
    return read_image(data, what, max_side)


def token_grid(rows: list[list[int]], what: str = "tokens") -> torch.Tensor:
    if not rows or any(len(r) != len(rows[0]) for r in rows) or not rows[0]:
        raise NarError(f"{what} must be a non-empty grid: rows of equal length")
    return torch.tensor(rows, dtype=torch.long)


def server_timing(timings: dict[str, float]) -> str:
    return ", ".join(f"{k};dur={v * 1000:.1f}" for k, v in timings.items())


def one_line(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:4]:
        loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "header")]
        field_ = ".".join(loc) or "body"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        elif err.get("type") == "json_invalid":
            field_, msg = "body", f"malformed JSON ({(err.get('ctx') or {}).get('error', 'cannot parse')})"
        parts.append(f"{field_}: {msg}")
    return "; ".join(parts) or "invalid request"


def _post(url: str, body: bytes, content_type: str, timeout: float = 120.0) -> tuple[bytes, dict]:
    """POST to another role's service; its 4xx/5xx come back as the same status."""
    req = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        try:
            detail = json.loads(e.read()).get("detail")
        except Exception:
            detail = None
        raise RemoteError(e.code, f"{url} answered {e.code}: {detail or e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise RemoteError(502, f"{url} is unreachable: {getattr(e, 'reason', e)}") from None


class RemoteError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# ---- the app -----------------------------------------------------------------------------------
def create_app(config: ServeConfig | None = None, engine: Engine | None = None) -> FastAPI:
    cfg = config or ServeConfig()
    if cfg.role not in ROLES:
        raise NarError(f"unknown role {cfg.role!r}; pick one of {', '.join(ROLES)}")
    if cfg.max_batch < 1 or cfg.max_queue < 1 or cfg.max_wait_ms < 0:
        raise NarError("max batch and queue sizes must be >= 1 and the batching wait >= 0 ms")
    engine = engine or Engine(cfg.role, tokenizer=cfg.tokenizer, priors=cfg.priors or None, device=cfg.device,
                              limits=cfg.limits, sr_ckpt=cfg.sr_ckpt)
    queue = BatchQueue(engine.run_batch, max_batch=cfg.max_batch, max_wait_ms=cfg.max_wait_ms,
                       max_queue=cfg.max_queue)
    if cfg.preload:
        queue.submit(("warmup",), list(cfg.preload))

    @asynccontextmanager
    async def lifespan(app):
        yield
        queue.stop()

    app = FastAPI(title="nar serve", lifespan=lifespan,
                  description=f"nar generation services (role: {cfg.role}). Errors answer "
                              "{\"detail\": \"one line\"} with a 4xx/5xx status.")
    app.state.engine, app.state.queue, app.state.config = engine, queue, cfg
    app.add_middleware(BodyLimit, limit=cfg.limits.max_upload_bytes)
    oom = memory_error_types()
    serves = {"all": ["/generate", "/decode", "/inpaint", "/upscale", "/"],
              "generate": ["/generate", "/inpaint", "/"] + (["/upscale"] if cfg.upscale_url else []),
              "decode": ["/decode"], "upscale": ["/upscale"]}[cfg.role]
    paths = serves + ["/models", "/health", "/docs"]

    # ---- errors: one line each, the server keeps serving ------------------------------------
    def err(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"detail": message}, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request, exc):
        return err(422, one_line(exc))

    @app.exception_handler(NarError)
    async def _nar(request, exc):
        status = 404 if isinstance(exc, NotFound) else 501 if isinstance(exc, NotAvailable) else 400
        status = int(getattr(exc, "http_status", None) or status)   # nar.core.memory: 413 / 507
        return err(status, str(exc))

    @app.exception_handler(QueueFull)
    async def _full(request, exc):
        return err(503, str(exc), {"Retry-After": "1"})

    @app.exception_handler(BodyTooLarge)
    async def _large(request, exc):
        return err(413, str(exc))

    @app.exception_handler(RemoteError)
    async def _remote(request, exc):
        return err(exc.status, str(exc))

    for t in oom:
        @app.exception_handler(t)
        async def _oom(request, exc):
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            return err(507, f"out of memory on {engine.device}: try a smaller size or fewer steps "
                            f"({type(exc).__name__})")

    @app.exception_handler(404)
    async def _not_found(request, exc):
        if getattr(exc, "detail", None) not in (None, "Not Found"):
            return err(404, exc.detail)
        return err(404, f"{request.url.path} is not served here: this server runs role {cfg.role!r} "
                        f"({', '.join(paths)})")

    async def run(key, job) -> tuple[Result, Any]:
        return await asyncio.wrap_future(queue.submit(key, job))

    def png_response(result: Result, extra: dict | None = None) -> Response:
        timings = {**result.timings, **(extra or {})}
        settings = {**result.settings, "timings_ms": {k: round(v * 1000, 1) for k, v in timings.items()}}
        return Response(png_bytes(result.image, result.settings), media_type="image/png",
                        headers={"X-Nar-Settings": json.dumps(settings), "Server-Timing": server_timing(timings)})

    # ---- facts --------------------------------------------------------------------------------
    @app.get("/health", summary="Liveness, role, queue and loaded models")
    def health():
        return {"status": "ok", "role": cfg.role, "device": engine.device,
                "queue": {"waiting": queue.waiting, "max_queue": cfg.max_queue, "busy": queue.busy,
                          "max_batch": cfg.max_batch, "max_wait_ms": cfg.max_wait_ms,
                          "batches_run": queue.batches_run, "requests_run": queue.requests_run,
                          "largest_batch": queue.largest_batch},
                "loaded": engine.loaded()}

    @app.get("/models", summary="Priors, tokenizer and super-resolution this server offers")
    def models():
        priors = []
        factor = engine.factor if engine.pipeline is not None else None
        for name in engine.priors:
            meta = engine.prior_meta(name)
            grid = list(meta.get("train_grid") or [])
            data_grid = list(default_grid(meta) or [])   # a window-trained prior samples its data's grid
            prior_cfg = meta.get("config") or {}
            priors.append({"name": name, "checkpoint": engine.priors[name], "train_grid": grid,
                           "data_grid": data_grid,
                           "train_size": data_grid[0] * factor if data_grid and factor else None,
                           "class_names": meta.get("class_names") or [],
                           "default_steps": prior_cfg.get("steps"), "step": meta.get("step"),
                           "uses_steps": name != "ar"})
        tok = engine.tokenizer_meta() if engine.pipeline is not None else {}
        up_ok, up_why = engine.upscale_available() if cfg.role in ("all", "upscale") else (bool(cfg.upscale_url), "")
        return {"role": cfg.role, "priors": priors,
                "tokenizer": ({"checkpoint": str(engine.pipeline.tokenizer_path), "factor": factor,
                               "codebook_size": (tok.get("config") or {}).get("codebook_size")}
                              if engine.pipeline is not None else None),
                "upscale": {"available": up_ok, "reason": up_why or None},
                "defaults": {"inpaint_temperature": INPAINT_TEMPERATURE, "inpaint_prior": INPAINT_PRIOR,
                             "inpaint_options": INPAINT_OPTIONS},   # per prior; a request's options win
                "limits": {"max_size": cfg.limits.max_size, "max_steps": cfg.limits.max_steps,
                           "max_upload_bytes": cfg.limits.max_upload_bytes},
                "decode_url": cfg.decode_url, "upscale_url": cfg.upscale_url}

    # ---- generate -----------------------------------------------------------------------------
    if "/generate" in serves:
        @app.post("/generate", summary="Sample one image's tokens (JSON) or the image (PNG)",
                  responses={200: {"content": {"application/json": {}, "image/png": {}},
                                   "description": "JSON {tokens, grid, settings, timings_ms}, or a PNG "
                                                  "(settings in the X-Nar-Settings header and PNG text)"}})
        async def generate(req: GenerateRequest, accept: str | None = Header(None)):
            want_png = req.format == "png" or (req.format is None and "image/png" in (accept or ""))
            grid = engine.check_generate(req.prior, req.size, req.grid, req.steps)
            remote = want_png and bool(cfg.decode_url)
            key = ("generate", GenerateKey(prior=req.prior, grid=grid, size=req.size, steps=req.steps,
                                           temperature=req.temperature, top_k=req.top_k, top_p=req.top_p,
                                           class_name=req.class_name, cfg=req.cfg, decode=want_png and not remote))
            result, _ = await run(key, GenerateJob(seed=req.seed))
            if not want_png:
                return {"tokens": result.tokens.tolist(), "grid": list(grid), "settings": result.settings,
                        "timings_ms": {k: round(v * 1000, 1) for k, v in result.timings.items()}}
            if remote:
                t0 = time.perf_counter()
                body = json.dumps({"tokens": result.tokens.tolist()}).encode()
                data, _ = await run_in_threadpool(_post, cfg.decode_url.rstrip("/") + "/decode", body,
                                                  "application/json")
                result.image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
                result.timings["decode_remote"] = time.perf_counter() - t0
                if req.size is not None and req.size > result.image.shape[0]:   # drawn below its size
                    await run_in_threadpool(engine.super_resolve, result, req.size)
            return await run_in_threadpool(png_response, result)

    # ---- decode -------------------------------------------------------------------------------
    if "/decode" in serves:
        @app.post("/decode", summary="Token grid -> PNG (decoder weights only)",
                  responses={200: {"content": {"image/png": {}}}}, response_class=Response)
        async def decode(req: DecodeRequest):
            tokens = engine.check_tokens(token_grid(req.tokens))
            result, _ = await run(("decode", tuple(tokens.shape)), tokens)
            return await run_in_threadpool(png_response, result)

    # ---- inpaint ------------------------------------------------------------------------------
    if "/inpaint" in serves:
        @app.post("/inpaint", summary="Regenerate the masked part: image + mask, or token grid + cell mask",
                  responses={200: {"content": {"image/png": {}, "application/json": {}}}})
        async def inpaint(req: InpaintRequest):
            if req.prior not in engine.priors:
                raise NotFound(f"unknown prior {req.prior!r}; this server has: {', '.join(engine.priors)}")
            if req.steps is not None and req.steps > cfg.limits.max_steps:
                raise NarError(f"steps {req.steps} is over this server's limit of {cfg.limits.max_steps}")
            job = InpaintJob(prior=req.prior, seed=req.seed, steps=req.steps, temperature=req.temperature,
                             class_name=req.class_name, cfg=req.cfg, feather=req.feather,
                             decode=req.format != "json")
            if req.image is not None or req.mask is not None:
                if req.image is None or req.mask is None or req.tokens is not None or req.cells is not None:
                    raise NarError("give image + mask, or tokens + cells (not a mix)")
                max_side = cfg.limits.max_size
                image = await run_in_threadpool(b64_image, req.image, "image", max_side)
                mask = await run_in_threadpool(b64_image, req.mask, "mask", max_side)
                if mask.size != image.size:
                    raise NarError(f"the mask is {mask.size[0]}x{mask.size[1]}, the image is "
                                   f"{image.size[0]}x{image.size[1]}")
                job.image = np.asarray(image.convert("RGB"))
                job.mask = np.asarray(mask.convert("L")) >= 128
                if not job.mask.any():
                    raise NarError("the mask is empty: nothing to regenerate (white = regenerate)")
            elif req.tokens is not None and req.cells is not None:
                job.tokens = engine.check_tokens(token_grid(req.tokens))
                cells = token_grid(req.cells, "cells")
                if cells.shape != job.tokens.shape:
                    raise NarError(f"cells is {cells.shape[0]}x{cells.shape[1]}, tokens is "
                                   f"{job.tokens.shape[0]}x{job.tokens.shape[1]}")
                job.cells = cells != 0
                if not job.cells.any():
                    raise NarError("the cell mask is empty: nothing to regenerate (1 = regenerate)")
            else:
                raise NarError("give image + mask (base64 PNGs), or tokens + cells (grids of rows)")
            result, _ = await run(("inpaint", id(job)), job)
            if req.format == "json":
                return {"tokens": result.tokens.tolist(), "settings": result.settings,
                        "timings_ms": {k: round(v * 1000, 1) for k, v in result.timings.items()}}
            return await run_in_threadpool(png_response, result)

    # ---- upscale ------------------------------------------------------------------------------
    if "/upscale" in serves:
        @app.post("/upscale", summary="PNG -> 2x PNG (super-resolution)", response_class=Response,
                  responses={200: {"content": {"image/png": {}}}, 501: {"description": "no SR model yet"}},
                  openapi_extra={"requestBody": {"required": True, "content": {"image/png": {}}}})
        async def upscale(request: Request):
            data = await request.body()
            if cfg.role == "generate":
                out, headers = await run_in_threadpool(_post, cfg.upscale_url.rstrip("/") + "/upscale", data,
                                                       "image/png")
                keep = {k: v for k, v in headers.items() if k.lower() in ("x-nar-settings", "server-timing")}
                return Response(out, media_type="image/png", headers=keep)
            ok, why = engine.upscale_available()
            if not ok:
                raise NotAvailable(why)
            if not data:
                raise NarError("send a PNG as the request body (Content-Type: image/png)")
            image = await run_in_threadpool(read_image, data, "the upload", cfg.limits.max_upscale_side)
            result, _ = await run(("upscale", id(data)), np.asarray(image.convert("RGB")))
            return await run_in_threadpool(png_response, result)

    # ---- the page -----------------------------------------------------------------------------
    if "/" in serves:
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

        @app.get("/", include_in_schema=False)
        def page():
            return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    return app
