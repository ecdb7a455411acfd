"""The `nar` command line (typer). Every command turns user mistakes (NarError) into one
line on stderr and exit code 2; everything else is a bug and keeps its traceback."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from nar import cli_sr
from nar.core.config import parse_overrides
from nar.core.errors import ArgumentError, NarError
from nar.sampling import INPAINT_PRIOR, INPAINT_TEMPERATURE
from nar.serve import cli as serve_cli

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="nar: high-resolution image generation over VQGAN tokens (AR, MaskGIT, SUNDAE).")
data_app = typer.Typer(no_args_is_help=True, help="Datasets: the procedural landscapes and image folders.")
tok_app = typer.Typer(no_args_is_help=True, help="The shared VQGAN tokenizer.")
app.add_typer(data_app, name="data")
app.add_typer(tok_app, name="tokenizer")
serve_cli.register(app)       # nar serve
cli_sr.register(app)          # nar sr train|eval, nar upscale
console = Console()
err_console = Console(stderr=True)

ConfigOpt = typer.Option(None, "--config", "-c", help="TOML config: a path, or a packaged recipe's name (e.g. f16_small; see `nar configs`). Default: the dataclass defaults.")
TensorBoardOpt = typer.Option(False, "--tensorboard", help="Also log scalars (losses, lr, codebook usage, throughput) and snapshot grids to OUT/tensorboard.")
SetOpt = typer.Option(None, "--set", help="Override a config field, e.g. --set model.dim=256 (repeatable).")
SeedOpt = typer.Option(0, "--seed", help="Random seed: same seed, same device -> same output.")
DeviceOpt = typer.Option("auto", "--device", help="auto | cpu | cuda")
OptionOpt = typer.Option(None, "--option", help="A prior's own sampling option KEY=VALUE (repeatable): maskgit's "
                         "choice_temperature, schedule, order (confidence | halton), refine_rounds, refine_ratio, refine_steps, candidates (best of K), rank_ring, "
                         "init (inpainting start: reflect | mask), outside_in (fill order); sundae's temperature_end, "
                         "update_proportion, update_rule (random | least_confident | checkerboard | halton), polish, choice_temperature, min_change, ...")
TileOpt = typer.Option(None, "--tile/--no-tile", help="Run the tokenizer in tiles (default: when the image is too big to run whole).")
PrecisionOpt = typer.Option(None, "--precision", help="auto | fp32 | bf16 for sampling and decoding (default: auto, bf16 where the hardware has it natively, e.g. CPUs with AVX512-BF16; fp32 reproduces across machines).")
MaxMemoryOpt = typer.Option(None, "--max-memory", help="Refuse work estimated above this much memory, e.g. 8G (default: $NAR_MAX_MEMORY or 8G).")


def _parse_grid(text: Optional[str]):
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise NarError(f"--grid must look like HxW (e.g. 32x32), got {text!r}") from None
    return h, w


def _pipeline(tokenizer, prior: str, ckpt, device: str, tile: Optional[bool], max_memory: Optional[str],
              precision: Optional[str] = None):
    """The shared loader (lazy: nothing loads here) with the tiling choice, memory limit and precision."""
    from nar.pipelines.pipeline import Pipeline
    return Pipeline.load(tokenizer=tokenizer, priors={prior: ckpt} if ckpt else None, device=device,
                         tile=tile, max_memory=max_memory, precision=precision)


# ---- data ----------------------------------------------------------------------------------
@data_app.command("make")
def data_make(out: Path = typer.Option(..., "--out", help="Folder to write PNGs + labels.json into."),
              n: int = typer.Option(100, "--n", help="Number of images."),
              size: int = typer.Option(256, "--size", help="Image side in pixels (64..4096)."),
              seed: int = SeedOpt):
    """Render procedural landscapes (mountains, lake, coast, desert, forest, city) to PNGs."""
    from nar.data.landscapes import make_dataset_folder
    if n < 1:
        raise NarError(f"--n must be at least 1 (got {n})")
    if not 64 <= size <= 4096:
        raise NarError(f"--size must be in [64, 4096] (got {size})")
    make_dataset_folder(out, n=n, size=size, seed=seed, progress=True)
    console.print(f"wrote {n} images of {size}x{size} to {out}")


@data_app.command("shards")
def data_shards(src: Path = typer.Option(..., "--src", help="Image folder (any depth; sub-folders are classes)."),
                out: Path = typer.Option(..., "--out", help="Folder to write shard-*.tar + index.json into."),
                per_shard: int = typer.Option(1000, "--per-shard", help="Images per tar shard."),
                min_size: int = typer.Option(256, "--min-size", help="Skip images whose shorter side is smaller."),
                seed: int = SeedOpt):
    """Pack an image folder into WebDataset tar shards (cleaned: unreadable / too-small files skipped and counted)."""
    from nar.data.shards import write_shards
    index = write_shards(src, out, per_shard, min_size=min_size, seed=seed, progress=True)
    console.print(index["summary"])


# ---- tokenizer -----------------------------------------------------------------------------
@tok_app.command("train")
def tokenizer_train(config: Optional[Path] = ConfigOpt, set_: Optional[List[str]] = SetOpt,
                    data: Optional[Path] = typer.Option(None, "--data", help="Image folder, or a shard folder from `nar data shards` (default: procedural landscapes)."),
                    out: Path = typer.Option(Path("runs/tokenizer"), "--out", help="Run folder (resumed if it exists)."),
                    resume: bool = typer.Option(True, "--resume/--no-resume"), tensorboard: bool = TensorBoardOpt):
    """Train the VQGAN tokenizer (resumable: rerun the same command to continue)."""
    from nar.pipelines.tokenizer_jobs import train_tokenizer
    run = train_tokenizer(config, parse_overrides(set_), out=out, data_dir=data, resume=resume, progress=True,
                          tensorboard=tensorboard)
    console.print(f"tokenizer checkpoint: {run}")


@tok_app.command("eval")
def tokenizer_eval(ckpt: Optional[Path] = typer.Option(None, "--ckpt", help="Tokenizer checkpoint (default: shipped)."),
                   data: Optional[Path] = typer.Option(None, "--data"),
                   n: int = typer.Option(64, "--n"), size: int = typer.Option(256, "--size"),
                   seed: int = typer.Option(10_000, "--seed", help="Held-out procedural seed."),
                   out_json: Optional[Path] = typer.Option(None, "--json")):
    """PSNR, SSIM, LPIPS (when VGG weights exist), codebook usage and perplexity."""
    from nar.pipelines.models import resolve_tokenizer_ckpt
    from nar.pipelines.tokenizer_jobs import evaluate_tokenizer
    evaluate_tokenizer(resolve_tokenizer_ckpt(ckpt), data_dir=data, n=n, size=size, seed=seed, out_json=out_json)


@tok_app.command("reconstruct")
def tokenizer_reconstruct(image: Path = typer.Argument(..., help="Any image, any size."),
                          out: Path = typer.Option(..., "--out"),
                          ckpt: Optional[Path] = typer.Option(None, "--ckpt"),
                          tile: Optional[bool] = TileOpt, max_memory: Optional[str] = MaxMemoryOpt):
    """Encode + decode one image of any size (padded to whole tokens and cropped back; big images in tiles)."""
    from nar.pipelines.models import resolve_tokenizer_ckpt
    from nar.pipelines.tokenizer_jobs import reconstruct_image
    result = reconstruct_image(resolve_tokenizer_ckpt(ckpt), image, out, tile=tile, max_memory=max_memory)
    console.print(f"wrote {out}" + (" (tiled)" if result.get("tiled") else ""))


@tok_app.command("encode")
def tokenizer_encode(out: Path = typer.Option(..., "--out", help="Token cache folder to create."),
                     ckpt: Optional[Path] = typer.Option(None, "--ckpt"),
                     data: Optional[Path] = typer.Option(None, "--data", help="Image folder or shard folder (default: procedural)."),
                     n: int = typer.Option(1000, "--n", "--count", help="Images to encode (at most; --count under torchrun, whose own options swallow --n)."),
                     size: int = typer.Option(256, "--size"), seed: int = SeedOpt,
                     batch_size: int = typer.Option(16, "--batch-size"),
                     tile: Optional[bool] = TileOpt, max_memory: Optional[str] = MaxMemoryOpt):
    """Encode a dataset once into a memory-mapped token cache that priors train from."""
    from nar.pipelines.models import resolve_tokenizer_ckpt
    from nar.pipelines.tokenizer_jobs import encode_to_cache
    encode_to_cache(resolve_tokenizer_ckpt(ckpt), out, data_dir=data, n=n, size=size, seed=seed,
                    batch_size=batch_size, tile=tile, max_memory=max_memory)
    console.print(f"token cache: {out}")


@tok_app.command("join-pools")
def tokenizer_join_pools(pools: List[Path] = typer.Argument(..., help="fresh_tokens folders of earlier `nar train --fresh` runs."),
                         out: Path = typer.Option(..., "--out", help="Token cache folder to create.")):
    """Join the grids fresh-render runs made into one token cache (each grid read once by the next run)."""
    from nar.data.tokens import TokenCache
    from nar.train.fresh_tokens import join_pools
    cache = TokenCache.open(join_pools(pools, out))
    console.print(f"token cache: {out} ({len(cache)} grids of {cache.grid[0]}x{cache.grid[1]} tokens)")


# ---- priors ---------------------------------------------------------------------------------
@app.command()
def train(prior: str = typer.Option(..., "--prior", help="ar | maskgit | sundae"),
          tokens: Optional[Path] = typer.Option(None, "--tokens", help="Token cache from `nar tokenizer encode` (or --fresh)."),
          fresh: Optional[int] = typer.Option(None, "--fresh", help="Train on fresh SIZE² procedural renders, encoded by worker processes while training runs (kept in OUT/fresh_tokens), instead of a token cache."),
          fresh_workers: int = typer.Option(1, "--fresh-workers", help="Processes rendering + encoding for --fresh (one torch thread each)."),
          fresh_per_step: float = typer.Option(1.0, "--fresh-per-step", help="New grids per training step (--fresh); training waits when the workers fall behind."),
          fresh_window: int = typer.Option(0, "--fresh-window", help="Batches draw from the newest this many grids (--fresh; 0: all made so far)."),
          fresh_initial: int = typer.Option(64, "--fresh-initial", help="Grids made before the first step (--fresh)."),
          fresh_dir: Optional[Path] = typer.Option(None, "--fresh-dir", help="Where the grids are kept (--fresh; default OUT/fresh_tokens). Runs may share one: a grid one run has made, the others read."),
          fresh_seed: int = typer.Option(0, "--fresh-seed", help="Which stream of scenes (--fresh): a run that goes on from a model trained on seed 0's scenes sees new ones with another seed."),
          config: Optional[Path] = ConfigOpt, set_: Optional[List[str]] = SetOpt,
          out: Path = typer.Option(..., "--out", help="Run folder (resumed if it exists)."),
          tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="For decoded sample grids (default: the cache's); with --fresh, the tokenizer that encodes the renders (default: shipped)."),
          conditional: bool = typer.Option(True, "--conditional/--unconditional",
                                           help="Class-conditional (with CFG dropout) when the cache has labels."),
          resume: bool = typer.Option(True, "--resume/--no-resume"),
          init_from: Optional[Path] = typer.Option(None, "--init-from", help="Start a new run from this checkpoint of the same prior (fine-tuning)."),
          stop_after: Optional[int] = typer.Option(None, "--stop-after", help="Stop after this step, checkpointed, with the schedule still planned over train.steps (resume to go on)."),
          tensorboard: bool = TensorBoardOpt):
    """Train a prior on a token cache, or on fresh renders (--fresh), with the shared loop (AdamW, warm-up + cosine, EMA, resume)."""
    from nar.pipelines.train_prior import train_prior
    if stop_after is not None and stop_after < 1:
        raise ArgumentError("stop_after", f"--stop-after must be >= 1 (got {stop_after})")
    fresh_spec = None if fresh is None else {"size": fresh, "workers": fresh_workers, "per_step": fresh_per_step,
                                             "window": fresh_window, "initial": fresh_initial, "folder": fresh_dir, "seed": fresh_seed}
    run = train_prior(prior, tokens, config, parse_overrides(set_), out, tokenizer=tokenizer,
                      conditional=conditional, resume=resume, init_from=init_from, tensorboard=tensorboard,
                      stop_after=stop_after, fresh=fresh_spec)
    console.print(f"prior checkpoint: {run / 'model.safetensors'}")


def sampler_options(pairs: list[str] | None) -> dict:
    """--option KEY=VALUE pairs -> the prior's options (the prior refuses names it does not know)."""
    try:
        return parse_overrides(pairs or [])
    except NarError as e:
        raise ArgumentError("option", f"--option takes KEY=VALUE: {e}") from None


