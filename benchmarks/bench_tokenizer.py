"""Tokenizer speed: encode and decode wall time per image at 256², 1024² and 2048².

    PYTHONPATH=. python benchmarks/bench_tokenizer.py                      # CPU, default models
    PYTHONPATH=. python benchmarks/bench_tokenizer.py --device cuda        # bf16 autocast on GPU
    PYTHONPATH=. python benchmarks/bench_tokenizer.py --ckpt runs/tokenizer_f16_small/model.safetensors

Models: each ``--ckpt`` (trained weights) and each ``--config`` (random weights: a conv net
costs the same whatever its weights). Default: ``configs/tokenizer/f16_small.toml`` and
``configs/tokenizer/f32_1024.toml``. Batch 1 (``--batch``); times are the median of
``--repeats`` runs after ``--warmup`` runs, with torch.cuda.synchronize around each run on
GPU; peak GPU memory per cell. Decoding uses the decode-only model a sampler loads. Sizes
run smallest first; a cell predicted (from the last measured time × the pixel ratio) to take
longer than ``--cell-budget`` seconds is skipped and marked so, never reported as a time.

Writes benchmarks/results/tokenizer_speed_<device>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nar.core.config import load_config  # noqa: E402
from nar.eval.machine import device_name, setup_device, sync  # noqa: E402
from nar.tokenizer import load_tokenizer  # noqa: E402
from nar.tokenizer.config import TokenizerConfig  # noqa: E402
from nar.tokenizer.model import DECODE_PREFIXES, VQGAN  # noqa: E402

DEFAULT_CONFIGS = [REPO / "configs/tokenizer/f16_small.toml", REPO / "configs/tokenizer/f32_1024.toml"]


def timed(fn, device: torch.device, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build_models(args, device: torch.device) -> list[tuple[str, VQGAN, VQGAN]]:
    """(name, full model, decode-only model) for every --ckpt and --config."""
    models = []
    for ckpt in args.ckpt:
        models.append((f"{Path(ckpt).parent.name}/{Path(ckpt).name}", load_tokenizer(ckpt, device=device),
                       load_tokenizer(ckpt, decode_only=True, device=device)))
    for config in args.config or ([] if args.ckpt else DEFAULT_CONFIGS):
        cfg = load_config(TokenizerConfig, config)
        torch.manual_seed(0)
        full = VQGAN(cfg).eval().requires_grad_(False).to(device)
        decoder = VQGAN(cfg, decode_only=True).eval().requires_grad_(False)
        decoder.load_state_dict({k: v for k, v in full.state_dict().items() if k.startswith(DECODE_PREFIXES)})
        models.append((f"{Path(config).stem} (random init)", full, decoder.to(device)))
    return models


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--ckpt", action="append", default=[], help="trained tokenizer checkpoint (repeatable)")
    p.add_argument("--config", action="append", default=[], help="tokenizer config, random weights (repeatable)")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 2048])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--cell-budget", type=float, default=120.0, help="skip cells predicted to take longer (s)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    args = p.parse_args(argv)

    device = setup_device(args.device, args.threads)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else torch.autocast("cpu", enabled=False))
    rows = []
    console = Console()
    for name, full, decoder in build_models(args, device):
        last = None   # (pixels, seconds) of the latest measured call, to predict the next size
        for size in sorted(args.sizes):
            h, w = full.grid(size, size)
            row = {"model": name, "factor": full.factor, "codebook_size": full.codebook_size,
                   "size": size, "grid": f"{h}x{w}", "batch": args.batch}
            pixels = args.batch * size * size
            predicted = None if last is None else last[1] * pixels / last[0]
            if predicted is not None and predicted > args.cell_budget:
                row.update(skipped=f"predicted {predicted:.0f}s > budget {args.cell_budget:.0f}s")
                rows.append(row)
                console.print(f"{name} {size}²: skipped ({row['skipped']})")
                continue
            x = torch.rand(args.batch, 3, size, size, device=device) * 2 - 1
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            with torch.no_grad(), autocast:
                tokens = full.encode(x)
                encode_s = timed(lambda: full.encode(x), device, args.warmup, args.repeats)
                decode_s = timed(lambda: decoder.decode_tokens(tokens), device, args.warmup, args.repeats)
            row.update(encode_ms=round(1000 * encode_s, 1), decode_ms=round(1000 * decode_s, 1),
                       total_ms=round(1000 * (encode_s + decode_s), 1),
                       decode_mpix_per_s=round(pixels / decode_s / 1e6, 3))
            if device.type == "cuda":
                row["peak_mem_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
            rows.append(row)
            last = (pixels, (encode_s + decode_s) * (args.warmup + args.repeats))
            console.print(f"{name} {size}²: encode {row['encode_ms']} ms, decode {row['decode_ms']} ms")

    env = {"device": device_name(device),
           "threads": torch.get_num_threads(), "torch": torch.__version__,
           "dtype": "bf16 autocast" if device.type == "cuda" else "fp32",
           "command": "python benchmarks/bench_tokenizer.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "cpu_count": os.cpu_count()}
    table = Table(title=f"tokenizer speed · {args.device} · batch {args.batch} · {env['dtype']}")
    columns = ["model", "factor", "size", "grid", "encode_ms", "decode_ms", "total_ms", "peak_mem_gb"]
    for col in columns:
        table.add_column(col, justify="left" if col == "model" else "right")
    for row in rows:
        cells = [str(row.get(c, "")) for c in columns]
        if "skipped" in row:
            cells[4] = cells[5] = cells[6] = "skipped"
        table.add_row(*cells)
    console.print(table)

    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"tokenizer_speed_{device.type}"
    (args.out / f"{stem}.json").write_text(json.dumps({"env": env, "rows": rows}, indent=2) + "\n")
    lines = [f"# Tokenizer speed ({device.type})", "",
             f"`{env['command']}` · {env['device']} · {env['threads']} threads · torch {env['torch']} · "
             f"{env['dtype']} · batch {args.batch} · median of {args.repeats} after {args.warmup} warm-up",
             "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [str(row.get(c, "")) for c in columns]
        if "skipped" in row:
            cells[4] = cells[5] = cells[6] = f"skipped ({row['skipped']})"
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Random-init rows time the architecture only (speed does not depend on the weights); "
              "decode uses the decode-only model (no encoder loaded)."]
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    console.print(f"wrote {args.out / stem}.json / .md")


if __name__ == "__main__":
    main()
