"""The CPU twin of benchmarks/gpu.sh: the same preset code path at 32² with a tiny tokenizer."""
import json


def test_gpu_headline_cpu_twin(tiny_models, tmp_path, benchmark_script):
    bench_gpu = benchmark_script("bench_gpu")
    assert bench_gpu.PRESETS["gpu"]["sizes"] == (256, 512, 1024) and bench_gpu.PRESETS["gpu"]["device"] == "cuda"
    result = bench_gpu.main(["--preset", "cpu-twin", "--tokenizer", str(tiny_models["tokenizer"]),
                             "--out", str(tmp_path), "--threads", "1"])
    ok = [r for r in result["speed"] if r["status"] == "ok"]
    assert {r["prior"] for r in ok} == {"ar", "maskgit", "sundae"}
    assert {(r["prior"], r["steps"], r["batch"]) for r in ok} >= {("ar", None, 1), ("ar", None, 2),
                                                                  ("sundae", 2, 1), ("maskgit", 2, 2)}
    ar = next(r for r in ok if r["prior"] == "ar" and r["batch"] == 1)
    assert ar["weights"] == "untrained" and ar["implementation"] == "static KV cache, eager, fp32"
    assert ar["timed_runs"] == 1 and ar["total_p50_s"] > 0
    text = (tmp_path / "headline.md").read_text()
    assert "| 32 | sundae | 2 |" in text and "AR / this" in text
    assert json.loads((tmp_path / "headline.json").read_text())["preset"] == "cpu-twin"
    assert (tmp_path / "bench.json").is_file()
