"""`nar bench` rows above a prior's native size (e.g. 2048² for the 1024² set): generation +
decode at the size `sample_plan` picks, then the 2x super-resolution passes `nar sample` runs.
The SR is timed once per size and plan on a random image (a convolutional net's cost does not
depend on the picture), shared by those priors' rows, and added to the totals; the grid column
stays the generated one."""
from __future__ import annotations

from typing import Any, Callable

import torch

from nar.core.errors import NarError
from nar.core.timing import Timer, summarize
from nar.pipelines.bench.settings import BenchEntry, BenchSettings, _generator, steps_for


def sr_rows_for_size(entries: list[BenchEntry], tokenizer, device: torch.device, size: int,
                     plan: tuple[int, int], settings: BenchSettings, timer: Timer, decode_flops_cache: dict,
                     log: Callable[[str], None], slow_before: dict | None = None) -> list[dict[str, Any]]:
    from nar.pipelines.bench.speed import _skip_rows, speed_rows_for_size
    from nar.pipelines.upscale import load_sr, upscale_tensor
    gen_size, passes = plan
    try:
        model = load_sr(None, device)
    except NarError as e:
        return [r for e_ in entries for st in steps_for(e_.prior, settings.steps)
                for r in _skip_rows(e_, size, None, st, list(settings.batches), "skipped", str(e))]
    rows = speed_rows_for_size(entries, tokenizer, device, gen_size, settings, timer, decode_flops_cache, log,
                               slow_before)
    x = torch.rand(1, 3, gen_size, gen_size, generator=_generator(torch.device("cpu"), settings.seed)) * 2 - 1
    sharpen = settings.sharpen_amount   # timed with the SR: `nar sample` runs both
    if settings.warmup:
        upscale_tensor(x, model, passes=passes, sharpen=sharpen)
    times = [timer.time(upscale_tensor, x, model, passes=passes, sharpen=sharpen)[1]
             for _ in range(max(1, settings.repeats))]
    sr = summarize(times)
    scale = model.scale ** passes
    log(f"  sr {scale}x    {gen_size:5d}px -> {size}px: {sr['p50']:.3f}s/img ({len(times)} run(s), "
        "shared by these priors)")
    out = []
    for row in rows:
        row = {**row, "size": size, "sr_p50_s": sr["p50"], "sr_times_s": times}
        note = f"{gen_size}² generation + decode, then {scale}x SR ({sr['p50']:.2f}s/img, shared)"
        row["note"] = f"{note}; {row['note']}" if row.get("note") else note
        if row.get("status") == "ok":
            for key in ("total_p50_s", "total_p90_s"):
                if row.get(key) is not None:
                    row[key] += sr["p50"] if key == "total_p50_s" else sr["p90"]
            if row.get("throughput_img_s"):
                row["throughput_img_s"] = 1.0 / (1.0 / row["throughput_img_s"] + sr["p50"])
        out.append(row)
    return out
