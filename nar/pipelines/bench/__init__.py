"""`nar bench`: every prior side by side on the same tokenizer, grid, seeds and machine.

- `settings`: quick / full presets, what is measured (`BenchEntry`, `BenchTokenizer`);
- `speed`: latency per prior x size x steps (warm-up, timed batch-1 runs, throughput);
- `quality`: FD / precision / recall / IS against procedural images, with reference rows;
- `flops`: analytic FLOPs per image (the priors' own counts, the decoder's on the meta device);
- `report`: columns, rich tables, Markdown / CSV / JSON and plots;
- `run`: `run_bench` (measure built objects) and `bench_defaults` (what `nar bench` loads,
  through the shared `Pipeline` loader).
"""
from nar.pipelines.bench.flops import decoder_flops, flops_per_image
from nar.pipelines.bench.quality import load_quality_nets, quality_rows, render_real
from nar.pipelines.bench.report import QUALITY_COLUMNS, RATIO_COLUMNS, SPEED_COLUMNS, print_tables, write_outputs
from nar.pipelines.bench.run import bench_defaults, build_priors, build_tokenizer, run_bench
from nar.pipelines.bench.settings import (TRAINED, UNTRAINED, BenchEntry, BenchSettings, BenchTokenizer,
                                          default_steps, parse_int_list, steps_for)
from nar.pipelines.bench.speed import ratio_rows, speed_rows_for_size

__all__ = ["BenchEntry", "BenchSettings", "BenchTokenizer", "QUALITY_COLUMNS", "RATIO_COLUMNS", "SPEED_COLUMNS",
           "TRAINED", "UNTRAINED", "bench_defaults", "build_priors", "build_tokenizer", "decoder_flops",
           "default_steps", "flops_per_image", "load_quality_nets", "parse_int_list", "print_tables",
           "quality_rows", "ratio_rows", "render_real", "run_bench", "speed_rows_for_size", "steps_for",
           "write_outputs"]
