"""`nar sr eval`: 2x super-resolution of held-out procedural renders against the true 2x renders.

For each held-out seed the generator paints the scene at (2L)² and at L²: by default with 2x
supersampling, i.e. the (2L)² render box-averaged (``low_res="render"`` paints a plain L²
render, which disagrees with the 2x render at 1x by 31-40 dB). The L² image is upscaled by the
SR net (tiled, as `nar upscale` runs it) and by bicubic interpolation, and both
are compared with the true (2L)² render: PSNR (whole image, [0, 1] scale) and sharpness
(`nar.eval.sharpness`: gradient energy and high-frequency share, also as a ratio to the true
renders'). Seeds are the tokenizer's held-out range, disjoint from every training seed.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from nar.core.errors import NarError

HELD_OUT_SET = 17   # evaluation set index (held_out_seed(17, i)); training snapshots use set 0


def psnr_whole(x: torch.Tensor, y: torch.Tensor) -> float:
    """PSNR in dB over all pixels of all images ([-1, 1] inputs, [0, 1] scale)."""
    mse = ((x.double().clamp(-1, 1) - y.double().clamp(-1, 1)) / 2).pow(2).mean()
    return float(10 * torch.log10(1.0 / mse.clamp(min=1e-12)))


def evaluate_sr(ckpt=None, n: int = 8, size: int = 1024, seed: int = HELD_OUT_SET, tile: int | None = None,
                out_json: str | Path | None = None, low_res: str = "supersampled", tokenizer: str | Path | None = None,
                log=print) -> dict:
    """SR against the true renders of held-out scenes. ``low_res="decoded"`` feeds it the tokenizer's
    round trip of the supersampled render (``tokenizer``: its checkpoint, default the shipped one),
    the input a prior's draw gives it."""
    from nar.eval.sharpness import gradient_energy, high_freq_share
    from nar.pipelines.models import default_tokenizer_path
    from nar.pipelines.upscale import TILE, load_sr, upscale_tensor
    from nar.train.tokenizer_task import held_out_seed
    from nar.train.sr_task import check_low_res, load_decoding_tokenizer, render_pair
    check_low_res(low_res)
    if n < 1:
        raise NarError(f"--n must be >= 1 (got {n})")
    model = load_sr(ckpt)
    if not 16 <= size <= 4096 // model.scale:
        raise NarError(f"--size must be in [16, {4096 // model.scale}] (got {size})")
    tile = TILE if tile is None else tile
    tok = (load_decoding_tokenizer(tokenizer or default_tokenizer_path(), (size,)) if low_res == "decoded"
           else None)
    rows = {"sr": [], "bicubic": [], "true": []}
    per_image, seconds = [], 0.0
    for i in range(n):
        s = held_out_seed(seed, i)
        lo, hi = render_pair(s, size, model.scale, low_res, tok)
        t0 = time.perf_counter()
        sr = upscale_tensor(lo[None], model, tile)
        seconds += time.perf_counter() - t0
        bic = F.interpolate(lo[None], scale_factor=model.scale, mode="bicubic", align_corners=False).clamp(-1, 1)
        # how far the 1x render is from the true render box-averaged to 1x: detail the 2x render
        # adds or moves (new noise octaves, shifted cloud edges) that no upscaler can know
        consistency = psnr_whole(lo[None], F.avg_pool2d(hi[None], model.scale))
        per_image.append({"seed": s, "psnr_sr": psnr_whole(sr, hi[None]), "psnr_bicubic": psnr_whole(bic, hi[None]),
                          "psnr_lowres_consistency": consistency})
        rows["sr"].append(sr)
        rows["bicubic"].append(bic)
        rows["true"].append(hi[None])
    result = {"ckpt": str(model.source_path), "low_res": low_res,
              "tokenizer": str(tok.path) if tok is not None else None, "n": n, "size": size, "out_size": size * model.scale, "seed_set": seed,
              "tile": tile, "seconds_per_image_sr": seconds / n, "threads": torch.get_num_threads(), "per_image": per_image}
    for name, images in rows.items():
        batch = torch.cat(images)
        if name != "true":
            result[f"psnr_{name}"] = psnr_whole(batch, torch.cat(rows["true"]))
            result[f"psnr_{name}_mean_per_image"] = sum(p[f"psnr_{name}"] for p in per_image) / n
        result[f"gradient_energy_{name}"] = gradient_energy(batch)
        result[f"high_freq_share_{name}"] = high_freq_share(batch)
    result["psnr_lowres_consistency_mean_per_image"] = sum(p["psnr_lowres_consistency"] for p in per_image) / n
    for name in ("sr", "bicubic"):
        result[f"gradient_energy_ratio_{name}"] = result[f"gradient_energy_{name}"] / result["gradient_energy_true"]
        result[f"high_freq_ratio_{name}"] = result[f"high_freq_share_{name}"] / result["high_freq_share_true"]
    log(f"{n} held-out scenes {size}² ({low_res}) -> {size * model.scale}² vs the true renders: "
        f"PSNR SR {result['psnr_sr']:.2f} dB, bicubic {result['psnr_bicubic']:.2f} dB "
        f"(+{result['psnr_sr'] - result['psnr_bicubic']:.2f} dB; per-image mean +"
        f"{result['psnr_sr_mean_per_image'] - result['psnr_bicubic_mean_per_image']:.2f}); gradient energy "
        f"SR {result['gradient_energy_ratio_sr']:.3f}x true, bicubic {result['gradient_energy_ratio_bicubic']:.3f}x; "
        f"high-freq share SR {result['high_freq_ratio_sr']:.3f}x, bicubic {result['high_freq_ratio_bicubic']:.3f}x; "
        f"1x render vs box-averaged true render {result['psnr_lowres_consistency_mean_per_image']:.2f} dB "
        "(per-image mean; what the renders disagree on at 1x); "
        f"SR {result['seconds_per_image_sr']:.2f} s/image on {result['threads']} thread(s)")
    if out_json is not None:
        from nar.core.checkpoint import atomic_write_text
        atomic_write_text(out_json, json.dumps(result, indent=2))
    return result
