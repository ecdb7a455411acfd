"""AR sampling speed: KV-cached vs uncached raster sampling at 16², 32² and 64² token grids.

    PYTHONPATH=. python benchmarks/bench_ar.py                         # CPU, ~4-5 min on 2 shared cores
    PYTHONPATH=. python benchmarks/bench_ar.py --device cuda
    PYTHONPATH=. python benchmarks/bench_ar.py --config configs/priors/ar.toml --grids 16,32

Batch 1, random weights (speed does not depend on training), token sampling only (the
decoder is excluded; `nar bench` adds it). With an f16 tokenizer the grids are 256², 512²
and 1024² images. Each grid gets a model whose training grid is that grid, so the whole
sequence is sampled with one KV cache (no sliding window).

Two kinds of figures, always labelled:

* measured — one full ``prior.sample(1, grid, ...)`` call after warm-up (with
  torch.cuda.synchronize on GPU);
* estimated — the cost of one sampling step is timed at ``--points`` sequence lengths (the
  midpoints of equal bins over 1…h·w) and summed over the bins (midpoint rule). For the
  cached path a step is one incremental forward on a static cache filled to that length
  (median of 3; the decode path ``sample`` runs); for the
  uncached path it is a full forward of that prefix (exactly what ``use_cache=False`` runs
  per token). Where a grid is also measured, both are shown, which checks the estimator.

Uncached sampling at 64×64 re-runs up to 4096 positions for each of 4096 tokens; it is
only ever estimated. Writes benchmarks/results/ar_speed_<device>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from nar.core.config import load_config
from nar.eval.machine import device_name, int_tuple, setup_device, sync
from nar.priors.ar import ARConfig, ARPrior
from nar.sampling.filters import sample_logits

RESULTS = Path(__file__).resolve().parent / "results"


def clock(fn, device: torch.device) -> tuple[float, object]:
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t0, out


def build(cfg: ARConfig, codebook: int, grid: tuple[int, int], device: torch.device) -> ARPrior:
    torch.manual_seed(0)
    return ARPrior(cfg, codebook, 0, grid).to(device).eval()


def estimate(prior: ARPrior, grid: tuple[int, int], points: int, settings: dict, device: torch.device) -> dict:
    """Per-step costs at ``points`` sequence lengths -> estimated seconds per image, both paths."""
    h, w = grid
    n_tok = h * w
    g = torch.Generator(device=device).manual_seed(0)
    ids = prior.class_ids(None, 1)
    tokens = torch.randint(prior.codebook_size, (1, n_tok), generator=g, device=device)
    edges = [round(i * n_tok / points) for i in range(points + 1)]
    cached_total = uncached_total = 0.0
    rows = []
    fast = prior._fast_decoder(False, prior.samples_in_bf16())  # the static-cache decode path sample() runs (eager)
    fast.prepare(w, compiled=False)
    with torch.inference_mode(), prior.sampling_precision():
        for a, b in zip(edges[:-1], edges[1:]):
            if b <= a:
                continue
            length = max(1, (a + b) // 2)  # positions fed, the last one predicting token length-1

            def full():  # one uncached step: the whole prefix through x-transformers, then sample
                logits, _ = prior._step(ids, tokens[:, :length - 1], 0, w, None, False, 1.0)
                sample_logits(logits, generator=g, **settings)

            t_full, _ = clock(full, device)
            cache = fast.new_cache(1, n_tok)
            fast.logits(ids, tokens[:, :length - 1], cache)  # the prefix, written into the static cache

            def step(c=cache):  # one cached step: the next position on top of that prefix
                c.filled = length  # rewound, so every timing writes the same position
                logits = fast.logits(ids, tokens[:, length - 1:length], c)
                return sample_logits(logits, generator=g, **settings)

            t_step = statistics.median(clock(step, device)[0] for _ in range(3))
            cached_total += (b - a) * t_step
            uncached_total += (b - a) * t_full
            rows.append({"length": length, "tokens_in_bin": b - a, "cached_step_s": t_step,
                         "uncached_step_s": t_full})
    return {"cached_s": cached_total, "uncached_s": uncached_total, "points": rows}


def run(args) -> dict:
    device = setup_device(args.device, args.threads if args.device == "cpu" else None)
    cfg = load_config(ARConfig, args.config) if args.config else ARConfig()
    settings = {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p}
    grids = [(g, g) for g in args.grids]
    measure_cached = args.measure_cached_max if args.measure_cached_max is not None else (
        4096 if device.type == "cuda" else 1024)
    measure_uncached = args.measure_uncached_max if args.measure_uncached_max is not None else (
        1024 if device.type == "cuda" else 256)
    console = Console()
    rows, params = [], None
    for grid in grids:
        n_tok = grid[0] * grid[1]
        prior = build(cfg, args.codebook, grid, device)
        params = sum(p.numel() for p in prior.parameters())
        console.print(f"[bold]{grid[0]}x{grid[1]}[/]: warm-up ...")
        g = torch.Generator(device=device).manual_seed(args.seed)
        prior.sample(1, (min(4, grid[0]), min(4, grid[1])), generator=g, **settings)
        est = estimate(prior, grid, args.points, settings, device)
        result = {"grid": list(grid), "tokens": n_tok, "estimate": est}
        for mode, limit in (("cached", measure_cached), ("uncached", measure_uncached)):
            entry = {"estimated_s": est[f"{mode}_s"]}
            if n_tok <= limit:
                console.print(f"  measuring {mode} ({n_tok} tokens) ...")
                g = torch.Generator(device=device).manual_seed(args.seed)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                secs, out = clock(lambda: prior.sample(1, grid, generator=g, use_cache=mode == "cached",
                                                       **settings), device)
                entry.update(measured_s=secs, forward_passes=out.forward_passes)
                if device.type == "cuda":
                    entry["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
            result[mode] = entry
        rows.append(result)
        del prior
    return {"device": str(device), "device_name": device_name(device),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "batch": 1,
            "model": asdict(cfg), "codebook_size": args.codebook, "params": params, "sampling": settings,
            "points": args.points, "rows": rows}


def seconds(entry: dict) -> tuple[float, str]:
    if "measured_s" in entry:
        return entry["measured_s"], "measured"
    return entry["estimated_s"], "estimated"


def speedup(r: dict) -> str:
    """Uncached / cached time, like for like: both measured when both were, else both estimated."""
    c, u = r["cached"], r["uncached"]
    if "measured_s" in c and "measured_s" in u:
        return f"{u['measured_s'] / c['measured_s']:.1f}x"
    return f"{u['estimated_s'] / c['estimated_s']:.1f}x (est.)"


def table_rows(res: dict) -> list[list[str]]:
    out = []
    for r in res["rows"]:
        h, w = r["grid"]
        n = r["tokens"]
        for mode in ("cached", "uncached"):
            entry = r[mode]
            t, how = seconds(entry)
            out.append([f"{h}x{w}", f"{16 * h}²", mode, how, f"{t:.2f}", f"{n / t:.1f}", f"{1000 * t / n:.1f}",
                        f"{entry['estimated_s']:.2f}", speedup(r) if mode == "cached" else ""])
    return out


HEADERS = ["grid", "image (f16)", "mode", "how", "s / image", "tokens / s", "ms / token",
           "estimate (s)", "KV-cache speed-up"]


def save(res: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = res["device"].split(":")[0]
    js = out_dir / f"ar_speed_{tag}.json"
    md = out_dir / f"ar_speed_{tag}.md"
    js.write_text(json.dumps(res, indent=2))
    m = res["model"]
    lines = [f"# AR sampling speed ({res['device']}, {res['device_name']})", "",
             f"Model: dim {m['dim']}, depth {m['depth']}, heads {m['heads']}×{m['dim_head']}, "
             f"{res['params'] / 1e6:.1f}M parameters, codebook {res['codebook_size']}; batch 1; "
             f"sampling {res['sampling']}; torch {res['torch']}, {res['threads']} thread(s). "
             "Token sampling only (no decode).", "",
             "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(res)]
    lines += ["", f"*estimated*: per-step cost timed at {res['points']} sequence lengths and summed over "
              "equal bins (midpoint rule); the *estimate (s)* column is shown for every row, beside a "
              "measured run it checks the estimator. The speed-up compares like with like (both measured, "
              "else both estimated). Uncached 64×64 is never run in full (4096 full-prefix forwards)."]
    if res.get("wall_s"):
        lines.append(f"Benchmark wall time: {res['wall_s']:.0f} s.")
    md.write_text("\n".join(lines) + "\n")
    return js, md


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--config", default=None, help="ARConfig TOML (default: ARConfig(), dim 512 depth 12)")
    ap.add_argument("--codebook", type=int, default=1024)
    ap.add_argument("--grids", type=int_tuple, default=[16, 32, 64])
    ap.add_argument("--points", type=int, default=8, help="sequence lengths timed for the estimates")
    ap.add_argument("--measure-cached-max", type=int, default=None,
                    help="run cached sampling in full up to this many tokens (default 1024 CPU, 4096 GPU)")
    ap.add_argument("--measure-uncached-max", type=int, default=None,
                    help="run uncached sampling in full up to this many tokens (default 256 CPU, 1024 GPU)")
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU intra-op threads (1 by default: on a small shared CPU more threads spin-wait)")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top-k", type=int, default=None)
    ap.add_argument("--top-p", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--from-json", type=Path, default=None, help="re-render a saved result, run nothing")
    args = ap.parse_args()
    if args.from_json:
        res = json.loads(args.from_json.read_text())
    else:
        t0 = time.perf_counter()
        res = run(args)
        res["wall_s"] = time.perf_counter() - t0
    table = Table(title=f"AR sampling, batch 1, {res['device']} ({res['params'] / 1e6:.1f}M params)")
    for h in HEADERS:
        table.add_column(h, justify="right")
    for row in table_rows(res):
        table.add_row(*row)
    Console(width=160).print(table)
    js, md = save(res, args.out)
    Console().print(f"saved {js} and {md}")


if __name__ == "__main__":
    main()