@app.command()
def sample(prior: str = typer.Option("sundae", "--prior", help="ar | maskgit | sundae"),
           ckpt: Optional[Path] = typer.Option(None, "--ckpt", help="Prior checkpoint (default: the shipped model)."),
           tokenizer: Optional[Path] = typer.Option(None, "--tokenizer"),
           steps: Optional[int] = typer.Option(None, "--steps", help="Sampling steps (default: the prior's; AR ignores it)."),
           n: int = typer.Option(4, "--n"),
           size: Optional[int] = typer.Option(None, "--size", help="Image side in pixels (multiple of the tokenizer factor); above the prior's native size (`nar models`): drawn at it + 2x super-resolution."),
           grid: Optional[str] = typer.Option(None, "--grid", help="Token grid HxW instead of --size."),
           temperature: Optional[float] = typer.Option(None, "--temperature", help=">= 0; 0 = greedy; default: the prior's own (`nar models`), else 1."),
           temperature_end: Optional[float] = typer.Option(None, "--temperature-end", help="sundae / maskgit: the last step's temperature, reached linearly from --temperature."),
           min_change: Optional[int] = typer.Option(None, "--min-change", help="SUNDAE: stop when a step changes at most this many tokens."),
           top_k: Optional[int] = typer.Option(None, "--top-k"),
           top_p: Optional[float] = typer.Option(None, "--top-p", help="Nucleus filter in (0, 1]; default: the prior's own (`nar models`), 1 = off."),
           class_label: Optional[str] = typer.Option(None, "--class", help="Scene label (e.g. lake) for conditional models."),
           cfg: float = typer.Option(1.0, "--cfg", help="Classifier-free guidance scale (1 = none)."),
           option: Optional[List[str]] = OptionOpt,
           seed: int = SeedOpt, device: str = DeviceOpt,
           out: Path = typer.Option(Path("samples"), "--out"),
           overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
           sr_ckpt: Optional[Path] = typer.Option(None, "--sr-ckpt", help="SR model for sizes above the prior's native one (default: shipped)."),
           sharpen: Optional[float] = typer.Option(None, "--sharpen", help="Unsharp-mask amount after the 2x SR (sizes above the prior's native one); default 1, 0 = off."),
           tile: Optional[bool] = TileOpt, max_memory: Optional[str] = MaxMemoryOpt,
           precision: Optional[str] = PrecisionOpt):
    """Generate images: one PNG per image plus a grid, settings stored in PNG metadata."""
    from nar.pipelines.sample import SampleSettings, run_sample
    options = sampler_options(option)
    if temperature_end is not None:
        options["temperature_end"] = temperature_end
    if min_change is not None:
        options["min_change"] = min_change
    settings = SampleSettings(prior=prior, n=n, steps=steps, size=size, grid=_parse_grid(grid),
                              temperature=temperature, top_k=top_k, top_p=top_p, class_label=class_label,
                              cfg=cfg, seed=seed, sharpen=sharpen, options=options)
    run_sample(settings, out, ckpt=ckpt, tokenizer=tokenizer, device=device, overwrite=overwrite,
               log=console.print, sr_ckpt=sr_ckpt, progress=True,
               pipeline=_pipeline(tokenizer, prior, ckpt, device, tile, max_memory, precision))


