"""The tokenizer jobs `nar tokenizer ...` runs: train, evaluate, reconstruct, encode to a token cache.

They compose the model (`nar.tokenizer`), its training task (`nar.train.tokenizer_task`) and
the datasets (`nar.data`); the tokenizer package itself holds only the model.

Every user mistake (bad path, wrong checkpoint kind, overwriting the input) ends in a
`NarError` with one clear sentence; long work shows a rich progress bar.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from nar.core.checkpoint import atomic_write_text
from nar.core.config import load_config
from nar.core.recipes import KINDS_TOKENIZER
from nar.core.errors import NarError
from nar.tokenizer.config import TokenizerConfig
from nar.tokenizer.losses import build_lpips, find_vgg_weights, lpips_distance, psnr, ssim
from nar.tokenizer.load import load_tokenizer, stamp_hash, tokenizer_hash  # noqa: F401  (re-exported)
from nar.eval.sharpness import relative_to, sharpness_report
from nar.tokenizer.quantizer import code_counts, usage_stats
from nar.train.tokenizer_task import TokenizerTask, held_out_seed, render_landscape
from nar.train.loop import MODEL_FILE, train
from nar.core.progress import progress_bar

console = Console()


# ---- train ---------------------------------------------------------------------------------
def train_tokenizer(config_path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                    out: str | Path = "runs/tokenizer", data_dir: str | Path | None = None,
                    resume: bool = True, progress: bool = True, tensorboard: bool = False) -> Path:
    """Train (or resume) a VQGAN; returns ``out/model.safetensors``, stamped with its content hash.
    ``config_path``: a TOML file or a packaged recipe's name (e.g. "f16_small");
    ``tensorboard``: also log to ``out/tensorboard`` (`nar.train.tensorboard`)."""
    cfg = load_config(TokenizerConfig, config_path, overrides, kinds=KINDS_TOKENIZER)
    if data_dir is not None:
        if not Path(data_dir).is_dir():
            raise NarError(f"data folder not found: {data_dir}")
        cfg.data_dir = str(Path(data_dir).resolve())
    cfg.validate()
    task = TokenizerTask(cfg)
    try:
        run_dir = train(task, cfg.train, out, resume=resume, progress=progress, tensorboard=tensorboard)
    finally:
        task.images.close()
    path = Path(run_dir) / MODEL_FILE
    from nar.train import distributed
    if distributed.is_main():        # rank 0 alone writes; the others wait for the stamped file
        stamp_hash(path)
    distributed.barrier()
    return path


# ---- image sources -------------------------------------------------------------------------
def _images(data_dir: str | Path | None, n: int | None, size: int, seed: int, held_out: bool,
            rank_part: bool = False) -> tuple[int, list[str], str, Iterator[tuple[torch.Tensor, int]]]:
    """(count, class names, description, iterator of ((3, size, size) in [-1, 1], label)).
    ``rank_part``: under torchrun the iterator covers only this rank's share of the count
    images (`distributed.rank_range`); count is still the whole."""
    from nar.train import distributed

    def share(count: int) -> range:
        return range(*distributed.rank_range(count)) if rank_part else range(count)

    from nar.data.shards import is_shard_folder
    if data_dir is not None and is_shard_folder(data_dir):
        from nar.data.shards import ShardSet, read_range
        shards = ShardSet.open(data_dir)
        count = len(shards) if n is None else min(n, len(shards))
        mine = share(count)
        return count, shards.class_names, f"shards {data_dir}", read_range(shards, mine.start, mine.stop, size)
    if data_dir is None:
        from nar.data.landscapes import SCENES, LandscapeDataset
        count = 64 if n is None else n
        if count <= 0:
            raise NarError(f"the number of images n must be positive, got {count}")
        if held_out:   # seeds no training run draws (nar.train.tokenizer_task.held_out_seed)
            what = f"procedural landscapes, held-out seed set {seed}"
            return count, list(SCENES), what, (render_landscape(held_out_seed(seed, i), size) for i in range(count))
        dataset = LandscapeDataset(count, size, seed=seed)
        items = iter(dataset) if not rank_part else (dataset[i] for i in share(count))
        return count, list(SCENES), f"procedural landscapes, LandscapeDataset seed {seed}", items
    from nar.data.folder import ImageFolderDataset
    dataset = ImageFolderDataset(data_dir, size)
    if len(dataset) == 0:
        raise NarError(f"no usable images in {data_dir}" + (f" ({dataset.summary()})" if hasattr(dataset, "summary") else ""))
    if getattr(dataset, "skipped", None):
        console.print(f"[yellow]{dataset.summary()}")
    count = len(dataset) if n is None else min(n, len(dataset))

    def items() -> Iterator[tuple[torch.Tensor, int]]:
        for i in share(count):
            image, label = dataset[i]
            yield image, _label_id(label)

    return count, list(dataset.class_names), f"folder {data_dir}", items()


def _label_id(label: Any) -> int:
    """A dataset's label (an int, or a dict holding one) as a class id; -1 when unlabelled."""
    if isinstance(label, dict):
        label = next((label[k] for k in ("class_id", "label", "scene_id") if k in label), None)
    return -1 if label is None else int(label)


