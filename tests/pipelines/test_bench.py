"""`nar bench` end to end on tiny models (seconds), its outputs, and the FLOP formulas."""
import csv
import dataclasses
import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from nar.core.config import from_dict, load_config, to_dict
from nar.core.errors import NarError
from nar.data.landscapes import SCENES
from nar.eval.scene_classifier import SceneClassifier, SceneClassifierConfig
from nar.pipelines.bench import (BenchEntry, BenchSettings, BenchTokenizer, parse_int_list, ratio_rows,
                                 run_bench)
from nar.pipelines.bench.flops import decoder_flops, flops_per_image
from nar.pipelines.bench.report import QUALITY_COLUMNS, RATIO_COLUMNS, SPEED_COLUMNS, sampling_defaults
from nar.priors import PRIORS
from nar.tokenizer.config import TokenizerConfig
from nar.tokenizer.model import VQGAN

TINY = {
    "ar": dict(dim=32, depth=1, heads=2, dim_head=16, ff_mult=2),
    "maskgit": dict(dim=32, depth=1, heads=2, ff_mult=2),
    "sundae": dict(net=dict(dim=32, heads=2, dim_head=16, depths=[1, 1, 1], shorten=[2], ff_mult=2)),
}


def tiny_prior(name, codebook_size=64, train_grid=(4, 4), num_classes=0, **extra):
    cls = PRIORS.get(name)
    data = to_dict(cls.config_cls())
    for key, value in {**TINY[name], **extra}.items():
        if isinstance(value, dict):
            data[key].update(value)
        else:
            data[key] = value
    torch.manual_seed(0)
    return cls(from_dict(cls.config_cls, data), codebook_size, num_classes, train_grid).eval()


@pytest.fixture(scope="module")
def tiny_tokenizer():
    torch.manual_seed(0)
    cfg = load_config(TokenizerConfig, None, {"ch": 8, "ch_mult": [1, 2, 2, 2], "num_res_blocks": 1,
                                              "z_channels": 16, "codebook_size": 64, "codebook_dim": 8,
                                              "image_size": 32, "crop": 32})
    return VQGAN(cfg).eval().requires_grad_(False)  # factor 8: 32 px -> 4x4 tokens


@pytest.fixture(scope="module")
def tiny_classifier():
    torch.manual_seed(0)
    return SceneClassifier(SceneClassifierConfig(widths=(4, 8), double=(False, False), input_size=32)).eval()


