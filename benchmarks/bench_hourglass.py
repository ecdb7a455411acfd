"""Hourglass vs flat transformer of the same total depth: time, peak memory, FLOPs.

    PYTHONPATH=. python benchmarks/bench_hourglass.py                 # CPU, 32² and 64² grids
    PYTHONPATH=. python benchmarks/bench_hourglass.py --device cuda --batch 8 --dtype bf16

Writes benchmarks/results/hourglass_<device>[_train].json and .md. Times are the median of
``--repeats`` runs after ``--warmup`` runs (with torch.cuda.synchronize on GPU), taken
round-robin over the models so that background load skews them alike. Peak memory
is torch.cuda.max_memory_allocated on CUDA; on CPU it is the peak resident-set growth over
one run, sampled every millisecond from /proc after glibc's malloc_trim (an estimate).
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import threading
import time
from dataclasses import asdict
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from nar.eval.machine import DTYPES, device_name, int_tuple, setup_device
from nar.nn.hourglass import Hourglass2D, HourglassConfig, count_flops


def _release_free_heap():
    """Hand freed heap pages back to the OS (glibc), so the next run's growth is visible."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class RssPeak:
    """Peak resident-set growth (bytes) while the block runs, sampled from /proc/self/statm."""

    def __enter__(self):
        _release_free_heap()
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _sample(self):
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        self.bytes = self.peak - self.base


def make_step(net: torch.nn.Module, x: torch.Tensor, mode: str):
    """One timed unit of work: a forward pass (inference) or forward + backward (train)."""
    cuda = x.device.type == "cuda"
    net.train(mode == "train")

    def step():
        if mode == "train":
            net(x).float().square().mean().backward()
            net.zero_grad(set_to_none=True)
        else:
            with torch.inference_mode():
                net(x)
        if cuda:
            torch.cuda.synchronize()

    return step


def peak_memory(step, device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        return torch.cuda.max_memory_allocated() - before
    with RssPeak() as rss:
        step()
    return rss.bytes


def time_interleaved(steps: dict, repeats: int) -> dict[str, list[float]]:
    """Round-robin over the models, so load from other processes hits them all alike."""
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="fp32", choices=DTYPES)
    p.add_argument("--grids", type=int_tuple, default=(32, 64), help="square grid sides, e.g. 32,64")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--dim-head", type=int, default=32)
    p.add_argument("--ff-mult", type=int, default=4)
    p.add_argument("--depths", type=int_tuple, default=(2, 8, 2))
    p.add_argument("--shorten", type=int_tuple, default=(2,))
    p.add_argument("--mode", choices=("forward", "train"), default="forward",
                   help="forward: inference only; train: forward + backward")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = p.parse_args(argv)

    device = setup_device(args.device, args.threads)
    dtype = DTYPES[args.dtype]
    torch.manual_seed(0)

    common = dict(dim=args.dim, heads=args.heads, dim_head=args.dim_head, ff_mult=args.ff_mult)
    models = {
        "hourglass": HourglassConfig(**common, depths=args.depths, shorten=args.shorten),
        "flat": HourglassConfig(**common, depths=(sum(args.depths),), shorten=()),
    }

    console = Console(width=max(Console().width, 100))
    rows = []
    for side in args.grids:
        console.print(f"[dim]{side}x{side} ...[/dim]")
        nets = {name: Hourglass2D(cfg).to(device=device, dtype=dtype) for name, cfg in models.items()}
        x = torch.randn(args.batch, side, side, args.dim, device=device, dtype=dtype)
        steps = {name: make_step(net, x, args.mode) for name, net in nets.items()}
        for step in steps.values():
            for _ in range(args.warmup):
                step()
        memory = {name: peak_memory(step, device) for name, step in steps.items()}
        times = time_interleaved(steps, args.repeats)
        for name, cfg in models.items():
            median = statistics.median(times[name])
            rows.append({
                "model": name, "depths": list(cfg.depths), "shorten": list(cfg.shorten),
                "grid": [side, side], "batch": args.batch,
                "params": sum(p.numel() for p in nets[name].parameters() if p.requires_grad),
                "gflops_per_image": count_flops(cfg, side, side) / 1e9,  # forward, per image
                "ms_per_image": 1e3 * median / args.batch,
                "time_s": median, "times_s": times[name], "peak_mem_bytes": memory[name],
            })
        del nets, steps, x

    for row in rows:  # relative to the flat model on the same grid
        flat = next(r for r in rows if r["model"] == "flat" and r["grid"] == row["grid"])
        row["speedup_vs_flat"] = flat["time_s"] / row["time_s"]
        row["flops_ratio_vs_flat"] = row["gflops_per_image"] / flat["gflops_per_image"]

    where = device_name(device) + ("" if device.type == "cuda" else f", {torch.get_num_threads()} threads")
    title = (f"Hourglass {tuple(args.depths)} / shorten {tuple(args.shorten)} vs flat "
             f"{sum(args.depths)} layers; dim {args.dim}, {args.heads}×{args.dim_head} heads, "
             f"{args.mode}, batch {args.batch}, {args.dtype}, {where}")
    headers = ["model", "grid", "params M", "GFLOP/img", "FLOPs/flat", "ms/img", "speed-up",
               "peak MiB"]
    cells = [[r["model"], f"{r['grid'][0]}×{r['grid'][1]}", f"{r['params'] / 1e6:.2f}",
              f"{r['gflops_per_image']:.1f}", f"{r['flops_ratio_vs_flat']:.2f}×",
              f"{r['ms_per_image']:.1f}", f"{r['speedup_vs_flat']:.2f}×",
              f"{r['peak_mem_bytes'] / 2**20:.0f}"] for r in rows]

    table = Table(title=title)
    for h in headers:
        table.add_column(h, justify="left" if h == "model" else "right")
    for c in cells:
        table.add_row(*c)
    console.print(table)

    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"hourglass_{device.type}{'_train' if args.mode == 'train' else ''}"
    meta = {"device": where, "torch": torch.__version__, "dtype": args.dtype,
            "load_average_at_end": os.getloadavg(),
            "mode": args.mode, "warmup": args.warmup, "repeats": args.repeats,
            "memory": "cuda max_memory_allocated" if device.type == "cuda"
            else "peak RSS growth, sampled", "configs": {k: asdict(v) for k, v in models.items()}}
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    md = [f"# {title}", "", "| " + " | ".join(headers) + " |",
          "|" + "|".join("---" for _ in headers) + "|"]
    md += ["| " + " | ".join(c) + " |" for c in cells]
    md += ["", f"Median of {args.repeats} runs after {args.warmup} warm-up; FLOPs are analytic "
           "matmul FLOPs of one forward pass per image (`count_flops`); speed-up is flat time / "
           "model time on the same grid; memory: " + meta["memory"] + "; load average at the end: "
           + ", ".join(f"{v:.1f}" for v in meta["load_average_at_end"]) + "."]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    console.print(f"saved {stem}.json and {stem}.md")


if __name__ == "__main__":
    main()