@app.command()
def inpaint(prior: str = typer.Option(INPAINT_PRIOR, "--prior", help="ar | maskgit | sundae"),
            image: Path = typer.Option(..., "--image", help="Input image (PNG/JPG)."),
            mask: Optional[Path] = typer.Option(None, "--mask", help="Mask PNG of the image's size: WHITE = regenerate, black = keep."),
            box: Optional[str] = typer.Option(None, "--box", help="Region to regenerate, x0,y0,x1,y1 in pixels."),
            out: Path = typer.Option(..., "--out"),
            ckpt: Optional[Path] = typer.Option(None, "--ckpt"), tokenizer: Optional[Path] = typer.Option(None, "--tokenizer"),
            steps: Optional[int] = typer.Option(None, "--steps"),
            temperature: float = typer.Option(INPAINT_TEMPERATURE, "--temperature",
                                              help=">= 0; inpainting samples cooler than `nar sample` (default 0.7): the fill must agree with its surroundings."),
            class_label: Optional[str] = typer.Option(None, "--class"), cfg: float = typer.Option(1.0, "--cfg"),
            option: Optional[List[str]] = OptionOpt,
            feather: int = typer.Option(0, "--feather", help="Mix ORIGINAL pixels back in over this many pixels inside the mask (default 0: nothing of the original under the mask survives)."),
            blend: Optional[int] = typer.Option(None, "--blend", help="Seam ramp inside the mask towards a fill from the kept pixels (default: one tokenizer cell)."),
            harmonize: bool = typer.Option(True, "--harmonize/--no-harmonize", help="Carry the kept border's colour into the region (no visible frame)."),
            seed: int = SeedOpt, device: str = DeviceOpt,
            overwrite: bool = typer.Option(False, "--overwrite"),
            tile: Optional[bool] = TileOpt, max_memory: Optional[str] = MaxMemoryOpt,
            precision: Optional[str] = PrecisionOpt):
    """Regenerate the masked part of an image with any prior; kept pixels are returned unchanged."""
    from nar.pipelines.inpaint import run_inpaint
    run_inpaint(prior, image, out, mask_path=mask, box=box, steps=steps, temperature=temperature, seed=seed,
                class_label=class_label, cfg=cfg, feather=feather, harmonize=harmonize, blend=blend, ckpt=ckpt, tokenizer=tokenizer,
                device=device, overwrite=overwrite, log=console.print, options=sampler_options(option),
                pipeline=_pipeline(tokenizer, prior, ckpt, device, tile, max_memory, precision))