@pytest.fixture(scope="module")
def bench_result(tiny_tokenizer, tiny_classifier, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    entries = [BenchEntry("ar", tiny_prior("ar"), True, "tiny ar"),
               BenchEntry("maskgit", tiny_prior("maskgit"), True, "tiny maskgit"),
               BenchEntry("sundae", tiny_prior("sundae"), False, "tiny sundae, random weights")]
    settings = BenchSettings(sizes=(32, 24), steps=(1, 2), batches=(1, 2), repeats=2, warmup=1,
                             n_quality=5, quality_size=32, quality_batch=5, quality_steps=(2,))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: thread hand-offs cost more than they save on a busy machine
    try:
        result = run_bench(entries, BenchTokenizer(tiny_tokenizer, True, "tiny tokenizer"), "cpu", settings,
                           classifier=tiny_classifier, classifier_source="tiny classifier", out_dir=out,
                           log=lambda *_: None)
    finally:
        torch.set_num_threads(threads)
    return result, out


def test_json_has_every_speed_column(bench_result):
    result, out = bench_result
    data = json.loads((out / "bench.json").read_text())
    assert data["speed"], "no speed rows"
    for row in data["speed"]:
        assert set(SPEED_COLUMNS) <= set(row), set(SPEED_COLUMNS) - set(row)
    ok = [r for r in data["speed"] if r["status"] == "ok"]
    # every measured column is filled on every ok row
    for row in ok:
        for key in ("steps_run", "forward_passes", "gflops_per_image", "decode_gflops", "sample_p50_s",
                    "sample_p90_s", "decode_p50_s", "decode_p90_s", "total_p50_s", "total_p90_s",
                    "throughput_img_s", "tokens_per_s", "peak_mem_mb"):
            assert row[key] is not None and row[key] > 0, (row["prior"], key)
        assert row["total_p90_s"] >= row["total_p50_s"]
        assert row["peak_mem_kind"] == "process_rss_high_water"
    # the environment block says where the numbers come from
    env = data["environment"]
    for key in ("device_name", "cpu_count", "torch", "commit", "torch_threads", "date_utc"):
        assert key in env
    assert set(data["columns"]["speed"]) == set(SPEED_COLUMNS)


def test_rows_per_prior_size_steps_batch(bench_result):
    result, _ = bench_result
    speed = result["speed"]
    key = {(r["prior"], r["size"], r["steps"], r["batch"]) for r in speed}
    # ar has no steps: one row per size x batch; the others one per steps setting
    assert ("ar", 32, None, 1) in key and ("ar", 32, None, 2) in key
    assert {("maskgit", 32, s, b) for s in (1, 2) for b in (1, 2)} <= key
    assert len(speed) == 2 * (1 + 2 + 2) * 2  # sizes x (ar + maskgit steps + sundae steps) x batches
    ar = next(r for r in speed if r["prior"] == "ar" and r["size"] == 32 and r["batch"] == 1)
    assert ar["steps_run"] == ar["forward_passes"] == ar["tokens"] == 16
    assert ar["implementation"] == "static KV cache, eager, fp32" and "ran: static KV cache" in ar["note"]
    mg = next(r for r in speed if r["prior"] == "maskgit" and r["size"] == 32 and r["steps"] == 2)
    assert mg["forward_passes"] == 2


def test_skipped_rows_are_kept_with_a_reason(bench_result):
    result, _ = bench_result
    # 24 px -> 3x3 tokens: the hourglass (shortening 2) cannot take it
    sk = [r for r in result["speed"] if r["prior"] == "sundae" and r["size"] == 24]
    assert sk and all(r["status"] == "skipped" for r in sk)
    assert all("divisible" in r["note"] for r in sk)


def test_untrained_rows_are_labelled_and_have_no_quality(bench_result):
    result, _ = bench_result
    su = [r for r in result["speed"] if r["prior"] == "sundae" and r["status"] == "ok"]
    assert su and all(r["weights"] == "untrained" and "speed only" in r["note"] for r in su)
    q = [r for r in result["quality"] if r["row"] == "sundae"]
    assert q and all(r["status"] == "untrained" and r["fd_nar"] is None for r in q)


def test_quality_table(bench_result):
    result, out = bench_result
    data = json.loads((out / "bench.json").read_text())
    rows = {(r["row"], r["steps"]): r for r in data["quality"]}
    for row in data["quality"]:
        assert set(QUALITY_COLUMNS) <= set(row)
    floor = rows[("real vs real (floor)", None)]
    recon = rows[("tokenizer reconstruction", None)]
    ar = rows[("ar", None)]
    mg = rows[("maskgit", 2)]
    for r in (floor, recon, ar, mg):
        assert r["status"] == "ok", r
        assert r["fd_nar"] is not None and r["fd_nar"] >= 0
        assert 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1
        assert r["is_nar"] >= 1 - 1e-9
        assert r["n_fake"] == 5 and r["n_real"] == 5
        assert r["fid"] is None and r["is_inception"] is None  # no Inception weights in tests
    assert ar["time_per_image_s"] > 0 and mg["time_per_image_s"] > 0
    assert data["quality_settings"]["n"] == 5
    # sharpness beside FD: real vs real is ~1x real (five 32² scenes each: within 2x); every row names
    # its block pitches
    assert 0.5 < floor["grad_energy_vs_real"] < 2.0 and floor["block_ratios"].startswith("8px")
    for r in (recon, ar, mg):
        assert r["grad_energy_vs_real"] > 0 and r["hf_share_vs_real"] >= 0 and r["block_ratio_max"] > 0


def test_merged_patch_sizes_follow_the_hourglass():
    from types import SimpleNamespace
    from nar.pipelines.bench.quality import merged_patch_sizes
    sundae = SimpleNamespace(cfg=SimpleNamespace(net=SimpleNamespace(shorten=(2, 2))))
    assert merged_patch_sizes(sundae, 16) == [16, 32, 64]
    assert merged_patch_sizes(SimpleNamespace(cfg=SimpleNamespace()), 16) == [16]


def test_markdown_csv_and_plots_exist(bench_result):
    result, out = bench_result
    md = (out / "bench.md").read_text()
    assert "FD (nar features)" in md and "## Speed" in md and "## Quality" in md
    assert "FID" in md  # the (empty) Inception column is there, and labelled
    prior_lines = {line.split("`")[1]: line for line in md.splitlines() if line.startswith("- prior `")}
    assert "no nucleus filter" in prior_lines["ar"]  # each prior names the defaults it drew with
    assert "choice_temperature 4.5" in prior_lines["maskgit"] and "steps 12" in prior_lines["maskgit"]
    with open(out / "speed.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and list(rows[0]) == list(SPEED_COLUMNS)
    with open(out / "quality.csv") as f:
        assert list(next(csv.DictReader(f))) == list(QUALITY_COLUMNS)
    with open(out / "ratios.csv") as f:
        ratios = list(csv.DictReader(f))
    assert ratios and list(ratios[0]) == list(RATIO_COLUMNS)
    for name in ("time_vs_steps.png", "quality_vs_time.png"):
        assert (out / name).stat().st_size > 1000


def test_sampling_defaults_name_a_config_filter_and_only_a_real_one():
    assert sampling_defaults({"top_p": 0.98, "dim": 256}) == "top_p 0.98"
    assert sampling_defaults({"top_p": 1.0}) == "no nucleus filter"
    assert sampling_defaults({"top_p": 0.98, "guidance": "contrast"}) == "top_p 0.98, guidance contrast"
    assert sampling_defaults({"guidance": "null", "temperature": 1.0}) == "no sampling defaults of its own"
    assert sampling_defaults({"cfg_from": 0.2, "polish": 0.3}) == "cfg_from 0.2, polish 0.3"
    assert sampling_defaults({"cfg_from": 0.0, "polish": 0.0}) == "no sampling defaults of its own"
    assert sampling_defaults({"steps": 20, "temperature_end": 1.1}) == "steps 20, temperature_end 1.1"
    assert sampling_defaults({"temperature": 1.1, "top_p": 0.98}) == "temperature 1.1, top_p 0.98"
    assert sampling_defaults({"temperature": 1.0}) == "no sampling defaults of its own"   # the plain draw
    assert "not recorded" in sampling_defaults(None)


def test_ratio_rows_compare_ar_with_each_parallel_setting(bench_result):
    result, _ = bench_result
    r = [x for x in result["ratios"] if x["size"] == 32]
    assert {(x["vs"], x["steps"]) for x in r} == {("maskgit", 1), ("maskgit", 2), ("sundae", 1), ("sundae", 2)}
    for x in r:
        assert x["ar_forward_passes"] == 16 and x["sample_ratio"] > 0 and x["flops_ratio"] > 0


def test_shared_decode_in_quick_mode(bench_result):
    result, _ = bench_result
    ok = [r for r in result["speed"] if r["status"] == "ok" and r["size"] == 32 and r["batch"] == 1]
    # one decoder timing per size, the same in every prior's row, and said so
    assert len({r["decode_p50_s"] for r in ok}) == 1
    assert all("decode shared per size" in r["note"] and r["decode_shared"] for r in ok)
    assert any("decode shared per size" in n and "32px" in n for n in result["notes"])


def test_per_row_decode_and_slow_rows(tiny_tokenizer):
    entries = [BenchEntry("ar", tiny_prior("ar"), True, "tiny"), BenchEntry("sundae", tiny_prior("sundae"), True, "t")]
    settings = BenchSettings(sizes=(32,), steps=(2,), batches=(1,), repeats=3, warmup=1,
                             share_decode=False, slow_seconds=0.0, quality=False)
    result = run_bench(entries, tiny_tokenizer, "cpu", settings, log=lambda *_: None)
    rows = result["speed"]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    for r in rows:
        assert r["timed_runs"] == 1 and "1 run: warm-up took" in r["note"]  # every warm-up was "slow"
        assert len(r["decode_times_s"]) == 1 and "shared" not in r["note"] and not r["decode_shared"]
        assert r["total_p50_s"] == pytest.approx(r["sample_p50_s"] + r["decode_p50_s"])
    assert result["quality"] == []


class SeedRecorder(torch.nn.Module):
    """A stand-in prior that records the seed and temperature of every draw it is asked for."""
    default_steps = 2

    def __init__(self, name):
        super().__init__()
        self.name, self.seeds, self.temperatures, self.w = name, [], [], torch.nn.Parameter(torch.zeros(1))
        self.train_grid = (4, 4)

    def check_grid(self, grid):
        return grid

    def sample(self, n, grid, steps=None, generator=None, **kw):
        from nar.priors.base import SampleOutput
        self.seeds.append(generator.initial_seed())
        self.temperatures.append(kw.get("temperature"))
        tokens = torch.randint(64, (n, *grid), generator=generator)
        return SampleOutput(tokens=tokens, steps_run=steps, forward_passes=steps)


def test_same_seeds_for_every_prior(tiny_tokenizer):
    a, b = SeedRecorder("a"), SeedRecorder("b")
    settings = BenchSettings(sizes=(32,), steps=(2,), batches=(1,), repeats=3, warmup=1,
                             quality=False)
    result = run_bench([BenchEntry("a", a, True, "-"), BenchEntry("b", b, True, "-")], tiny_tokenizer, "cpu",
                       settings, log=lambda *_: None)
    assert a.seeds == b.seeds == [10_000, 0, 1, 2]  # warm-up seed, then seed + r for every prior
    assert set(a.temperatures) == {None}   # left to each prior: its config's own, else 1
    row = result["speed"][0]
    assert row["gflops_per_image"] is None and row["status"] == "ok"  # unknown prior: no FLOP formula


def test_the_bench_temperature_reaches_every_draw_and_is_checked(tiny_tokenizer):
    a = SeedRecorder("a")
    settings = BenchSettings(sizes=(32,), steps=(2,), batches=(1,), repeats=2, warmup=1, quality=False,
                             temperature=1.1).validate()
    run_bench([BenchEntry("a", a, True, "-")], tiny_tokenizer, "cpu", settings, log=lambda *_: None)
    assert a.temperatures == [1.1] * 3
    with pytest.raises(NarError, match="temperature"):
        BenchSettings(temperature=0.0).validate()


def test_ratio_arithmetic():
    speed = [{"prior": "ar", "size": 32, "grid": "4x4", "steps": None, "batch": 1, "status": "ok",
              "sample_p50_s": 2.0, "total_p50_s": 3.0, "forward_passes": 16, "gflops_per_image": 1.0,
              "gflop_per_s": 0.5, "weights": "trained"},
             {"prior": "sundae", "size": 32, "grid": "4x4", "steps": 4, "batch": 1, "status": "ok",
              "sample_p50_s": 0.5, "total_p50_s": 1.5, "forward_passes": 4, "gflops_per_image": 4.0,
              "gflop_per_s": 8.0, "weights": "trained"}]
    (row,) = ratio_rows(speed)
    assert row["sample_ratio"] == pytest.approx(4.0) and row["total_ratio"] == pytest.approx(2.0)
    assert row["flops_ratio"] == pytest.approx(0.25)


# ---- FLOPs: the analytic counts equal what torch's flop counter sees during sampling ---------
def _cpu_sdpa(q, k, v, *args, out_shape=None, **kwargs):
    return sdpa_flop_count(q, k, v)


def _counted(prior, grid, steps):
    # the CPU flash-attention kernel has no formula in torch's counter; give it the standard one
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        out = prior.sample(1, grid, steps=steps, generator=torch.Generator().manual_seed(0))
    return counter.get_total_flops(), out


@pytest.mark.parametrize("name,grid,train_grid,extra", [
    ("ar", (4, 4), (4, 4), {}),
    ("ar", (5, 5), (3, 4), {"first_token": "random"}),   # Taming's sliding window
    ("maskgit", (4, 6), (4, 4), {}),
    ("sundae", (4, 4), (4, 4), {}),
])
def test_flops_per_image_matches_flop_counter(name, grid, train_grid, extra):
    prior = tiny_prior(name, codebook_size=16, train_grid=train_grid, **extra)
    counted, out = _counted(prior, grid, steps=3)
    analytic, how = flops_per_image(prior, grid, steps_run=out.steps_run, forward_passes=out.forward_passes)
    assert analytic == counted, how


def test_ar_kv_cache_is_about_one_causal_forward_and_parallel_scales_with_steps():
    ar = tiny_prior("ar", codebook_size=16, train_grid=(8, 8))
    su = tiny_prior("sundae", codebook_size=16, train_grid=(8, 8))
    a, _ = flops_per_image(ar, (8, 8))
    s4, _ = flops_per_image(su, (8, 8), steps_run=4, forward_passes=4)
    s8, _ = flops_per_image(su, (8, 8), steps_run=8, forward_passes=8)
    assert s8 == 2 * s4
    assert a > 0


def test_flops_when_nothing_or_something_unscheduled_ran():
    mg = tiny_prior("maskgit", codebook_size=16, train_grid=(4, 4))
    su = tiny_prior("sundae", codebook_size=16, train_grid=(4, 4))
    assert flops_per_image(mg, (4, 4), steps_run=0, forward_passes=0)[0] == 0
    assert flops_per_image(su, (4, 4), steps_run=0, forward_passes=0)[0] == 0
    # passes off the mask schedule: full forwards, head on every token
    assert flops_per_image(mg, (4, 4), steps_run=3, forward_passes=5)[0] == 5 * mg.forward_flops((4, 4))


def test_decoder_flops_grow_with_the_grid(tiny_tokenizer):
    small = decoder_flops(tiny_tokenizer, (4, 4))
    big = decoder_flops(tiny_tokenizer, (8, 8))
    assert small > 0 and big == pytest.approx(4 * small, rel=0.05)


# ---- settings and options ----------------------------------------------------------------
def test_parse_int_list():
    assert parse_int_list("256, 512,1024", "--sizes") == [256, 512, 1024]
    assert parse_int_list(None, "--sizes") is None
    for bad in ("a,b", "0", "-4"):
        with pytest.raises(NarError):
            parse_int_list(bad, "--sizes")


def test_quality_cfg_samples_class_balanced_with_guidance(tiny_tokenizer, tiny_classifier):
    """--quality-cfg: a class-conditional prior's quality samples ask for class i mod C with that
    guidance, and the row times itself (the speed rows are unguided); an unconditional prior
    keeps unconditional samples."""
    conditional, unconditional = tiny_prior("maskgit", num_classes=3), tiny_prior("sundae")
    calls = {"maskgit": [], "sundae": []}
    for name, prior in (("maskgit", conditional), ("sundae", unconditional)):
        def recording(*args, _sample=prior.sample, _name=name, **kwargs):
            cond = kwargs.get("cond")
            calls[_name].append((None if cond is None else cond.tolist(), kwargs.get("cfg_scale")))
            return _sample(*args, **kwargs)
        prior.sample = recording
    settings = BenchSettings(sizes=(32,), steps=(1,), batches=(1,), repeats=1, warmup=0, n_quality=5,
                             quality_size=32, quality_batch=4, quality_steps=(1,), quality_cfg=2.0)
    result = run_bench([BenchEntry("maskgit", conditional, True, "-"), BenchEntry("sundae", unconditional, True, "-")],
                       tiny_tokenizer, "cpu", settings, classifier=tiny_classifier, log=lambda *_: None)
    guided = [c for c in calls["maskgit"] if c[0] is not None]
    assert guided == [([0, 1, 2, 0], 2.0), ([1], 2.0)]               # samples 0..4 -> classes 0 1 2 0 1
    assert all(c == (None, 1.0) for c in calls["maskgit"] if c[0] is None)  # the speed rows stay unguided
    assert all(c == (None, 1.0) for c in calls["sundae"])
    rows = {r["row"]: r for r in result["quality"] if r["kind"] == "prior"}
    assert rows["maskgit"]["cfg"] == 2.0 and "cfg 2" in rows["maskgit"]["note"]
    assert rows["maskgit"]["class_fidelity"] is None and "does not name its classes" in rows["maskgit"]["note"]
    assert rows["sundae"]["class_fidelity"] is None                 # unconditional: nothing asked
    assert rows["sundae"]["cfg"] is None and "unconditional model" in rows["sundae"]["note"]
    assert result["quality_settings"]["cfg"] == 2.0
    with pytest.raises(NarError):
        BenchSettings(quality_cfg=0.5).validate()


def test_guided_rows_read_class_fidelity_against_the_asked_classes(tiny_tokenizer, tiny_classifier):
    """A class-balanced row scores each sample against the class it asked for (i mod C); a
    prior that does not name its classes in the classifier's order gets no figure and a note."""
    import copy
    classifier = copy.deepcopy(tiny_classifier)
    k = len(classifier.classes)
    def embed(x, _embed=classifier.embed):                      # its own features, and "class 2" for every image
        return _embed(x)[0], torch.nn.functional.one_hot(torch.full((x.shape[0],), 2), k).float()
    classifier.embed = embed
    named, renamed = tiny_prior("maskgit", num_classes=k), tiny_prior("sundae", num_classes=k)
    named.meta_info = {"class_names": list(classifier.classes)}
    renamed.meta_info = {"class_names": list(reversed(classifier.classes))}
    n = k + 3                                                   # asked: 0 … k-1, 0, 1, 2: class 2 twice
    settings = BenchSettings(sizes=(32,), steps=(1,), batches=(1,), repeats=1, warmup=0, n_quality=n,
                             quality_size=32, quality_batch=4, quality_steps=(1,), quality_cfg=2.0)
    result = run_bench([BenchEntry("maskgit", named, True, "-"), BenchEntry("sundae", renamed, True, "-")],
                       tiny_tokenizer, "cpu", settings, classifier=classifier, log=lambda *_: None)
    rows = {r["row"]: r for r in result["quality"]}
    assert rows["maskgit"]["class_fidelity"] == pytest.approx(2 / n)
    assert rows["sundae"]["class_fidelity"] is None and "not the scene classifier's" in rows["sundae"]["note"]
    assert rows["real vs real (floor)"]["class_fidelity"] is None
    # the reconstructions of a balanced set ask for its scenes (image i: scene i mod 6): the ceiling
    scenes = [classifier.classes.index(s) for s in SCENES]
    assert rows["tokenizer reconstruction"]["class_fidelity"] == pytest.approx(
        sum(scenes[i % len(SCENES)] == 2 for i in range(n)) / n)
    assert "class fidelity: its scenes" in rows["tokenizer reconstruction"]["note"]
    assert rows["maskgit"]["class_fidelity_per_class"][classifier.classes[2]] == 1.0
    assert all(r["fd_nar"] is not None for r in rows.values())     # FD reads features, not the stub
    assert "scenes balanced" in rows["real vs real (floor)"]["note"]  # the default real sets
    assert result["quality_settings"]["real_classes"] == "balanced"


def test_balanced_real_sets_hold_every_scene_equally_and_keep_each_seed():
    """The quality rows' real sets: ``balanced`` gives image i scene i mod C, so a set of n holds
    each scene n / C times (a drawn set of 144 can hold 33 of one and 16 of another); each image is
    its seed's render with the scene forced, and ``drawn`` is the seeds' own scenes as before."""
    from collections import Counter

    from nar.core.images import array_to_tensor
    from nar.data.landscapes import SCENES, generate_landscape, landscape_label
    from nar.pipelines.bench.quality import real_scenes, render_real
    assert Counter(real_scenes(4 * len(SCENES), balanced=True)) == {s: 4 for s in SCENES}
    assert real_scenes(3, balanced=False) == [None] * 3
    seed, n = 1_000_000, len(SCENES) + 1
    balanced, drawn = render_real(n, 32, seed, balanced=True), render_real(n, 32, seed)
    for i in range(n):
        forced = generate_landscape(seed + i, 32, 32, scene=SCENES[i % len(SCENES)])[0]
        assert torch.equal(balanced[i], array_to_tensor(forced))
        same_scene = landscape_label(seed + i)["scene"] == SCENES[i % len(SCENES)]
        assert torch.equal(balanced[i], drawn[i]) == same_scene
    assert BenchSettings().real_classes == "balanced"
    with pytest.raises(NarError, match="real sets' scenes"):
        BenchSettings(real_classes="stratified").validate()


def test_settings_presets():
    quick, full = BenchSettings.quick(), BenchSettings.full()
    assert quick.mode == "quick" and full.mode == "full"
    assert set(full.steps) == {4, 8, 12, 20, 24} and full.sizes == (256, 512, 1024)
    assert full.slow_seconds is None and full.batch_budget_s is None  # --full never cuts runs
    with pytest.raises(NarError):
        BenchSettings(n_quality=2).validate()


def test_cli_bench_with_trained_checkpoints(tiny_models, tmp_path):
    """`nar bench` through the CLI on the session's tiny trained checkpoints: every row is
    'trained', quality rows have numbers, the files are written."""
    from typer.testing import CliRunner

    from nar.cli import app
    out = tmp_path / "bench"
    res = CliRunner().invoke(app, [
        "bench", "--ckpt-dir", str(tiny_models["root"]), "--tokenizer", str(tiny_models["tokenizer"]),
        "--sizes", "32", "--steps", "2", "--batch", "1", "--repeats", "1", "--n-quality", "5",
        "--quality-size", "32", "--threads", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    data = json.loads((out / "bench.json").read_text())
    assert {r["prior"] for r in data["speed"]} == set(PRIORS.names())
    assert all(r["weights"] == "trained" and r["status"] == "ok" for r in data["speed"])
    rows = {r["row"]: r for r in data["quality"]}
    for name in ["real vs real (floor)", "tokenizer reconstruction", *PRIORS.names()]:
        assert rows[name]["status"] == "ok" and rows[name]["fd_nar"] is not None, rows[name]
    assert data["tokenizer"]["trained"] and (out / "bench.md").exists()


def test_cli_bad_option_is_one_clear_error():
    from typer.testing import CliRunner

    from nar.cli import app
    res = CliRunner().invoke(app, ["bench", "--sizes", "big"])
    assert res.exit_code != 0
    assert isinstance(res.exception, NarError) and "--sizes" in str(res.exception)
    res = CliRunner().invoke(app, ["bench", "--temperature", "-1", "--no-quality"])
    assert res.exit_code != 0 and "temperature" in str(res.exception)


def test_a_prior_above_its_native_size_is_drawn_there_and_super_resolved(tiny_tokenizer, tiny_classifier,
                                                                         tiny_sr, monkeypatch):
    """A prior whose checkpoint learnt 32² scenes (4x4 tokens), benched at 64²: its quality samples
    and its speed row are the 32² draw + decode + 2x SR, as `nar sample --size 64` makes them; the
    block ratios are read at the drawn grid's pitch magnified by the SR."""
    import nar.pipelines.upscale as up
    monkeypatch.setattr(up, "default_sr_path", lambda: tiny_sr)
    prior = tiny_prior("maskgit")
    prior.meta_info = {"data_grid": [4, 4]}
    grids = []

    def recording(n, grid, *args, _sample=prior.sample, **kwargs):
        grids.append(tuple(grid))
        return _sample(n, grid, *args, **kwargs)
    prior.sample = recording
    settings = BenchSettings(sizes=(64,), steps=(1,), batches=(1,), repeats=1, warmup=0, n_quality=5,
                             quality_size=64, quality_batch=5, quality_steps=(1,))
    result = run_bench([BenchEntry("maskgit", prior, True, "-")], tiny_tokenizer, "cpu", settings,
                       classifier=tiny_classifier, log=lambda *_: None)
    assert set(grids) == {(4, 4)}
    row = next(r for r in result["quality"] if r["kind"] == "prior")
    assert row["status"] == "ok" and "drawn at 32², 2x super-resolution" in row["note"]
    assert row["block_ratios"].startswith("16px") and row["n_fake"] == 5
    speed = result["speed"][0]
    assert speed["size"] == 64 and speed["grid"] == "4x4" and speed["sr_p50_s"] > 0


def test_seed_moves_the_quality_samples_not_the_real_sets(tiny_tokenizer, tiny_classifier):
    """--seed draws a second sample set against the same real sets (a row's seed spread); seed 0
    keeps the original one."""
    from nar.pipelines.bench.quality import sample_seed
    prior = tiny_prior("maskgit")
    seeds, drawn = [], {}

    def recording(*args, _sample=prior.sample, **kwargs):
        seeds.append(int(kwargs["generator"].initial_seed()))
        out = _sample(*args, **kwargs)
        drawn[seeds[-1]] = out.tokens.clone()
        return out
    prior.sample = recording
    results = []
    for seed in (0, 1):
        seeds.clear()
        settings = BenchSettings(sizes=(32,), steps=(1,), batches=(1,), repeats=1, warmup=0, n_quality=4, seed=seed,
                                 quality_size=32, quality_batch=4, quality_steps=(1,))
        result = run_bench([BenchEntry("maskgit", prior, True, "-")], tiny_tokenizer, "cpu", settings,
                           classifier=tiny_classifier, log=lambda *_: None)
        assert sample_seed(settings, 0) in seeds
        assert result["quality_settings"]["sample_seed"] == sample_seed(settings, 0)
        results.append({r["row"]: r for r in result["quality"]})
    assert sample_seed(BenchSettings(), 0) == 1_500_000                        # seed 0: the original samples
    assert results[0]["real vs real (floor)"]["fd_nar"] == results[1]["real vs real (floor)"]["fd_nar"]
    first = BenchSettings(quality_steps=(1,), quality_batch=4)
    assert not torch.equal(drawn[sample_seed(first, 0)], drawn[sample_seed(dataclasses.replace(first, seed=1), 0)])
