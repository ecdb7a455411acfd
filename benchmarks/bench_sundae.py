"""SUNDAE sampling speed at 1024²: the headline of nar.

    PYTHONPATH=. python benchmarks/bench_sundae.py                  # CPU (about 5 minutes)
    PYTHONPATH=. python benchmarks/bench_sundae.py --device cuda

1024² images are 32×32 tokens with an f32 tokenizer and 64×64 with an f16 one. For each
grid and batch size this times ``prior.sample`` with 20 steps (sampling only: `nar bench`
adds the tokenizer decode), and reports wall time per image, steps actually run, peak
memory and analytic forward FLOPs per image (``count_flops`` of the hourglass + the logits
head, × steps run).

Models (random weights, which cost exactly what trained ones cost per step):
- ``realistic``: ``configs/priors/sundae.toml`` (dim 512, 8 heads, depths (2, 8, 2),
  shorten (2,)), 1024 codes;
- ``light``: the same with dim 256, 4 heads and a nested hourglass (1, 1, 4, 1, 1) /
  (2, 2): a CPU-sized model, to show what fits the spec's 5 s budget on a small CPU.

Random weights never converge, so early stopping does not trigger and every run takes all
its steps; a trained model stops earlier (the steps it ran are what `nar sample` reports).
That also makes every step cost the same, which is what lets the CPU run time only
``--measure-steps`` steps (default 2 on CPU) and scale to 20: such rows say "scaled from
k steps" and are never passed off as full runs. On CUDA all 20 steps are timed (median of
3 after a warm-up). A cell predicted (from the measured seconds per GFLOP so far) to take
longer than ``--cell-budget`` seconds is skipped and marked so.

Writes benchmarks/results/sundae_speed_<device>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from nar.core.config import parse_overrides, to_dict
from nar.eval.machine import add_run_args, device_name, int_tuple, setup_device, sync
from nar.priors import build_prior

REPO = Path(__file__).resolve().parents[1]
PRESETS = {
    "realistic": {},
    "light": {"net.dim": 256, "net.heads": 4, "net.dim_head": 64, "net.depths": [1, 1, 4, 1, 1],
              "net.shorten": [2, 2]},
}
TARGET_S = 5.0  # the spec: a 1024² image in about 5 s, decode included


def grids_arg(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        h, _, w = item.strip().partition("x")
        out.append((int(h), int(w or h)))
    return out


class PeakMemory:
    """Peak memory of one run: CUDA allocator peak, or on CPU the growth of the process's
    peak RSS (VmHWM, reset through /proc/self/clear_refs) over the RSS before the run."""

    def __init__(self, device: torch.device):
        self.device = device

    @staticmethod
    def _status(key: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            except OSError:
                pass
            self.base = self._status("VmRSS")
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device) - self.base
        else:
            self.peak = max(0, self._status("VmHWM") - self.base)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=REPO / "configs/priors/sundae.toml")
    p.add_argument("--models", default=",".join(PRESETS), help=f"presets to run: {', '.join(PRESETS)}")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="extra config overrides for every model, e.g. net.dim=768")
    p.add_argument("--codebook-size", type=int, default=1024)
    p.add_argument("--grids", type=grids_arg, default=grids_arg("32x32,64x64"), help="e.g. 32x32,64x64,32x64")
    p.add_argument("--batches", type=int_tuple, default=None, help="default: 1,4 on CPU, 1,16 on CUDA")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--measure-steps", type=int, default=None,
                   help="steps actually timed (default: all on CUDA, 2 on CPU; scaled to --steps)")
    p.add_argument("--cfg", type=float, default=1.0, help="classifier-free guidance scale (1 = off)")
    add_run_args(p, Path(__file__).parent / "results", cpu_cell_budget=60.0)
    args = p.parse_args(argv)

    device = setup_device(args.device, args.threads)
    cuda = device.type == "cuda"
    batches = args.batches or ([1, 16] if cuda else [1, 4])
    measure = min(args.measure_steps or (args.steps if cuda else 2), args.steps)
    repeats = args.repeats or (3 if cuda else 1)
    budget = args.cell_budget if args.cell_budget is not None else (None if cuda else 60.0)
    console = Console(width=max(Console().width, 120))
    where = device_name(device) + ("" if cuda else f", {torch.get_num_threads()} threads")

    rows, models = [], {}
    for model_name in args.models.split(","):
        overrides = {**PRESETS[model_name], **parse_overrides(args.set)}
        torch.manual_seed(0)
        num_classes = 10 if args.cfg != 1.0 else 0
        prior = build_prior("sundae", args.config, overrides, codebook_size=args.codebook_size,
                            num_classes=num_classes, train_grid=(32, 32)).to(device).eval()
        cfg = prior.cfg
        params = sum(t.numel() for t in prior.parameters())
        models[model_name] = {"params": params, "config": to_dict(cfg), "overrides": overrides}
        precision = "bf16" if prior.samples_in_bf16() else "fp32"
        # the update rule of a real --steps run, also when only ``measure`` steps are timed
        proportion = cfg.update_proportion if args.steps >= cfg.partial_update_from else 1.0
        s_per_gflop = None

        def run(grid, batch, steps, seed):
            gen = torch.Generator(device=device).manual_seed(seed)
            cond = torch.zeros(batch, dtype=torch.long, device=device) if num_classes else None
            sync(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            out = prior.sample(batch, grid, steps=steps, cond=cond, cfg_scale=args.cfg,
                               update_proportion=proportion, generator=gen)
            sync(device)
            run.cpu_s = time.process_time() - cpu_start
            return time.perf_counter() - start, out

        for grid in args.grids:
            gflop_step_image = prior.forward_flops(grid) * (2 if num_classes else 1) / 1e9
            predicted = None if s_per_gflop is None else s_per_gflop * gflop_step_image * measure
            if budget is not None and predicted is not None and predicted > budget:
                warm = None
            else:
                warm, _ = run(grid, 1, 1, seed=0)  # warm-up; a first speed estimate
                s_per_gflop = warm / gflop_step_image
            for batch in batches:
                row = {"model": model_name, "params": params, "grid": list(grid), "batch": batch,
                       "steps": args.steps, "precision": precision, "cfg_scale": args.cfg,
                       "gflop_per_step_per_image": gflop_step_image}
                predicted = s_per_gflop * gflop_step_image * batch * measure * repeats
                if budget is not None and (warm is None or predicted > budget):
                    row.update(skipped=True, predicted_s=predicted)
                    console.print(f"[yellow]{model_name} {grid[0]}×{grid[1]} batch {batch}: skipped "
                                  f"(~{predicted:.0f} s predicted > {budget:.0f} s budget)[/yellow]")
                    rows.append(row)
                    continue
                times, cpu_times, peaks, steps_run = [], [], [], []
                for i in range(repeats):
                    with PeakMemory(device) as mem:
                        t, out = run(grid, batch, measure, seed=1 + i)
                    times.append(t)
                    cpu_times.append(run.cpu_s)
                    peaks.append(mem.peak)
                    steps_run.append(out.steps_run)
                measured = statistics.median(times)
                ran = statistics.median(steps_run)
                s_per_gflop = measured / (gflop_step_image * batch * ran)
                scale = args.steps / ran if measure < args.steps and ran == measure else 1.0
                total = measured * scale  # seconds for the whole --steps run of the batch
                steps_equiv = ran * scale
                row.update(skipped=False, measured_steps=measure, steps_run=int(ran) if scale == 1 else None,
                           scaled_from_steps=int(ran) if scale != 1 else None, times_s=times,
                           time_s=total, s_per_image=total / batch, ms_per_step=1e3 * measured / ran,
                           cpu_s_per_image=statistics.median(cpu_times) * scale / batch,
                           peak_mem_bytes=max(peaks), gflop_per_image=gflop_step_image * steps_equiv,
                           tflops_per_s=gflop_step_image * batch * ran / measured / 1e3)
                console.print(f"[dim]{model_name} {grid[0]}×{grid[1]} batch {batch}: "
                              f"{total / batch:.2f} s/image[/dim]")
                rows.append(row)

    headers = ["model", "params M", "grid", "batch", "steps run", "s / image", "CPU s / image", "ms / step",
               "GFLOP / image", "TFLOP/s", "peak MiB"]

    def cells(r):
        base = [r["model"], f"{r['params'] / 1e6:.1f}", f"{r['grid'][0]}×{r['grid'][1]}", str(r["batch"])]
        if r["skipped"]:
            return base + [f"skipped (~{r['predicted_s']:.0f} s)", "", "", "", "", "", ""]
        steps = (str(r["steps_run"]) if r["steps_run"] is not None
                 else f"{r['steps']} (scaled from {r['scaled_from_steps']})")
        return base + [steps, f"{r['s_per_image']:.2f}", f"{r['cpu_s_per_image']:.2f}", f"{r['ms_per_step']:.0f}",
                       f"{r['gflop_per_image']:.0f}", f"{r['tflops_per_s']:.3f}",
                       f"{r['peak_mem_bytes'] / 2**20:.0f}"]

    title = (f"SUNDAE sampling, 1024² = 32×32 (f32) / 64×64 (f16) tokens ({args.steps} steps, {args.codebook_size} codes, random weights, "
             f"cfg {args.cfg:g}), {where}")
    table = Table(title=title)
    for h in headers:
        table.add_column(h, justify="right")
    for r in rows:
        table.add_row(*cells(r))
    console.print(table)

    verdict = []
    for r in rows:
        if r["grid"] == [32, 32] and r["batch"] == 1 and not r["skipped"]:
            room = TARGET_S - r["s_per_image"]
            line = (f"{r['model']}: 32×32 sampling takes {r['s_per_image']:.2f} s per image at batch 1, "
                    + (f"leaving {room:.2f} s of the {TARGET_S:g} s budget for the decode"
                       if room > 0 else f"{-room:.2f} s over the {TARGET_S:g} s budget before any decode"))
            if not cuda:
                line += (f" (process CPU time {r['cpu_s_per_image']:.2f} s with {torch.get_num_threads()} "
                         f"thread(s): the wall time of an otherwise idle core)" if torch.get_num_threads() == 1
                         else f" (process CPU time {r['cpu_s_per_image']:.2f} s)")
            verdict.append(line)
    for line in verdict:
        console.print(line)

    load = os.getloadavg()
    meta = {"device": where, "torch": torch.__version__, "steps": args.steps, "measure_steps": measure,
            "repeats": repeats, "cell_budget_s": budget, "codebook_size": args.codebook_size,
            "cfg_scale": args.cfg, "models": models, "threads": torch.get_num_threads(),
            "load_average_at_end": load, "target_s_with_decode": TARGET_S}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"sundae_speed_{device.type}"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows, "verdict": verdict}, indent=2) + "\n")
    md = [f"# {title}", "", "| " + " | ".join(headers) + " |", "|" + "|".join("---:" for _ in headers) + "|"]
    md += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    md += ["", "Sampling only (no decode). Random weights: early stopping never triggers, so every run takes all "
           "its steps (a trained model stops earlier). "
           + (f"Times are scaled from {measure} timed steps to {args.steps} (every step costs the same). "
              if measure < args.steps else f"Median of {repeats} run(s) after a warm-up. ")
           + "GFLOP are analytic matmul FLOPs (hourglass + logits head) per image over all steps; "
           + ("peak MiB is the CUDA allocator peak. " if cuda else "peak MiB is the growth of the process's peak RSS. ")
           + ("" if cuda else "CPU s is the process's CPU time (all threads); on a shared machine it is the "
              "robust figure, and with one thread it is what an idle core would take. ")
           + f"Load average at the end: {', '.join(f'{x:.1f}' for x in load)} "
           f"on {os.cpu_count()} CPUs.", ""]
    md += [f"- {line}" for line in verdict]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