@app.command()
def bench(priors: Optional[str] = typer.Option(None, "--priors", help="Comma-separated prior names (default: all registered)."),
          sizes: Optional[str] = typer.Option(None, "--sizes", help="Image sides in pixels, e.g. 256,512,1024."),
          steps: Optional[str] = typer.Option(None, "--steps", help="Steps settings for parallel priors, e.g. 4,8,12,20,24 (ar has none; default: quick = each prior's default, full = 4,8,12,20,24)."),
          batch: Optional[str] = typer.Option(None, "--batch", help="Batch sizes for throughput, e.g. 1,8 (latencies are always at batch 1)."),
          device: str = typer.Option("cpu", "--device", help="cpu | cuda | auto"),
          full: bool = typer.Option(False, "--full/--quick", help="--full: every size and steps setting, more runs and samples; default --quick (minutes on CPU)."),
          out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: benchmarks/results/<device>/)."),
          n_quality: Optional[int] = typer.Option(None, "--n-quality", help="Images per quality row (quick 24, full 256)."),
          quality_size: Optional[int] = typer.Option(None, "--quality-size", help="Image side for the quality table (default 256)."),
          no_quality: bool = typer.Option(False, "--no-quality", help="Speed table only."),
          repeats: Optional[int] = typer.Option(None, "--repeats", help="Timed batch-1 runs per row (quick 3, full 5)."),
          inception: Optional[Path] = typer.Option(None, "--inception", help="Inception weights for FID / IS (default: torch hub cache if present)."),
          tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="Tokenizer checkpoint (default: shipped, else untrained from configs/tokenizer/f32_1024.toml)."),
          ckpt_dir: Optional[Path] = typer.Option(None, "--ckpt-dir", help="Folder with <prior>.safetensors or <prior>/model.safetensors (default: shipped models)."),
          threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads (default: torch's, one per core)."),
          quality_cfg: Optional[float] = typer.Option(None, "--quality-cfg", help="Quality rows of class-conditional priors: class-balanced samples with this guidance scale, as the README samples (default: unconditional)."),
          real_classes: Optional[str] = typer.Option(None, "--real-classes", help="Scenes of the quality rows' real images: balanced (equal counts, the default) or drawn (each seed's own, as before session 26)."),
          temperature: Optional[float] = typer.Option(None, "--temperature", help="Sampling temperature of every row, speed and quality (> 0; default: each prior's own, else 1; each prior's own top_p and other config defaults still apply)."),
          sharpen: Optional[float] = typer.Option(None, "--sharpen", help="Unsharp-mask amount after the 2x SR of sizes above a prior's native one, as `nar sample` (default 1, 0 = off)."),
          precision: Optional[str] = PrecisionOpt, seed: int = SeedOpt):
    """Speed and quality of every prior side by side: same tokenizer, grid, seeds and machine."""
    from nar.pipelines.bench import bench_defaults, parse_int_list
    names = [p.strip() for p in priors.split(",") if p.strip()] if priors else None
    bench_defaults(priors=names, sizes=parse_int_list(sizes, "--sizes"), steps=parse_int_list(steps, "--steps"),
                   batches=parse_int_list(batch, "--batch"), device=device, full=full, out=out,
                   n_quality=n_quality, inception=inception, tokenizer=tokenizer, ckpt_dir=ckpt_dir,
                   quality=not no_quality, quality_size=quality_size, repeats=repeats, seed=seed, threads=threads,
                   precision=precision, quality_cfg=quality_cfg, real_classes=real_classes, temperature=temperature, sharpen=sharpen, command="nar " + " ".join(sys.argv[1:]),
                   log=console.print, print_results=True)


