"""Speed of the procedural landscape generator on this CPU.

    PYTHONPATH=. python benchmarks/bench_data.py            # 256², 1024², 2048²
    PYTHONPATH=. python benchmarks/bench_data.py --per-scene 1 --sizes 256,1024

Every size renders ``--per-scene`` seeds of each scene (half as many at 2048² and up;
times of day drawn from the seeds), after one warm-up render. Wall time is what a
caller waits; CPU time is the process's own time, which is steadier when other jobs
share the machine. Writes benchmarks/results/data_cpu.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from nar.data.landscapes import SCENES, generate_landscape
from nar.eval.machine import cpu_model

RESULTS = Path(__file__).parent / "results"


def time_renders(size: int, per_scene: int, seed: int) -> dict[str, list[tuple[float, float]]]:
    """{scene: [(wall s, cpu s), ...]}, scenes interleaved so background load hits all alike."""
    times: dict[str, list[tuple[float, float]]] = {scene: [] for scene in SCENES}
    for k in range(per_scene):
        for i, scene in enumerate(SCENES):
            s = seed + 1000 * k + i
            wall, cpu = time.perf_counter(), time.process_time()
            generate_landscape(s, size, size, scene=scene)
            times[scene].append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="256,1024,2048", help="square sides, comma separated")
    p.add_argument("--per-scene", type=int, default=2, help="renders per scene and size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS / "data_cpu")
    args = p.parse_args(argv)
    sizes = [int(v) for v in args.sizes.split(",") if v.strip()]

    generate_landscape(args.seed, 256, 256)  # warm-up: imports, first allocations
    rows, per_scene_rows = [], []
    for size in sizes:
        renders = args.per_scene if size < 2048 else max(1, args.per_scene // 2)
        times = time_renders(size, renders, args.seed)
        walls = [w for runs in times.values() for w, _ in runs]
        cpus = [c for runs in times.values() for _, c in runs]
        rows.append({
            "size": size, "images": len(walls),
            "wall_s_per_image_mean": statistics.fmean(walls),
            "wall_s_per_image_median": statistics.median(walls),
            "cpu_s_per_image_mean": statistics.fmean(cpus),
            "images_per_s_wall": len(walls) / sum(walls),
            "images_per_s_cpu": len(cpus) / sum(cpus),
        })
        for scene, runs in times.items():
            per_scene_rows.append({
                "size": size, "scene": scene,
                "wall_s_mean": statistics.fmean(w for w, _ in runs),
                "cpu_s_mean": statistics.fmean(c for _, c in runs),
            })

    info = machine()
    console = Console()
    table = Table(title=f"landscape generator — {info['processor']}, {info['cpu_count']} CPUs, "
                        f"load {info['load_average_1min']:.1f}")
    for col in ("size", "images", "s/img wall", "s/img cpu", "img/s wall", "img/s cpu"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['size']}²", str(r["images"]), f"{r['wall_s_per_image_mean']:.3f}",
                      f"{r['cpu_s_per_image_mean']:.3f}", f"{r['images_per_s_wall']:.2f}",
                      f"{r['images_per_s_cpu']:.2f}")
    console.print(table)
    scene_table = Table(title="per scene, mean seconds per image (wall / cpu)")
    scene_table.add_column("scene")
    for size in sizes:
        scene_table.add_column(f"{size}²", justify="right")
    for scene in SCENES:
        cells = [f"{r['wall_s_mean']:.3f} / {r['cpu_s_mean']:.3f}"
                 for r in per_scene_rows if r["scene"] == scene]
        scene_table.add_row(scene, *cells)
    console.print(scene_table)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "procedural landscapes (nar.data.landscapes.generate_landscape)",
              "machine": info, "per_scene_renders": args.per_scene, "sizes": rows,
              "per_scene": per_scene_rows}
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = [f"# Landscape generator speed — {info['processor']}, {info['cpu_count']} CPUs, "
             f"numpy {info['numpy']}, torch {info['torch']}", "",
             "| size | images | s/img wall | s/img cpu | img/s wall | img/s cpu |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['size']}² | {r['images']} | {r['wall_s_per_image_mean']:.3f} | "
              f"{r['cpu_s_per_image_mean']:.3f} | {r['images_per_s_wall']:.2f} | "
              f"{r['images_per_s_cpu']:.2f} |" for r in rows]
    lines += ["", "Per scene, mean s/img (wall / cpu):", "",
              "| scene | " + " | ".join(f"{s}²" for s in sizes) + " |",
              "|---|" + "---|" * len(sizes)]
    for scene in SCENES:
        cells = [f"{r['wall_s_mean']:.3f} / {r['cpu_s_mean']:.3f}"
                 for r in per_scene_rows if r["scene"] == scene]
        lines.append(f"| {scene} | " + " | ".join(cells) + " |")
    lines += ["", f"{args.per_scene} render(s) per scene and size (half at 2048² and up) "
              "after one warm-up, scenes "
              f"interleaved; single-threaded numpy. 1-min load average during the run: "
              f"{info['load_average_1min']:.1f} (wall times grow with other jobs' load, "
              "CPU times much less)."]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    console.print(f"wrote {args.out.with_suffix('.json')} and .md")


if __name__ == "__main__":
    main()
