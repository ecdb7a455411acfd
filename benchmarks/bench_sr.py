"""2x super-resolution on this CPU: tiled vs untiled, SR time at 1024² -> 2048², and a 2048²
SUNDAE sample end to end (1024² generation + decode + SR), wall and process CPU time, with the
load average beside each (the machine is shared).

    PYTHONPATH=. python benchmarks/bench_sr.py --threads 2 --json benchmarks/results/sr_cpu_speed.json
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch


def timed(fn, *args, **kwargs):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn(*args, **kwargs)
    return out, {"wall_s": round(time.perf_counter() - t0, 3), "cpu_s": round(time.process_time() - c0, 3),
                 "load1": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=None, help="SR checkpoint (default: shipped)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument("--skip-sample", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from nar.pipelines.upscale import load_sr, upscale_output, upscale_tensor
    from nar.train.sr_task import render_pair
    from nar.train.tokenizer_task import held_out_seed
    model = load_sr(args.ckpt)
    result = {"threads": args.threads, "ckpt": str(model.source_path), "cpu": os.uname().machine}

    lo, _ = render_pair(held_out_seed(17, 0), 1024)
    whole = upscale_tensor(lo[None], model, tile=None)
    tiled = upscale_tensor(lo[None], model, tile=256)
    result["tiled_vs_untiled_max_abs_255"] = float((tiled - whole).abs().max()) * 127.5
    print(f"tiled (256² tiles) vs untiled, 1024² -> 2048²: max |diff| = {result['tiled_vs_untiled_max_abs_255']:.2e} / 255")

    runs = []
    for _ in range(args.repeats):
        _, t = timed(upscale_tensor, lo[None], model)
        runs.append(t)
        print(f"SR 1024² -> 2048²: {t}")
    result["sr_1024"] = runs

    if not args.skip_sample:
        from nar import Pipeline
        pipe = Pipeline.load(device="cpu")
        pipe.sample(prior="sundae", n=1, size=256, seed=99)   # warm-up
        runs = []
        for r in range(args.repeats):
            def go():
                out = pipe.sample(prior="sundae", n=1, size=1024, seed=r)
                return upscale_output(out, args.ckpt)
            out, t = timed(go)
            t.update(sampling_s=round(out.seconds_sampling, 3),
                     sr_s=out.settings["super_resolution"]["seconds"], size=out.images[0].size[0])
            runs.append(t)
            print(f"sundae 2048² end to end: {t}")
        result["sundae_2048"] = runs
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
