"""Tiled tokenizer figures (issue 20) -> benchmarks/results/tiling_cpu.md.

    python benchmarks/bench_tiling.py quality      # 1024²: tiled vs untiled decode (MAD, block ratio)
    python benchmarks/bench_tiling.py speed        # 2048²: decode CPU time, untiled vs tiled (1 thread)
    python benchmarks/bench_tiling.py memory       # 8192²: `nar tokenizer reconstruct` peak RSS (/usr/bin/time -v)
    python benchmarks/bench_tiling.py all
    python benchmarks/bench_tiling.py write        # the markdown again from tiling_cpu.json

Each part prints its rows and rewrites its section of the results file. CPU time is the
thread's own (torch at 1 thread), so the figures hold on a shared, loaded machine.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "tiling_cpu.md"
PARTS = RESULTS.with_suffix(".json")
TOKENIZER = ROOT / "nar" / "assets" / "models" / "tokenizer.safetensors"


def grey(images: torch.Tensor) -> torch.Tensor:
    return ((images.clamp(-1, 1) + 1) * 127.5).round()


def quality(seeds=(5, 11, 23), tile: int = 36, overlap: int = 4) -> dict:
    from nar.data.landscapes import LandscapeDataset
    from nar.eval.sharpness import block_ratio
    from nar.tokenizer.load import load_tokenizer
    from nar.tokenizer.tiling import tile_spans, tiled_decode
    tok = load_tokenizer(TOKENIZER)
    rows = []
    for seed in seeds:
        x = LandscapeDataset(1, 1024, seed=seed)[0][0][None]
        with torch.inference_mode():
            tokens = tok.encode(x)
            whole = grey(tok.decode_tokens(tokens).float())
        spans = tile_spans(tokens.shape[-1], tile, overlap)
        pitch = (spans[1][0] - spans[0][0]) * tok.factor
        tiled = grey(tiled_decode(tok, tokens, tile, overlap))
        per_tile = grey(tiled_decode(tok, tokens, tile, overlap, shared_stats=False))
        row = {"seed": seed, "tiles": f"{len(spans)}x{len(spans)} of {spans[0][1] - spans[0][0]} cells",
               "pitch_px": pitch, "mad": float((tiled - whole).abs().mean()),
               "max": float((tiled - whole).abs().max()),
               "mad_per_tile_stats": float((per_tile - whole).abs().mean()),
               "block_ratio_tiled": block_ratio(tiled / 127.5 - 1, pitch),
               "block_ratio_untiled": block_ratio(whole / 127.5 - 1, pitch),
               "block_ratio_per_tile_stats": block_ratio(per_tile / 127.5 - 1, pitch)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {"tile": tile, "overlap": overlap, "rows": rows}


def speed(size: int = 2048, repeats: int = 2) -> dict:
    from nar.tokenizer import tiling
    from nar.tokenizer.load import load_tokenizer
    torch.set_num_threads(1)
    tok = load_tokenizer(TOKENIZER, decode_only=True)
    tokens = torch.randint(0, tok.codebook_size, (1, size // tok.factor, size // tok.factor),
                           generator=torch.Generator().manual_seed(0))
    spans = tiling.tile_spans(tokens.shape[-1], tiling.TILE, tiling.OVERLAP)
    runs = {"untiled": [], "tiled": []}
    with torch.inference_mode():
        tok.decode_tokens(tokens[:, :16, :16])     # warm-up
        for _ in range(repeats):                   # interleaved: load drifts hit both alike
            for name, fn in (("untiled", lambda: tok.decode_tokens(tokens).float()),
                             ("tiled", lambda: tiling.tiled_decode(tok, tokens))):
                t0 = time.thread_time()
                fn()
                runs[name].append(time.thread_time() - t0)
                print(name, round(runs[name][-1], 2), flush=True)
    best = {k: min(v) for k, v in runs.items()}
    return {"size": size, "tiles": f"{len(spans)}x{len(spans)} of {spans[0][1] - spans[0][0]} cells "
                                    f"(TILE {tiling.TILE}, OVERLAP {tiling.OVERLAP})",
            "runs": runs, "best": best, "ratio": best["tiled"] / best["untiled"]}


def memory(size: int = 8192, workdir: Path = Path("/tmp/nar_bench_tiling")) -> dict:
    from PIL import Image
    from nar.core.images import to_pil
    from nar.data.landscapes import LandscapeDataset
    workdir.mkdir(parents=True, exist_ok=True)
    src, out = workdir / f"in{size}.png", workdir / f"out{size}.png"
    if not src.exists():   # a 1024² landscape scaled up: a legal, big, smooth picture
        small = to_pil(LandscapeDataset(1, 1024, seed=7)[0][0])
        small.resize((size, size), Image.Resampling.BICUBIC).save(src)
    out.unlink(missing_ok=True)
    cmd = ["/usr/bin/time", "-v", str(ROOT / ".venv" / "bin" / "nar"), "tokenizer", "reconstruct", str(src),
           "--out", str(out)]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t0
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    result = {"size": size, "command": "nar tokenizer reconstruct in.png --out out.png", "rc": r.returncode,
              "max_rss_gib": rss_kb / 1024 ** 2, "wall_s": wall, "stdout": r.stdout.strip()[-200:]}
    if r.returncode != 0:
        result["stderr"] = r.stderr[-800:]
    print(json.dumps(result), flush=True)
    return result


def write(parts: dict) -> None:
    lines = ["# Tiled tokenizer on the CPU (issue 20)", "",
             "Produced by `python benchmarks/bench_tiling.py all` (shipped f16 tokenizer, 2-core CPU "
             "shared with training runs and other work: load average 10-13 during these runs).", ""]
    q = parts.get("quality")
    if q:
        lines += [f"## 1024²: tiled ({q['tile']}-cell tiles, {q['overlap']}-cell overlap) vs untiled decoding", "",
                  "Grey levels (0-255). Block ratio at the tile pitch (`nar.eval.sharpness.block_ratio`). "
                  "'per-tile stats' = each tile normalised on its own (diffusers' way), for comparison.", "",
                  "| seed | tiles | pitch px | MAD | max | block ratio tiled | untiled | tiled / untiled | MAD per-tile stats | block ratio per-tile stats |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in q["rows"]:
            lines.append(f"| {r['seed']} | {r['tiles']} | {r['pitch_px']} | {r['mad']:.3f} | {r['max']:.0f} | "
                         f"{r['block_ratio_tiled']:.3f} | {r['block_ratio_untiled']:.3f} | "
                         f"{r['block_ratio_tiled'] / r['block_ratio_untiled']:.3f} | "
                         f"{r['mad_per_tile_stats']:.2f} | {r['block_ratio_per_tile_stats']:.3f} |")
        lines += ["", "The tile pitch is a multiple of the 16-px token grid, so the untiled decode already "
                  "has block ratio > 1 there (VQ block edges; only 2 boundaries per axis at 1024², so it "
                  "swings with content); tiling's own contribution is the tiled / untiled column.", ""]
    s = parts.get("speed")
    if s:
        lines += [f"## {s['size']}²: decode CPU time (1 thread, best of {len(s['runs']['tiled'])}, interleaved)", "",
                  f"Tiles: {s['tiles']}.", "",
                  "| untiled s | tiled s | tiled / untiled |", "|---|---|---|",
                  f"| {s['best']['untiled']:.2f} | {s['best']['tiled']:.2f} | {s['ratio']:.3f} |", ""]
    m = parts.get("memory")
    if m:
        lines += [f"## {m['size']}²: `{m['command']}` peak memory", "",
                  "Default settings (tiles chosen automatically, torch's default threads); the input is a "
                  "1024² landscape scaled up to 8192² (PNG, 67 MP).", "",
                  "| exit | max RSS (GiB, /usr/bin/time -v) | wall s |", "|---|---|---|",
                  f"| {m['rc']} | {m['max_rss_gib']:.2f} | {m['wall_s']:.0f} |", ""]
    if parts.get("gpu"):
        lines += ["## GPU check (decode; the image returns to the CPU)", "", "```", parts["gpu"], "```", ""]
    RESULTS.write_text("\n".join(lines))


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    parts = json.loads(PARTS.read_text()) if PARTS.exists() else {}
    for name, fn in (("quality", quality), ("speed", speed), ("memory", memory)):
        if which in (name, "all"):
            parts[name] = fn()
            PARTS.write_text(json.dumps(parts, indent=1))
    write(parts)


if __name__ == "__main__":
    main()
