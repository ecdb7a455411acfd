"""MaskGIT sampling speed: wall time per image vs decoding steps and grid size.

    PYTHONPATH=. python benchmarks/bench_maskgit.py                     # CPU, fp32
    PYTHONPATH=. python benchmarks/bench_maskgit.py --device cuda --dtype bf16

Sampling only (no tokenizer decode; `nar bench` adds decoding and the side-by-side with the
other priors), batch 1 by default, a realistic model with random weights
(``configs/priors/maskgit.toml``: dim 512, depth 12, 8 heads) and a 1024-code vocabulary.
Random weights cost the same as trained ones: every step is one full forward pass over
the grid whatever the logits say. Classifier-free guidance is off (``--cfg`` turns it on;
it doubles the batch of each pass, not the number of passes).

Times are the median of ``--repeats`` runs after one warm-up run per grid, with
torch.cuda.synchronize before and after each run on GPU. A cell whose predicted time
(the latest measured seconds per analytic GFLOP × the cell's GFLOP) exceeds
``--cell-budget`` seconds is skipped and marked so, never reported as a time: on a CPU
this drops the large-grid, many-step cells.

Writes benchmarks/results/maskgit_speed_<device>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from nar.eval.machine import DTYPES, add_run_args, device_name, int_tuple, setup_device, sync
from nar.priors import build_prior

REPO = Path(__file__).resolve().parents[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dtype", default=None, choices=DTYPES,
                   help="autocast dtype for the network (default: fp32 on CPU, bf16 on CUDA)")
    p.add_argument("--config", type=Path, default=REPO / "configs/priors/maskgit.toml")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. depth=8")
    p.add_argument("--codebook-size", type=int, default=1024)
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--grids", type=int_tuple, default=(16, 32, 64), help="square grid sides")
    p.add_argument("--steps", type=int_tuple, default=(4, 8, 12, 24))
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--cfg", type=float, default=1.0, help="classifier-free guidance scale (1 = off)")
    add_run_args(p, Path(__file__).parent / "results", cpu_cell_budget=75.0)
    args = p.parse_args(argv)

    from nar.core.config import parse_overrides

    device = setup_device(args.device, args.threads)
    cuda = device.type == "cuda"
    dtype_name = args.dtype or ("bf16" if cuda else "fp32")
    dtype = DTYPES[dtype_name]
    repeats = args.repeats or (3 if cuda else 1)
    budget = args.cell_budget if args.cell_budget is not None else (None if cuda else 75.0)

    torch.manual_seed(0)
    prior = build_prior("maskgit", args.config, parse_overrides(args.set), codebook_size=args.codebook_size,
                        num_classes=args.num_classes, train_grid=(16, 16)).to(device).eval()
    params = sum(t.numel() for t in prior.parameters())
    cond = torch.zeros(args.batch, dtype=torch.long, device=device) if args.cfg != 1.0 else None

    def run(side: int, steps: int, seed: int) -> float:
        gen = torch.Generator(device=device).manual_seed(seed)
        sync(device)
        start = time.perf_counter()
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            out = prior.sample(args.batch, (side, side), steps=steps, cond=cond, cfg_scale=args.cfg,
                               generator=gen)
        sync(device)
        assert out.steps_run == steps and out.forward_passes == steps
        return time.perf_counter() - start

    def gflops_per_step(side: int) -> float:
        """Analytic FLOPs of one forward pass (all images of the batch, CFG doubling it)."""
        return prior.forward_flops((side, side)) * args.batch * (2 if cond is not None else 1) / 1e9

    console = Console(width=max(Console().width, 100))
    rows = []
    s_per_gflop = None  # latest measured speed; predicts the cost of cells not yet run
    for side in args.grids:
        gflops = gflops_per_step(side)
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        if budget is not None and s_per_gflop is not None and s_per_gflop * gflops * min(args.steps) > budget:
            warm = None  # even the cheapest cell is over budget: do not spend a warm-up on it
        else:
            warm = run(side, 1, seed=0)  # warm-up (one step); also a first speed estimate
            s_per_gflop = warm / gflops
        for steps in args.steps:
            row = {"grid": [side, side], "tokens": side * side, "steps": steps, "batch": args.batch,
                   "gflops_per_step": gflops}
            predicted = s_per_gflop * gflops * steps
            if budget is not None and predicted > budget:
                row.update(skipped=True, predicted_s=predicted)
                console.print(f"[yellow]{side}x{side}, {steps} steps: skipped "
                              f"(~{predicted:.0f}s predicted > {budget:.0f}s budget)[/yellow]")
                rows.append(row)
                continue
            times = [run(side, steps, seed=1 + i) for i in range(repeats)]
            median = statistics.median(times)
            s_per_gflop = median / (gflops * steps)
            row.update(skipped=False, time_s=median, times_s=times, s_per_image=median / args.batch,
                       ms_per_step=1e3 * median / steps, forward_passes=steps,
                       tokens_per_s=side * side * args.batch / median,
                       tflops_per_s=gflops * steps / median / 1e3)
            console.print(f"[dim]{side}x{side}, {steps} steps: {median / args.batch:.3f} s/image[/dim]")
            rows.append(row)
        if cuda:
            peak = torch.cuda.max_memory_allocated(device)
            for row in rows:
                if row["grid"] == [side, side]:
                    row["peak_mem_bytes"] = peak

    where = device_name(device) + ("" if cuda else f", {torch.get_num_threads()} threads")
    cfg = prior.cfg
    title = (f"MaskGIT sampling, dim {cfg.dim} depth {cfg.depth} heads {cfg.heads} "
             f"({params / 1e6:.1f}M params, {args.codebook_size} codes), batch {args.batch}, "
             f"{dtype_name}, cfg {args.cfg:g}, {where}")
    headers = ["grid", "steps", "GFLOP / step", "s / image", "ms / step", "GFLOP/s"] + (["peak MiB"] if cuda else [])

    def cells(r):
        if r["skipped"]:
            return [f"{r['grid'][0]}×{r['grid'][1]}", str(r["steps"]), f"{r['gflops_per_step']:.1f}",
                    f"skipped (~{r['predicted_s']:.0f} s)", "", ""] + ([""] if cuda else [])
        out = [f"{r['grid'][0]}×{r['grid'][1]}", str(r["steps"]), f"{r['gflops_per_step']:.1f}",
               f"{r['s_per_image']:.3f}", f"{r['ms_per_step']:.1f}", f"{1e3 * r['tflops_per_s']:.1f}"]
        return out + ([f"{r.get('peak_mem_bytes', 0) / 2**20:.0f}"] if cuda else [])

    table = Table(title=title)
    for h in headers:
        table.add_column(h, justify="right")
    for r in rows:
        table.add_row(*cells(r))
    console.print(table)

    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"maskgit_speed_{device.type}"
    meta = {"device": where, "torch": torch.__version__, "dtype": dtype_name, "batch": args.batch,
            "cfg_scale": args.cfg, "repeats": repeats, "warmup": "one 1-step run per grid",
            "cell_budget_s": budget, "params": params, "codebook_size": args.codebook_size,
            "config": asdict(cfg), "load_average_at_end": os.getloadavg()}
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    skipped = [f"{r['grid'][0]}×{r['grid'][1]} × {r['steps']} steps" for r in rows if r["skipped"]]
    md = [f"# {title}", "", "| " + " | ".join(headers) + " |", "|" + "|".join("---:" for _ in headers) + "|"]
    md += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    md += ["", f"Sampling only (no decode), random weights, median of {repeats} run(s) after one warm-up "
           f"run per grid; one forward pass per step; GFLOP are analytic matmul FLOPs of one pass (logits head counted on every token; the sampler runs it only on the still-masked ones). Load average at the end: "
           f"{', '.join(f'{x:.1f}' for x in meta['load_average_at_end'])}."]
    if skipped:
        md += ["", f"Skipped (predicted over the {budget:.0f} s per-cell budget): {', '.join(skipped)}."]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
