"""`nar sr ...` (train, eval) and `nar upscale`: the 2x super-resolution commands, registered
on the main app by `nar.cli` (kept in their own module so the main CLI file stays small)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from nar.core.config import parse_overrides
from nar.core.errors import NarError

sr_app = typer.Typer(no_args_is_help=True, help="The 2x super-resolution model (1024² -> 2048²).")
console = Console()


@sr_app.command("train")
def sr_train(config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML config: a path, or a packaged recipe's name (v2 = the shipped model, v1, tiny; see `nar configs`)."),
             set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a field, e.g. --set train.lr=5e-4."),
             out: Path = typer.Option(Path("runs/sr"), "--out", help="Run folder (resumed if it exists)."),
             resume: bool = typer.Option(True, "--resume/--no-resume"),
             tensorboard: bool = typer.Option(False, "--tensorboard", help="Also log scalars and snapshot grids to OUT/tensorboard."),
             init_from: Optional[Path] = typer.Option(None, "--init-from", help="Start from an SR checkpoint's weights (same net), e.g. the shipped model.")):
    """Train the SR net on procedural render pairs with the shared loop (resumable: rerun to continue)."""
    from nar.pipelines.models import default_tokenizer_path
    from nar.train.sr_task import train_sr
    run = train_sr(config, parse_overrides(set_), out, resume=resume, progress=True, tensorboard=tensorboard,
                   init_from=init_from, default_tokenizer=default_tokenizer_path())
    console.print(f"sr checkpoint: {run / 'model.safetensors'}")


@sr_app.command("eval")
def sr_eval(ckpt: Optional[Path] = typer.Option(None, "--ckpt", help="SR checkpoint (default: the shipped model)."),
            n: int = typer.Option(8, "--n", help="Held-out scenes."),
            size: int = typer.Option(1024, "--size", help="Input side; the target is the true render at 2x."),
            seed: int = typer.Option(17, "--seed", help="Held-out evaluation set."),
            tile: Optional[int] = typer.Option(None, "--tile", help="Low-res tile side (0 = untiled; default 1024)."),
            threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads."),
            low_res: str = typer.Option("supersampled", "--low-res",
                                        help="Input: supersampled (the true 2x render box-averaged) | render (a plain 1x render) | decoded (the supersampled render's tokenizer round trip, what a prior's draw gives the SR)."),
            tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="--low-res decoded: tokenizer checkpoint (default: the shipped one)."),
            out_json: Optional[Path] = typer.Option(None, "--json")):
    """PSNR and sharpness of SR vs bicubic against the true 2x renders of held-out scenes."""
    import torch

    from nar.pipelines.sr_eval import evaluate_sr
    if threads is not None:
        if threads < 1:
            raise NarError(f"--threads must be >= 1 (got {threads})")
        torch.set_num_threads(threads)
    evaluate_sr(ckpt, n=n, size=size, seed=seed, tile=tile, out_json=out_json, low_res=low_res, tokenizer=tokenizer,
                log=console.print)


def upscale(image: Path = typer.Argument(..., help="Any RGB image (PNG/JPG/WebP)."),
            out: Path = typer.Option(..., "--out", help="Output PNG (2x the input's size)."),
            ckpt: Optional[Path] = typer.Option(None, "--ckpt", help="SR checkpoint (default: the shipped model)."),
            tile: int = typer.Option(1024, "--tile", help="Low-res tile side for tiled inference (0 = untiled)."),
            device: str = typer.Option("cpu", "--device", help="auto | cpu | cuda"),
            overwrite: bool = typer.Option(False, "--overwrite")):
    """2x super-resolution of one image (tiled with overlap: any size up to the memory limit)."""
    from nar.pipelines.upscale import upscale_file
    if tile < 0:
        raise NarError(f"--tile must be >= 0 (got {tile})")
    upscale_file(image, out, ckpt=ckpt, tile=tile or None, device=device, overwrite=overwrite, log=console.print)


def register(app: typer.Typer) -> None:
    app.add_typer(sr_app, name="sr")
    app.command("upscale")(upscale)