@app.command()
def models():
    """List the models installed with the package (sizes and training details)."""
    from nar.pipelines.models import MODELS_DIR, installed_models
    from nar.priors.base import default_grid
    rows = installed_models()
    if not rows:
        console.print(f"no models installed in {MODELS_DIR}")
        return
    table = Table(title=f"installed models ({MODELS_DIR})")
    for col in ("file", "kind", "size (MB)", "params", "images", "trained", "sampling set at shipping"):
        table.add_column(col)
    for r in rows:
        m = r["meta"]
        params = f"{m['params'] / 1e6:.1f} M" if m.get("params") else "?"
        if r["kind"] == "tokenizer":
            images = f"f{m.get('factor')}, {m.get('codebook_size')} codes"
        elif r["kind"] == "sr":
            images = f"{m.get('scale')}x super-resolution, any size (e.g. 512² -> 1024² -> 2048²)"
        else:
            grid = default_grid(m) or (0, 0)
            window = m.get("train_grid")
            factor = int(m.get("tokenizer_factor") or 16)
            classes = m.get("class_names") or []
            images = (f"{grid[0] * factor}² native ({grid[0]}x{grid[1]} tokens"
                      + (f"; trained on {window[0]}x{window[1]} windows" if window and tuple(window) != grid else "")
                      + ")" + (f", {len(classes)} classes" if classes else ", unconditional"))
        t = m.get("training") or {}
        trained = f"{r['step']} steps" + (f", {t['wall_hours']:.1f} h on {t['hardware']}" if t else "")
        if t.get("earlier_stage"):   # a staged fine-tune: the stage this one started from
            trained += f" after a stage of {t['earlier_stage']['steps']} steps ({t['earlier_stage']['wall_hours']:.1f} h)"
        parent = t.get("fine_tuned_from") or {}
        if parent:
            pt = parent.get("training") or {}
            trained += f"; fine-tuned from {parent.get('step')} steps ({pt.get('wall_hours', 0):.1f} h)"
        # sampling defaults changed after training (scripts/ship_models.py --sampling), as they stand now
        changed = dict.fromkeys(c["key"] for change in m.get("sampling_changes", []) for c in change["changes"])
        sampling = ", ".join(f"{k} {(m.get('config') or {}).get(k)}" for k in changed) or "-"
        table.add_row(r["file"], f"{r['kind']} {r['name']}", f"{r['size_mb']:.1f}", params, images, trained, sampling)
    console.print(table)


