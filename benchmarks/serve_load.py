"""Bounded load test of `nar serve` on loopback: C concurrent clients x R requests each, with
request batching on (--max-batch 8) and off (--max-batch 1); latency p50 / p99 and throughput.

    .venv/bin/python benchmarks/serve_load.py                      # 8 clients x 25 requests, sundae 256², 4 steps
    .venv/bin/python benchmarks/serve_load.py --format json        # tokens only (no decode)

Each configuration runs a fresh server in its own process (127.0.0.1, a free port), is warmed
up with one request, then measured; the server is stopped afterwards. Requests carry no seed,
so the server may batch them (seeded requests are sampled one by one to match the CLI).
Results: benchmarks/results/serve_load.{md,json} (or --out).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(port: int, max_batch: int, max_wait_ms: float, threads: int) -> None:
    import torch
    torch.set_num_threads(threads)
    from nar.serve import ServeConfig, create_app
    from nar.serve.server import run
    app = create_app(ServeConfig(role="all", device="cpu", max_batch=max_batch, max_wait_ms=max_wait_ms,
                                 max_queue=256, preload=("sundae",)))
    run(app, host="127.0.0.1", port=port, log_level="warning")


def percentile(values, q):
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def measure(args, max_batch: int) -> dict:
    import httpx

    from nar.serve.server import free_port
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(port), "--max-batch", str(max_batch),
                             "--max-wait-ms", str(args.max_wait_ms), "--threads", str(args.threads)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        body = {"prior": args.prior, "size": args.size, "steps": args.steps, "format": args.format}
        assert httpx.post(url + "/generate", json=body, timeout=120).status_code == 200   # warm-up
        latencies, codes, sizes = [], [], []
        lock = threading.Lock()

        def client():
            with httpx.Client(timeout=300) as c:
                for _ in range(args.requests):
                    t0 = time.perf_counter()
                    r = c.post(url + "/generate", json=body)
                    dt = time.perf_counter() - t0
                    with lock:
                        codes.append(r.status_code)
                        if r.status_code == 200:
                            latencies.append(dt)
                            s = (json.loads(r.headers["x-nar-settings"]) if args.format == "png"
                                 else r.json()["settings"])
                            sizes.append(s.get("batch_size", 1))

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        health = httpx.get(url + "/health", timeout=10).json()
    finally:
        proc.terminate()
        proc.wait(30)
    ok = len(latencies)
    return {"max_batch": max_batch, "requests": len(codes), "ok": ok,
            "errors": {str(c): codes.count(c) for c in set(codes) if c != 200},
            "p50_ms": 1000 * statistics.median(latencies), "p99_ms": 1000 * percentile(latencies, 0.99),
            "mean_ms": 1000 * statistics.fmean(latencies), "throughput_rps": ok / wall, "wall_s": wall,
            "mean_batch": statistics.fmean(sizes), "largest_batch": health["queue"]["largest_batch"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=25, help="per client")
    ap.add_argument("--prior", default="sundae")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--format", choices=("png", "json"), default="png")
    ap.add_argument("--max-wait-ms", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads in the server")
    ap.add_argument("--batches", default="8,1", help="max-batch settings to compare")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serve_load")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--max-batch", type=int, default=8, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.max_batch, args.max_wait_ms, args.threads)
        return
    rows = [measure(args, int(b)) for b in args.batches.split(",")]
    setup = (f"{args.clients} clients x {args.requests} requests, POST /generate {args.prior} {args.size}² "
             f"{args.steps} steps format={args.format}, no seed; server: 1 process, {args.threads} torch "
             f"thread(s), CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores), "
             f"max_wait {args.max_wait_ms:g} ms")
    lines = [f"# nar serve load test", "", setup, "",
             "| max batch | requests ok | p50 ms | p99 ms | mean ms | throughput req/s | mean batch | largest batch |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['max_batch']} | {r['ok']}/{r['requests']} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | "
                     f"{r['mean_ms']:.0f} | {r['throughput_rps']:.2f} | {r['mean_batch']:.1f} | {r['largest_batch']} |")
    lines += ["", "command: " + " ".join(["python", "benchmarks/serve_load.py", *sys.argv[1:]])]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps({"setup": setup, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
