"""`nar serve`: the command (registered in nar/cli.py)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from nar.core.errors import NarError


def serve(role: str = typer.Option("all", "--role", help="all | generate | decode | upscale"),
          host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (default: this machine only)."),
          port: int = typer.Option(8000, "--port"),
          device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
          tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="Tokenizer checkpoint (default: shipped)."),
          ckpt: Optional[List[str]] = typer.Option(None, "--ckpt", help="NAME=PATH prior checkpoint (repeatable; default: shipped)."),
          sr_ckpt: Optional[Path] = typer.Option(None, "--sr-ckpt", help="Super-resolution checkpoint (default: shipped)."),
          decode_url: Optional[str] = typer.Option(None, "--decode-url", help="generate role: decode service base URL, e.g. http://127.0.0.1:8001."),
          upscale_url: Optional[str] = typer.Option(None, "--upscale-url", help="generate role: upscale service base URL (its /upscale is forwarded)."),
          max_batch: int = typer.Option(8, "--max-batch", help="Requests per batched model call (1 = no batching)."),
          max_wait_ms: float = typer.Option(10.0, "--max-wait-ms", help="How long a request waits for others to batch with."),
          max_queue: int = typer.Option(64, "--max-queue", help="Waiting requests before the server answers 503."),
          max_size: int = typer.Option(1024, "--max-size", help="Largest image side (pixels) a request may ask for."),
          max_upload_mb: float = typer.Option(16.0, "--max-upload-mb", help="Largest request body."),
          preload: Optional[str] = typer.Option("sundae", "--preload", help="Comma-separated priors to load at start-up ('' for none)."),
          log_level: str = typer.Option("info", "--log-level")):
    """Serve generation, decoding and 2x super-resolution over HTTP, with a web page at / ."""
    from nar.serve.app import ROLES, ServeConfig, create_app
    from nar.serve.engine import Limits
    from nar.serve.server import run

    if role not in ROLES:
        raise NarError(f"--role must be one of {', '.join(ROLES)} (got {role!r})")
    if not 0 < port < 65536:
        raise NarError(f"--port must be in 1..65535 (got {port})")
    if max_size < 16 or max_upload_mb <= 0:
        raise NarError("--max-size must be >= 16 and --max-upload-mb > 0")
    priors = {}
    for item in ckpt or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise NarError(f"--ckpt must look like NAME=PATH (e.g. ar=runs/ar/model.safetensors), got {item!r}")
        if not Path(path).is_file():
            raise NarError(f"--ckpt {name}: no file at {path}")
        priors[name] = path
    if role == "generate" and not decode_url:
        typer.echo("note: no --decode-url: this generate role decodes PNGs itself", err=True)
    names = tuple(p.strip() for p in (preload or "").split(",") if p.strip()) if role in ("all", "generate") else ()
    config = ServeConfig(role=role, device=device, tokenizer=str(tokenizer) if tokenizer else None, priors=priors,
                         sr_ckpt=str(sr_ckpt) if sr_ckpt else None, decode_url=decode_url, upscale_url=upscale_url,
                         max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue, preload=names,
                         limits=Limits(max_size=max_size, max_upload_bytes=int(max_upload_mb * 2**20)))
    app = create_app(config)
    typer.echo(f"nar serve: role {role} on http://{host}:{port} (page at /, API docs at /docs)", err=True)
    run(app, host=host, port=port, log_level=log_level)


def register(app: typer.Typer) -> None:
    """Add `nar serve` to the main command line."""
    app.command("serve")(serve)
