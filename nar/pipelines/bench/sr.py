"""`nar bench` rows above 1024² (e.g. 2048²): generation + decode at half the size, then the 2x
super-resolution `nar sample --size 2048` runs. The SR is timed once per size on a random image
(a convolutional net's cost does not depend on the picture), shared by every prior's row, and
added to the totals; the grid column stays the generated one."""
from __future__ import annotations

from typing import Any, Callable

import torch

from nar.core.errors import NarError
from nar.core.timing import Timer, summarize
from nar.pipelines.bench.settings import BenchEntry, BenchSettings, _generator, steps_for


def sr_rows_for_size(entries: list[BenchEntry], tokenizer, device: torch.device, size: int,
                     settings: BenchSettings, timer: Timer, decode_flops_cache: dict,
                     log: Callable[[str], None], slow_before: dict | None = None) -> list[dict[str, Any]]:
    from nar.pipelines.bench.speed import _skip_rows, speed_rows_for_size
    from nar.pipelines.upscale import load_sr, sample_plan, upscale_tensor
    gen_size, _ = sample_plan(size)
    try:
        model = load_sr(None, device)
    except NarError as e:
        return [r for e_ in entries for st in steps_for(e_.prior, settings.steps)
                for r in _skip_rows(e_, size, None, st, list(settings.batches), "skipped", str(e))]
    rows = speed_rows_for_size(entries, tokenizer, device, gen_size, settings, timer, decode_flops_cache, log,
                               slow_before)
    x = torch.rand(1, 3, gen_size, gen_size, generator=_generator(torch.device("cpu"), settings.seed)) * 2 - 1
    if settings.warmup:
        upscale_tensor(x, model)
    times = [timer.time(upscale_tensor, x, model)[1] for _ in range(max(1, settings.repeats))]
    sr = summarize(times)
    log(f"  sr 2x    {gen_size:5d}px -> {size}px: {sr['p50']:.3f}s/img ({len(times)} run(s), shared by every prior)")
    out = []
    for row in rows:
        row = {**row, "size": size, "sr_p50_s": sr["p50"], "sr_times_s": times}
        note = f"{gen_size}² generation + decode, then 2x SR ({sr['p50']:.2f}s/img, shared)"
        row["note"] = f"{note}; {row['note']}" if row.get("note") else note
        if row.get("status") == "ok":
            for key in ("total_p50_s", "total_p90_s"):
                if row.get(key) is not None:
                    row[key] += sr["p50"] if key == "total_p50_s" else sr["p90"]
            if row.get("throughput_img_s"):
                row["throughput_img_s"] = 1.0 / (1.0 / row["throughput_img_s"] + sr["p50"])
        out.append(row)
    return out
