"""The headline table on one GPU: AR (static KV cache, torch.compile + CUDA graphs, bf16) vs
MaskGIT vs SUNDAE at 256², 512² and 1024², batch-1 latency and batched throughput.

    bash benchmarks/gpu.sh                                   # one H100 / H200, under 8 minutes
    PYTHONPATH=. python benchmarks/bench_gpu.py --preset cpu-twin --tokenizer TOK.safetensors --out DIR

It is `nar bench` (the same code path: `bench_defaults`) with a preset:

* priors built from ``configs/priors/<name>.toml`` with random weights (speed does not depend
  on training; equal-sized models, dim 512), ``train_grid`` = the largest grid, so AR samples
  every grid with one KV cache (no sliding window) — on CUDA that is ``ARPrior``'s compiled
  one-token step with CUDA graphs, in bf16 (``sample_precision = "auto"``);
* the shipped tokenizer (or ``--tokenizer``), fp32 decode with TF32 convolutions / matmuls;
* ``--full`` timing discipline (2 warm-up runs, so compilation and CUDA-graph recording stay out
  of the timed runs, 5 timed runs, no quick-mode shortcuts), MaskGIT and SUNDAE at 12 and 20
  steps, batch 1 and 16, no quality table.

Writes the usual bench.json / .md / .csv under ``--out`` (default
benchmarks/results/gpu_headline/<device>/) plus headline.md: AR / SUNDAE ratios per size and
the SUNDAE@20 1024² < 0.25 s target. The ``cpu-twin`` preset runs the same thing on the CPU at
32² with a tiny tokenizer (the test suite runs it).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PRESETS = {
    "gpu": dict(device="cuda", sizes=(256, 512, 1024), steps=(12, 20), batches=(1, 16), repeats=5),
    "cpu-twin": dict(device="cpu", sizes=(32,), steps=(2,), batches=(1, 2), repeats=1),
}
PRIORS = ("ar", "maskgit", "sundae")
SUNDAE_TARGET_S = 0.25  # issue 15: SUNDAE@20 at 1024², decode included, batch 1


def headline(result: dict, preset: str) -> str:
    rows = [r for r in result["speed"] if r.get("status") == "ok" and r["batch"] == 1]
    env = result.get("environment", {})
    lines = [f"# nar headline ({preset}): {env.get('device_name', '?')}", "",
             "Batch-1 latency per image (sampling + decoding, median) and the best batched throughput; "
             "untrained equal-sized models (speed only).", "",
             "| size | prior | steps | implementation | sample p50 (s) | decode p50 (s) | total p50 (s) "
             "| images/s (batched) | AR / this |", "|---|---|---|---|---|---|---|---|---|"]
    best = {}
    for r in result["speed"]:
        if r.get("status") == "ok" and r.get("throughput_img_s"):
            k = (r["size"], r["prior"], r["steps"])
            best[k] = max(best.get(k, 0.0), r["throughput_img_s"])
    ar = {r["size"]: r for r in rows if r["prior"] == "ar"}
    for r in sorted(rows, key=lambda r: (r["size"], r["prior"], r["steps"] or 0)):
        a = ar.get(r["size"])
        ratio = f"{a['total_p50_s'] / r['total_p50_s']:.1f}x" if a and r["prior"] != "ar" else ""
        lines.append(f"| {r['size']} | {r['prior']} | {r['steps'] or ''} | {r.get('implementation') or ''} "
                     f"| {r['sample_p50_s']:.4f} | {r['decode_p50_s']:.4f} | {r['total_p50_s']:.4f} "
                     f"| {best.get((r['size'], r['prior'], r['steps']), 0):.2f} | {ratio} |")
    big = max(PRESETS[preset]["sizes"])
    sundae = [r for r in rows if r["prior"] == "sundae" and r["size"] == big and r["steps"] == 20]
    if sundae:
        t = sundae[0]["total_p50_s"]
        lines += ["", f"SUNDAE@20 {big}² incl. decode, batch 1: {t:.3f} s "
                  f"({'meets' if t < SUNDAE_TARGET_S else 'misses'} the < {SUNDAE_TARGET_S} s target)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="gpu")
    ap.add_argument("--device", default=None, help="override the preset's device")
    ap.add_argument("--tokenizer", type=Path, default=None, help="tokenizer checkpoint (default: shipped)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)

    import torch

    from nar.eval.machine import device_slug, setup_device
    from nar.pipelines.bench import bench_defaults

    p = dict(PRESETS[args.preset])
    device = args.device or p["device"]
    if setup_device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    out = args.out or ROOT / "benchmarks" / "results" / "gpu_headline" / device_slug(setup_device(device))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as empty:  # no checkpoints: every prior untrained, one AR cache per grid
        result = bench_defaults(priors=list(PRIORS), sizes=p["sizes"], steps=p["steps"], batches=p["batches"],
                                device=device, full=True, out=out, tokenizer=args.tokenizer, ckpt_dir=empty,
                                quality=False, repeats=p["repeats"], threads=args.threads,
                                command="benchmarks/bench_gpu.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                                print_results=True)
    wall = time.perf_counter() - t0
    text = headline(result, args.preset) + f"\nWall time of the whole run: {wall:.0f} s.\n"
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "headline.md").write_text(text)
    (Path(out) / "headline.json").write_text(json.dumps({"preset": args.preset, "wall_s": wall}, indent=2))
    print(text)
    return result


if __name__ == "__main__":
    main()