def _batches(items: Iterator[tuple[torch.Tensor, int]], batch_size: int
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    images, labels = [], []
    for image, label in items:
        images.append(image)
        labels.append(label)
        if len(images) == batch_size:
            yield torch.stack(images), torch.tensor(labels)
            images, labels = [], []
    if images:
        yield torch.stack(images), torch.tensor(labels)


# ---- evaluate ------------------------------------------------------------------------------
@torch.no_grad()
def evaluate_tokenizer(ckpt: str | Path, data_dir: str | Path | None = None, n: int | None = 64, size: int = 256,
                       seed: int = 0, batch_size: int = 8, device: str = "auto",
                       out_json: str | Path | None = None, lpips_weights: str | Path | None = None,
                       progress: bool = True, show: bool = True) -> dict[str, Any]:
    """Reconstruction quality on held-out images: PSNR, SSIM, LPIPS (when VGG weights exist,
    else null with a note), codebook usage over the whole set and perplexity."""
    model = load_tokenizer(ckpt, device=device)
    model.grid(size, size)
    lpips_model = build_lpips(lpips_weights) if find_vgg_weights(lpips_weights) else None
    if lpips_model is not None:
        lpips_model.to(model.device)
    count, _, source, items = _images(data_dir, n, size, seed, held_out=True)
    scores: dict[str, list[torch.Tensor]] = {"psnr": [], "ssim": [], "lpips": []}
    agreement: list[torch.Tensor] = []
    counts = torch.zeros(model.codebook_size, dtype=torch.long)
    sharp: dict[str, list[tuple[int, dict]]] = {"real": [], "recon": []}
    start, done = time.time(), 0
    with progress_bar(progress, total=count, desc="evaluate") as advance:
        for x, _ in _batches(items, batch_size):
            x = x.to(model.device)
            tokens = model.encode(x)
            recon = model.decode_tokens(tokens).float().clamp(-1, 1)
            scores["psnr"].append(psnr(recon, x).cpu())
            scores["ssim"].append(ssim(recon, x).cpu())
            # stable tokens: re-encoding the reconstruction gives the same grid (matters when
            # sampled images are re-encoded, e.g. for inpainting or super-resolution)
            agreement.append((model.encode(recon) == tokens).float().flatten(1).mean(1).cpu())
            if lpips_model is not None:
                scores["lpips"].append(lpips_distance(lpips_model, recon, x).cpu())
            counts += code_counts(tokens, model.codebook_size).cpu()
            # sharpness and blockiness at the tokenizer's cell size, beside a real-image row
            sharp["real"].append((x.shape[0], sharpness_report(x.cpu(), blocks=(model.factor,))))
            sharp["recon"].append((x.shape[0], sharpness_report(recon.cpu(), blocks=(model.factor,))))
            done += x.shape[0]
            advance(done, {"psnr": float(torch.cat(scores["psnr"]).mean())})
    stats = usage_stats(counts)
    result = {
        "tokenizer": str(Path(ckpt).resolve()), "tokenizer_hash": model.hash,
        "factor": model.factor, "codebook_size": model.codebook_size,
        "data": source, "n_images": count, "size": size, "grid": list(model.grid(size, size)),
        "psnr": float(torch.cat(scores["psnr"]).mean()),
        "ssim": float(torch.cat(scores["ssim"]).mean()),
        "lpips": float(torch.cat(scores["lpips"]).mean()) if scores["lpips"] else None,
        "codebook_usage": stats["usage"], "perplexity": stats["perplexity"],
        "codes_used": int((counts > 0).sum()),
        "token_agreement": float(torch.cat(agreement).mean()),
        "seconds": round(time.time() - start, 2), "device": str(model.device),
    }
    real, recon_sharp = (_weighted_mean(sharp[k]) for k in ("real", "recon"))
    result["sharpness"] = {"real": real, "reconstruction": relative_to(recon_sharp, real)}
    if lpips_model is None:
        result["lpips_note"] = "no VGG16 weights found (torch hub cache or lpips_weights); LPIPS not computed"
    if show:
        print_eval_table(result)
    if out_json is not None:
        atomic_write_text(out_json, json.dumps(result, indent=2) + "\n")
    return result


def _weighted_mean(rows: list[tuple[int, dict]]) -> dict[str, float]:
    total = sum(n for n, _ in rows)
    return {key: sum(n * row[key] for n, row in rows) / total for key in rows[0][1]} if rows else {}


def print_eval_table(result: dict[str, Any]) -> None:
    table = Table(title=f"tokenizer {result['tokenizer_hash']} · f{result['factor']} · "
                        f"{result['n_images']} images at {result['size']}²")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("PSNR (dB)", f"{result['psnr']:.2f}")
    table.add_row("SSIM", f"{result['ssim']:.4f}")
    table.add_row("LPIPS (vgg)", "n/a (no VGG weights)" if result["lpips"] is None else f"{result['lpips']:.4f}")
    table.add_row("codebook usage", f"{100 * result['codebook_usage']:.1f}% "
                                    f"({result['codes_used']}/{result['codebook_size']})")
    table.add_row("perplexity", f"{result['perplexity']:.1f}")
    table.add_row("tokens kept on re-encode", f"{100 * result['token_agreement']:.1f}%")
    sharp = result.get("sharpness")
    if sharp:
        real, rec, f = sharp["real"], sharp["reconstruction"], result["factor"]
        table.add_row("gradient energy (× real)", f"{rec['grad_energy']:.3f} ({rec['grad_energy_vs_real']:.2f}×; real {real['grad_energy']:.3f})")
        table.add_row("high-freq share (× real)", f"{rec['hf_share']:.4f} ({rec['hf_share_vs_real']:.2f}×; real {real['hf_share']:.4f})")
        table.add_row(f"block ratio at {f} px", f"{rec[f'block_ratio_{f}']:.3f} (real {real[f'block_ratio_{f}']:.3f})")
    console.print(table)
    console.print(f"data: {result['data']}")
    if result["codebook_usage"] < 0.5:
        console.print(f"[yellow]only {result['codes_used']} of {result['codebook_size']} codes are used: "
                      "the codebook is partly collapsed (or the evaluation set is too small to show it)")


# ---- reconstruct ---------------------------------------------------------------------------
@torch.no_grad()
def reconstruct_image(ckpt: str | Path, image_path: str | Path, out_path: str | Path,
                      device: str = "auto", tile: bool | None = None,
                      max_memory: str | int | None = None) -> dict[str, Any]:
    """Encode and decode one image of any size: sizes not divisible by f are padded (reflect,
    or replicate when the image is too small to reflect) and cropped back. Never overwrites
    the input. Big images go through the tokenizer in tiles (``tile``: True forces, False
    forbids, None decides from the memory estimate); the estimate is checked against
    ``max_memory`` (default $NAR_MAX_MEMORY or 8 GiB) before the pixels are read, and an image
    over it or out-of-memory midway is one `NarMemoryError` line with no output file written.
    Returns {"out", "size": [W, H], "grid": [h, w], "psnr", "tiled"}."""
    from nar.core.images import save_png
    from nar.core.memory import memory_guard
    from nar.tokenizer import tiling
    image_path, out_path = Path(image_path), Path(out_path)
    if out_path.resolve() == image_path.resolve() or (
            out_path.exists() and image_path.exists() and out_path.samefile(image_path)):
        raise NarError(f"refusing to overwrite the input image {image_path}; pick another output path")
    if out_path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"):
        raise NarError(f"output {out_path} needs an image suffix (.png recommended)")
    width, height = _image_size(image_path)
    model = load_tokenizer(ckpt, device=device)
    f = model.factor
    pad_h, pad_w = -height % f, -width % f
    plan = tiling.plan(model.cfg, height + pad_h, width + pad_w, tile=tile, limit=max_memory,
                       what="reconstruct", buffer_bytes_per_pixel=RECONSTRUCT_BYTES_PER_PIXEL,
                       size=(width, height))
    size = f"{width}x{height}"
    with memory_guard(f"reading the {size} image {image_path}"):
        array = _read_rgb(image_path)                                   # (H, W, 3) uint8
        height, width = array.shape[:2]                                 # after EXIF rotation
        pad_h, pad_w = -height % f, -width % f
        mode = "reflect" if pad_h < height and pad_w < width else "edge"
        padded = np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode) if (pad_h or pad_w) else array
    x = torch.from_numpy(padded).permute(2, 0, 1)[None]                 # (1, 3, H', W') uint8 view

    def to_float(t: torch.Tensor) -> torch.Tensor:
        return t.to(model.device).float().div_(127.5).sub_(1.0)

    how = " in tiles" if plan.tiled else ""
    with memory_guard(f"encoding the {size} image{how}"), torch.inference_mode():
        tokens = (tiling.tiled_encode(model, x, convert=to_float) if plan.tiled
                  else model.encode(to_float(x)))
    del padded, x
    with memory_guard(f"decoding the {size} image{how}"), torch.inference_mode():
        recon = (tiling.tiled_decode(model, tokens, plan.tile, plan.overlap) if plan.tiled
                 else model.decode_tokens(tokens).float().cpu())
    with memory_guard(f"writing the {size} reconstruction to {out_path}"):
        out, sq_err = np.empty_like(array), 0.0
        for r in range(0, height, 256):                                 # rows at a time: no full-size temporaries
            rec = recon[0, :, r:min(r + 256, height), :width].clamp(-1, 1)
            ref = torch.from_numpy(array[r:r + 256]).permute(2, 0, 1).float().div(127.5).sub(1.0)
            sq_err += float((rec - ref).double().square().sum())
            out[r:r + 256] = rec.add(1).mul(127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        del recon
        save_png(out, out_path)                                         # atomic: nothing half-written
    mse = sq_err / (3 * height * width)
    return {"out": str(out_path), "size": [width, height], "grid": list(tokens.shape[-2:]),
            "psnr": float(10 * np.log10(4.0 / max(mse, 1e-12))), "tiled": plan.tiled}


# bytes per pixel a reconstruction holds besides the network: the uint8 input (and a padded
# copy), the float32 result, the uint8 output and the PNG encoder's copy
RECONSTRUCT_BYTES_PER_PIXEL = 24


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, before any pixel is decoded. Pillow's
    decompression-bomb guard is replaced by the memory estimate, except for sizes beyond it."""
    import warnings

    from PIL import Image, UnidentifiedImageError
    from nar.core.memory import NarMemoryError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return img.size
    except Image.DecompressionBombError as e:
        raise NarMemoryError(f"cannot read image {path}: {str(e).splitlines()[0]}") from None
    except (OSError, UnidentifiedImageError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NarError(f"cannot read image {path}: {reason}") from None


def _read_rgb(path: Path) -> np.ndarray:
    """The image as an (H, W, 3) uint8 array (EXIF-rotated, alpha over white), after the size
    passed the memory check: Pillow's decompression-bomb warning is not repeated."""
    import warnings

    from PIL import Image
    from nar.core.images import load_image
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = load_image(path)
    array = np.asarray(image)
    del image
    return array if array.flags.writeable else np.array(array)


# ---- token cache ---------------------------------------------------------------------------
@torch.no_grad()
def encode_to_cache(ckpt: str | Path, out: str | Path, data_dir: str | Path | None = None,
                    n: int | None = 1000, size: int = 256, seed: int = 0, batch_size: int = 16,
                    device: str = "auto", progress: bool = True, tile: bool | None = None,
                    max_memory: str | int | None = None) -> Path:
    """Encode a dataset once into a token cache (``nar.data.tokens``) that priors train on.
    Procedural data is ``LandscapeDataset(n, size, seed)`` with scene labels; a folder uses
    its labels (sub-folders or labels.json; all images when ``n`` is None); a shard folder
    its index's class names.

    Under torchrun each rank encodes its contiguous share of the images into
    ``out/rank-NNNNN`` and rank 0 writes ``out/index.json`` once all have finished, which
    `TokenCache` reads as one cache in the single-process order."""
    from nar.data.tokens import SHARD_DIR, TokenCacheWriter, check_new_cache, write_shard_index
    from nar.train import distributed
    w = distributed.init()
    ckpt, out = Path(ckpt), Path(out)
    check_new_cache(out)
    distributed.barrier()            # every rank has checked --out before any rank writes to it
    model = load_tokenizer(ckpt, device=device)
    grid = model.grid(size, size)
    from nar.tokenizer.tiling import encode_images, plan
    plan(model.cfg, size, size, parts=("encode",), tile=tile, limit=max_memory, what="encode",
         buffer_bytes_per_pixel=12 * batch_size, batch=batch_size)   # refused before any image is made
    count, class_names, source, items = _images(data_dir, n, size, seed, held_out=False, rank_part=True)
    if count < w.size:
        raise NarError(f"{count} images for {w.size} processes; encode with fewer processes")
    start, stop = distributed.rank_range(count)
    header = {"codebook_size": model.codebook_size, "tokenizer_hash": model.hash,
              "tokenizer_path": str(ckpt.resolve()), "tokenizer_factor": model.factor,
              "class_names": class_names, "image_size": [size, size], "source": source}
    if w.distributed:
        header.update(rank=w.rank, world_size=w.size, first_index=start)
    writer = TokenCacheWriter(out / SHARD_DIR.format(w.rank) if w.distributed else out, stop - start, grid, header)
    counts = torch.zeros(model.codebook_size, dtype=torch.long)
    with progress_bar(progress and w.is_main, total=stop - start, desc="encode") as advance:
        for x, labels in _batches(items, batch_size):
            tokens = encode_images(model, x, tile=tile, max_memory=max_memory).cpu()
            writer.add(tokens, labels)
            counts += code_counts(tokens, model.codebook_size)
            advance(writer.count, usage_stats(counts))
    path = writer.close()
    if not w.distributed:
        return path
    distributed.barrier()            # every rank's shard is complete before the index names it
    if w.is_main:
        write_shard_index(out, [SHARD_DIR.format(r) for r in range(w.size)])
    distributed.barrier()
    return out
