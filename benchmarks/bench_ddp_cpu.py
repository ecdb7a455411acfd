"""Data-parallel training throughput on this CPU: samples/s of a prior with 1 and 2 processes.

    python benchmarks/bench_ddp_cpu.py [--prior sundae] [--steps 40] [--batch 8] [--grid 16]

Runs the real command (`nar train`, under `torchrun --nproc_per_node 2` for the 2-process
rows) on a synthetic token cache, and reads the loop's own clock from metrics.jsonl (steps
`--warm`..`--steps`, so process start-up and the first steps are not counted). Records the
load average before and after every row: the figures are only as good as the machine was
idle. Writes benchmarks/results/ddp_cpu_latest.{md,json} (benchmarks/results/ddp_cpu.md is
the committed record: two such runs, the load they ran under and notes).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_row(label, procs, threads, batch, args, tokens, work) -> dict:
    out = work / label.replace(" ", "_")
    sets = [f"train.steps={args.steps}", f"train.batch_size={batch}", f"train.log_every={args.warm}",
            "train.snapshot_every=0", "train.ckpt_every=100000", "train.warmup_steps=1", "train.device=cpu"]
    nar = ["-m", "nar", "train", "--prior", args.prior, "--tokens", str(tokens), "--unconditional",
           "-c", str(ROOT / "configs" / "priors" / f"{args.prior}_tiny.toml"), "--out", str(out)]
    for s in sets:
        nar += ["--set", s]
    if procs == 1:
        cmd = [sys.executable, *nar]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(procs),
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()), *nar]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    before = loadavg()
    t0 = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(done.stdout[-2000:] + done.stderr[-2000:])
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    first = next(r for r in rows if r["step"] == args.warm)
    last = rows[-1]
    seconds = last["time"] - first["time"]
    steps = last["step"] - first["step"]
    global_batch = batch * procs
    meta = json.loads((out / "config.json").read_text())
    return {"row": label, "processes": procs, "threads_per_process": threads, "batch_per_process": batch,
            "global_batch": global_batch, "timed_steps": steps, "seconds": round(seconds, 3),
            "step_ms": round(1000 * seconds / steps, 1), "samples_per_s": round(global_batch * steps / seconds, 1),
            "wall_s_incl_startup": round(time.time() - t0, 1), "load_before": before, "load_after": loadavg(),
            "world_size_in_meta": meta.get("world_size"), "params": None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prior", default="sundae")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warm", type=int, default=10)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--grid", type=int, default=16)
    ap.add_argument("--codebook", type=int, default=1024)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sys.path.insert(0, str(ROOT))
        from nar.data.tokens import write_token_cache
        rng = np.random.default_rng(0)
        n = 512
        tokens = write_token_cache(work / "tokens", rng.integers(0, args.codebook, (n, args.grid, args.grid)),
                                   np.full(n, -1), {"codebook_size": args.codebook, "tokenizer_hash": "synthetic"})
        b = args.batch
        plan = [("1 proc x 1 thread", 1, 1, b), ("1 proc x 2 threads", 1, 2, b),
                ("2 procs x 1 thread, same global batch", 2, 1, b // 2),
                ("2 procs x 1 thread, same per-process batch", 2, 1, b)]
        rows = [run_row(label, procs, threads, batch, args, tokens, work) for label, procs, threads, batch in plan]
        from safetensors import safe_open
        with safe_open(str(work / rows[0]["row"].replace(" ", "_") / "model.safetensors"), "pt") as f:
            params = sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())
    for r in rows:
        r["params"] = params
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ddp_cpu_latest.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")
    grad_mb = params * 4 / 1e6
    lines = [f"# Data-parallel training on the CPU: {args.prior}_tiny, {args.grid}x{args.grid} tokens",
             "",
             f"`python benchmarks/bench_ddp_cpu.py --prior {args.prior} --steps {args.steps} --batch {args.batch} "
             f"--grid {args.grid}` on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
             f"{params:,} parameters: {grad_mb:.2f} MB of fp32 gradients all-reduced per step. "
             f"Steps {args.warm}..{args.steps} timed by the loop's own clock (start-up excluded).",
             "",
             "| run | processes x threads | batch per process | global batch | ms / step | samples/s | load avg before -> after |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['row']} | {r['processes']} x {r['threads_per_process']} | {r['batch_per_process']} | "
                     f"{r['global_batch']} | {r['step_ms']} | {r['samples_per_s']} | {r['load_before']} -> {r['load_after']} |")
    (RESULTS / "ddp_cpu_latest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