@app.command()
def configs():
    """List the packaged recipes (for --config NAME), one line each."""
    from nar.core.recipes import describe, list_recipes, recipes_dir
    recipes = list_recipes()
    width = max(map(len, recipes), default=0)
    console.print(f"recipes in {recipes_dir()} (--config NAME, or KIND/NAME):", highlight=False, soft_wrap=True)
    for key, path in recipes.items():
        console.print(f"  {key:<{width}}  {describe(path)}", highlight=False, soft_wrap=True)


# the flag each library argument comes from, where its name differs from --<name with dashes>
FLAGS = {"class_name": "--class", "cond": "--class", "options": "--option", "temperature_end": "--temperature-end",
         "min_change": "--min-change"}


def flag_for(name: str) -> str:
    """The flag a bad argument came from; a prior's own option without a flag of its own is an --option."""
    if name in FLAGS:
        return FLAGS[name]
    from nar.priors import PRIORS
    if any(name in PRIORS.get(prior).sample_options for prior in PRIORS.names()):
        return f"--option {name}=..."
    return "--" + name.replace("_", "-")


def main() -> None:
    from nar.train import distributed
    try:
        distributed.check_command(sys.argv[1:])
        distributed.init()      # under torchrun: join the process group before any model is built
        console.quiet = not distributed.is_main()   # one report per run, not one per rank
        app()
    except NarError as e:
        where = f" [dim]({flag_for(e.name)})[/]" if isinstance(e, ArgumentError) else ""
        err_console.print(f"{distributed.error_prefix()}[bold red]error:[/] {e}{where}", highlight=False,
                          soft_wrap=True)
        sys.exit(2)
    except (MemoryError, RuntimeError) as e:   # out of memory outside a memory_guard: still one line
        from nar.core.memory import is_out_of_memory, oom_message
        if not is_out_of_memory(e):
            raise
        what = "running `nar " + " ".join(a for a in sys.argv[1:3] if not a.startswith("-")) + "`"
        err_console.print(f"{distributed.error_prefix()}[bold red]error:[/] {oom_message(what)}",
                          highlight=False, soft_wrap=True)
        sys.exit(2)
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    main()
