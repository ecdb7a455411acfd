"""nar's AR against a bare static-cache decoder of the same shape, side by side in one run.

    PYTHONPATH=. python benchmarks/bench_ar_bare.py                      # 16x16 and 64x64, 2 threads, ~3 min
    PYTHONPATH=. python benchmarks/bench_ar_bare.py --grids 16 --repeats 5
    PYTHONPATH=. python benchmarks/bench_ar_bare.py --compile            # adds torch.compile rows (slow to build)

The *bare* decoder is what the overhead of nar's AR is measured against: plain torch, in the
gpt-fast / LlamaGen layout (fused q/k/v linear, rotary applied once when a key is written,
one preallocated (B, H, L, dh) key and value buffer per layer written at each position,
attention over the filled prefix), with the shipped AR's shape (dim 256, depth 8, 8 heads of
32, feed-forward 4x, codebook 512), a class start token and nothing else: no 2D positions,
no CFG, no inpainting bookkeeping. Both draw each token from the full softmax at
temperature 1 (the bare one with ``torch.multinomial``, nar with its own sampler).

nar's AR is ``ARPrior.sample(1, (g, g))`` with a model whose training grid is the grid, so
the whole grid is one sequence with one cache (random weights: speed does not depend on
training). Per-token time = one image's sampling time / tokens, median over ``--repeats``,
the two implementations alternating so a load change on a shared machine hits both.
Writes benchmarks/results/ar_bare_cpu_<threads>t (or ar_bare_cuda) .json and .md with the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

RESULTS = Path(__file__).resolve().parent / "results"
SHAPE = dict(dim=256, depth=8, heads=8, dim_head=32, ff_mult=4, codebook=512, classes=6)


# ---- the bare decoder ------------------------------------------------------------------------
class BareBlock(nn.Module):
    def __init__(self, dim, heads, dim_head, ff_mult):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = heads * dim_head
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.wqkv = nn.Linear(dim, 3 * inner, bias=False)
        self.wo = nn.Linear(inner, dim, bias=False)
        self.ff = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Linear(ff_mult * dim, dim))
        self.k_cache = self.v_cache = None

    def setup_cache(self, batch, length, device, dtype):
        shape = (batch, self.heads, length, self.dim_head)
        self.k_cache = torch.zeros(shape, device=device, dtype=dtype)
        self.v_cache = torch.zeros(shape, device=device, dtype=dtype)

    def forward(self, x, cos, sin, pos: int):
        b, m, _ = x.shape
        q, k, v = self.wqkv(self.norm1(x)).view(b, m, 3, self.heads, self.dim_head).transpose(1, 3).unbind(2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        self.k_cache[:, :, pos:pos + m] = k
        self.v_cache[:, :, pos:pos + m] = v
        out = F.scaled_dot_product_attention(q, self.k_cache[:, :, :pos + m], self.v_cache[:, :, :pos + m],
                                             is_causal=m > 1)
        x = x + self.wo(out.transpose(1, 2).reshape(b, m, -1))
        return x + self.ff(self.norm2(x))


def rope(t, cos, sin):
    t1, t2 = t.chunk(2, dim=-1)
    return t * cos + torch.cat([-t2, t1], dim=-1) * sin


class BareDecoder(nn.Module):
    def __init__(self, dim, depth, heads, dim_head, ff_mult, codebook, classes):
        super().__init__()
        self.tok = nn.Embedding(codebook, dim)
        self.cls = nn.Embedding(classes + 1, dim)
        self.blocks = nn.ModuleList(BareBlock(dim, heads, dim_head, ff_mult) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, codebook)
        self.dim_head = dim_head

    def rope_tables(self, length, device):
        inv = 1.0 / (10000 ** (torch.arange(0, self.dim_head, 2, device=device).float() / self.dim_head))
        ang = torch.outer(torch.arange(length, device=device).float(), inv)
        ang = torch.cat([ang, ang], dim=-1)
        return ang.cos(), ang.sin()

    @torch.inference_mode()
    def sample(self, n_tokens: int, class_id: int, generator=None):
        dev = self.head.weight.device
        for blk in self.blocks:
            blk.setup_cache(1, n_tokens, dev, self.head.weight.dtype)
        cos, sin = (t.to(self.head.weight.dtype) for t in self.rope_tables(n_tokens, dev))
        out = torch.zeros(1, n_tokens, dtype=torch.long, device=dev)
        x = self.cls(torch.tensor([class_id], device=dev))[:, None]
        for pos in range(n_tokens):
            for blk in self.blocks:
                x = blk(x, cos[pos:pos + 1], sin[pos:pos + 1], pos)
            logits = self.head(self.norm(x[:, -1])).float()
            tok = torch.multinomial(logits.softmax(-1), 1, generator=generator)
            out[:, pos] = tok[:, 0]
            x = self.tok(tok)
        return out


# ---- timing ---------------------------------------------------------------------------------
def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clock(fn, device) -> tuple[float, float]:
    """(wall seconds, process CPU seconds): CPU time is the steadier figure on a loaded machine."""
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


def run(args) -> dict:
    from nar.priors.ar import ARConfig, ARPrior

    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32  # both sides in one precision
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    s = SHAPE
    rows = []

    def meta(rows):
        return {"device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
                "precision": args.precision,
                "shape": s, "repeats": args.repeats, "cpu_count": os.cpu_count(), "rows": rows}

    for g in args.grids:
        n_tok = g * g
        torch.manual_seed(0)
        bare = BareDecoder(s["dim"], s["depth"], s["heads"], s["dim_head"], s["ff_mult"], s["codebook"],
                           s["classes"]).to(device, dtype).eval()
        prior = ARPrior(ARConfig(dim=s["dim"], depth=s["depth"], heads=s["heads"], dim_head=s["dim_head"],
                                 ff_mult=s["ff_mult"]), s["codebook"], s["classes"], (g, g)).to(device).eval()
        cond = torch.tensor([1], device=device)
        impls = {
            "bare": lambda: bare.sample(n_tok, 1, torch.Generator(device=device).manual_seed(0)),
            "nar": lambda: prior.sample(1, (g, g), cond=cond, generator=torch.Generator(device=device).manual_seed(0),
                                        compile=False, precision=args.precision),
        }
        if args.compile:
            impls["nar compiled"] = lambda: prior.sample(1, (g, g), cond=cond, compile=True, precision=args.precision,
                                                         generator=torch.Generator(device=device).manual_seed(0))
        # warm-up (and, for compiled rows, the compilation) on the real shapes
        warm = {name: clock(fn, device)[0] for name, fn in impls.items()}
        times = {name: [] for name in impls}
        loads = [loadavg()]
        for _ in range(args.repeats):
            for name, fn in impls.items():  # alternating: a load change hits every row alike
                times[name].append(clock(fn, device))
            loads.append(loadavg())
        row = {"grid": [g, g], "tokens": n_tok, "loadavg": loads, "first_call_s": warm,
               "nar_implementation": prior.implementation((g, g), compile=False, precision=args.precision)}
        for name, ts in times.items():
            wall, cpu = [t[0] for t in ts], [t[1] for t in ts]
            row[name] = {"runs_s": wall, "cpu_runs_s": cpu, "median_s": statistics.median(wall),
                         "cpu_median_s": statistics.median(cpu),
                         "ms_per_token": 1000 * statistics.median(wall) / n_tok,
                         "cpu_ms_per_token": 1000 * statistics.median(cpu) / n_tok}
        row["ratio_nar_over_bare"] = row["nar"]["median_s"] / row["bare"]["median_s"]
        row["cpu_ratio_nar_over_bare"] = row["nar"]["cpu_median_s"] / row["bare"]["cpu_median_s"]
        if args.compile:
            row["ratio_compiled_over_bare"] = row["nar compiled"]["median_s"] / row["bare"]["median_s"]
        rows.append(row)
        if args.out is not None:  # saved after every grid: a long run killed midway keeps its rows
            save(meta(rows), args.out)
        print(f"{g}x{g}: " + ", ".join(f"{k} {row[k]['ms_per_token']:.2f} ms/token" for k in impls)
              + f"; nar/bare {row['ratio_nar_over_bare']:.2f} (CPU time {row['cpu_ratio_nar_over_bare']:.2f}); "
              f"load {loads[-1]}", flush=True)
        del bare, prior
    return meta(rows)


def save(res: dict, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    tag = res["device"].split(":")[0]
    stem = f"ar_bare_{tag}_{res['threads']}t" if tag == "cpu" else f"ar_bare_{tag}"
    stem += "_bf16" if res.get("precision") == "bf16" else ""
    js, md = out / f"{stem}.json", out / f"{stem}.md"
    js.write_text(json.dumps(res, indent=2))
    names = [k for k in ("bare", "nar", "nar compiled") if k in res["rows"][0]]
    lines = [f"# nar's AR vs a bare static-cache decoder ({res['device']}, {res['threads']} thread(s), "
             f"{res.get('precision', 'fp32')}, torch {res['torch']})", "",
             "Shape of the shipped ar: dim 256, depth 8, 8 heads x 32, ff 4x, codebook 512; batch 1, "
             f"temperature 1, whole grid in one cache; median of {res['repeats']} alternating runs.", "",
             "| grid | tokens | " + " | ".join(f"{n} ms/token" for n in names)
             + " | nar / bare | nar / bare (CPU time) | load average |",
             "|---|---|" + "---|" * len(names) + "---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['grid'][0]}x{r['grid'][1]} | {r['tokens']} | "
                     + " | ".join(f"{r[n]['ms_per_token']:.2f}" for n in names)
                     + f" | {r['ratio_nar_over_bare']:.2f} | {r['cpu_ratio_nar_over_bare']:.2f}"
                     f" | {r['loadavg'][0]} .. {r['loadavg'][-1]} |")
    lines += ["", f"nar ran: {res['rows'][0]['nar_implementation']}."]
    md.write_text("\n".join(lines) + "\n")
    return js, md


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--grids", type=lambda v: [int(x) for x in v.split(",")], default=[16, 64])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="both decoders in this precision (bare: bf16 weights; nar: its bf16 static-cache path)")
    ap.add_argument("--compile", action="store_true", help="also time nar's AR with the compiled step")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    res = run(args)
    for p in save(res, args.out):
        print(f"saved {p}")


if __name__ == "__main__":
    main()
