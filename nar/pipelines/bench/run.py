"""`nar bench`: every prior side by side on the same tokenizer, grid, seeds and machine.

Two layers:

- `run_bench(entries, tokenizer, device, settings, ...)` takes objects that are already
  built (priors, a tokenizer, optional quality networks) and measures them; tests pass tiny
  models to it.
- `bench_defaults(...)` builds those objects the way a user gets them, through the shared
  loader (`nar.pipelines.Pipeline`): the trained checkpoints when installed (or in
  ``ckpt_dir``), otherwise each prior built from ``configs/priors/<name>.toml`` with random
  weights — such rows are labelled "untrained" and are good for speed only (no quality
  numbers are produced for them).
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch

from nar.core.config import load_config, to_dict
from nar.core.recipes import recipes_dir
from nar.core.device import use_bf16
from nar.core.errors import NarError
from nar.core.timing import Timer
from nar.eval.machine import device_slug, environment, loadavg, setup_device
from nar.pipelines.bench.quality import load_quality_nets, quality_rows, sample_seed
from nar.pipelines.bench.report import print_tables, write_outputs
from nar.pipelines.bench.settings import (SHARED_DECODE_NOTE, BenchEntry, BenchSettings,
                                          BenchTokenizer, _has_steps)
from nar.pipelines.bench.speed import ratio_rows, speed_rows_for_size
from nar.pipelines.models import default_prior_path, default_tokenizer_path, prior_in_folder
from nar.pipelines.pipeline import Pipeline
from nar.pipelines.train_prior import load_prior_run_config
from nar.priors import PRIORS, prior_names
from nar.tokenizer.config import TokenizerConfig
from nar.tokenizer.model import VQGAN


# ---- the core ------------------------------------------------------------------------------
def run_bench(entries: list[BenchEntry], tokenizer: BenchTokenizer | Any, device: str | torch.device,
              settings: BenchSettings | None = None, classifier=None, inception=None,
              classifier_missing: str | None = None, inception_source: str | None = None,
              classifier_source: str | None = None, out_dir: str | Path | None = None,
              log: Callable[[str], None] = print, print_results: bool = False) -> dict[str, Any]:
    """Measure already-built priors with an already-built tokenizer.

    ``tokenizer``: a `BenchTokenizer` (or a bare VQGAN, taken as trained). ``classifier``:
    nar's scene classifier for FD / precision / recall / IS (None: quality columns say why,
    with ``classifier_missing``). ``inception``: a loaded Inception model or None (no FID).
    Writes the outputs under ``out_dir`` when given; returns the result dict.
    """
    s = (settings or BenchSettings()).validate()
    device = torch.device(device)
    if not isinstance(tokenizer, BenchTokenizer):
        tokenizer = BenchTokenizer(tokenizer, True, getattr(tokenizer, "path", "in-memory tokenizer"))
    tok = tokenizer.model
    if not entries:
        raise NarError("no priors to benchmark")
    timer = Timer(device)
    env = environment(device)
    env["precision"] = {e.name: _precision_name(e.prior, s.precision) for e in entries}
    env["precision"]["decoder"] = "bf16" if use_bf16(device, s.decode_precision) else "fp32"
    log(f"nar bench ({s.mode}) on {env['device_name']}: priors {', '.join(e.name for e in entries)}; "
        f"sizes {list(s.sizes)}; steps {list(s.steps) if s.steps else 'each prior default'}; "
        f"batches {list(s.batches)}; {torch.get_num_threads()} CPU thread(s); precision "
        + ", ".join(f"{k} {v}" for k, v in env["precision"].items()))

    t0 = time.perf_counter()
    speed: list[dict[str, Any]] = []
    decode_flops_cache: dict[int, int | None] = {}
    slow_before: dict = {}
    for size in sorted(s.sizes):
        speed.extend(speed_rows_for_size(entries, tok, device, size, s, timer, decode_flops_cache, log,
                                         slow_before))

    quality: list[dict[str, Any]] = []
    if s.quality:
        quality = quality_rows(entries, tokenizer, device, s, classifier, inception, speed, log,
                               classifier_missing=classifier_missing)

    env["load_avg_end"] = loadavg()
    notes = []
    if any(not e.trained for e in entries):
        names = ", ".join(e.name for e in entries if not e.trained)
        notes.append(f"untrained weights ({names}): built from their configs with random weights; their rows "
                     "measure speed only (time depends on the architecture, not on the weights, except "
                     "where a sampler stops early) and they have no quality numbers")
    if not tokenizer.trained:
        notes.append("untrained tokenizer (random weights, same architecture as the shipped config): decode "
                     "times are real, images are not")
    busy = _busy_note(env)
    if busy:
        notes.append(busy)
    if device.type != "cuda":
        notes.append("peak memory on CPU is the process-wide resident-set high-water mark (getrusage), "
                     "cumulative over the run, not per row")
    notes.append("FLOPs are analytic (matmuls/convolutions only); ar with a KV cache spends about one causal "
                 "forward in total but in h*w sequential steps when the grid fits its training grid (more under "
                 "the sliding window, which re-feeds each window's prefix), a parallel sampler one full forward "
                 "per step")
    if any(not _has_steps(e.prior) for e in entries):
        notes.append("ar has no steps setting: one row per size, steps run = tokens")
    shared_rows = [r for r in speed if r.get("decode_shared")]
    if shared_rows:
        per_size = {}
        for r in shared_rows:
            per_size.setdefault(r["size"], r.get("decode_note", ""))
        notes.append(f"'{SHARED_DECODE_NOTE}' (quick mode on CPU): decoding is timed once per size on random tokens "
                     "and shared by every prior's row at that size (a convolutional decoder's cost does not depend on "
                     "which prior made the tokens); total = sampling + that decode median. Decoder runs: "
                     + "; ".join(f"{k}px {v}" for k, v in sorted(per_size.items())))
    if s.slow_seconds is not None:
        notes.append(f"quick mode: a row whose warm-up image took more than {s.slow_seconds:g}s is timed "
                     f"{s.slow_repeats} time(s) (p50 = p90 = that run), and a prior that already took that long at a "
                     "smaller size is not warmed up again at the larger one (it is warm); --full never does either")
    if s.batch_budget_s is not None and any(r["batch"] > 1 for r in speed):
        notes.append(f"quick mode: batch > 1 rows estimated (2 x batch x seconds per image) to take more than "
                     f"{s.batch_budget_s:g}s are skipped; --full runs them")
    if classifier is None and s.quality:
        notes.append(f"quality: {classifier_missing or 'no nar feature network'}")
    if inception is None and s.quality:
        notes.append("no Inception weights given or found in the torch hub cache: FID and Inception IS are "
                     "absent; FD / IS over nar's scene classifier are reported instead (never called FID)")

    result = {
        "environment": env,
        "settings": {**asdict(s), "device": str(device)},
        "tokenizer": {"source": tokenizer.source, "trained": tokenizer.trained, "factor": int(tok.factor),
                      "codebook_size": int(getattr(tok, "codebook_size", 0))},
        "priors": [{"name": e.name, "source": e.source, "trained": e.trained,
                    "params_m": sum(p.numel() for p in e.prior.parameters()) / 1e6,
                    "train_grid": list(getattr(e.prior, "train_grid", [])),
                    "config": _config_dict(e.prior)} for e in entries],
        "quality_settings": {"n": s.n_quality, "size": s.quality_size, "seed": s.quality_seed,
                             "real_classes": s.real_classes,
                             "sample_seed": sample_seed(s, 0),
                             "cfg": s.quality_cfg if s.quality_cfg is not None else "none (unconditional samples)",
                             "steps": list(s.quality_steps or s.steps or []) or "each prior's default",
                             "enabled": s.quality,
                             "inception": inception_source if inception is not None else None,
                             "classifier": classifier_source if classifier is not None else None},
        "notes": notes,
        "speed": speed,
        "ratios": ratio_rows(speed),
        "quality": quality,
        "seconds": time.perf_counter() - t0,
    }
    if out_dir is not None:
        result["files"] = write_outputs(result, out_dir)
    if print_results:
        print_tables(result)
    return result


def _busy_note(env: dict) -> str | None:
    """A warning when other processes kept the CPUs busy during the run."""
    try:
        loads = [float(x) for x in str(env.get("load_avg_end") or env.get("load_avg_start")).split("/")]
    except ValueError:
        return None
    cpus = env.get("cpus_usable") or 1
    if loads[0] <= 0.75 * cpus and loads[1] <= 0.75 * cpus:
        return None
    return (f"the machine was busy (load average {env.get('load_avg_start')} at start, {env.get('load_avg_end')} at "
            f"the end, on {cpus} CPUs): wall times are inflated by other processes; cpu_time_p50_s is the "
            f"steadier figure{'' if env.get('torch_threads') == 1 else ' (with --threads 1 it is what an idle core takes)'}")


def _config_dict(prior) -> dict | None:
    try:
        return to_dict(prior.cfg)
    except Exception:  # noqa: BLE001
        return None


# ---- defaults: what `nar bench` builds -----------------------------------------------------
CONFIG_DIR = recipes_dir()   # the packaged recipes (configs/ in a checkout)
DEFAULT_TOKENIZER_CONFIG = "f32_1024.toml"


def _find_config(kind: str, name: str) -> Path | None:
    for root in (CONFIG_DIR, Path.cwd() / "configs"):
        p = root / kind / name
        if p.is_file():
            return p
    return None


def _prior_ckpt(name: str, ckpt_dir: Path | None) -> Path | None:
    if ckpt_dir is not None:
        return prior_in_folder(name, ckpt_dir)
    p = default_prior_path(name)
    return p if p.is_file() else None


def build_tokenizer(path: str | Path | None, device: torch.device, seed: int = 0,
                    log: Callable[[str], None] = print) -> BenchTokenizer:
    """The given tokenizer, else the installed default (both through the shared loader, with
    the encoder: the reconstruction row needs it), else an untrained one from configs/tokenizer."""
    p = Path(path) if path is not None else default_tokenizer_path()
    if path is not None and not p.is_file():
        raise NarError(f"tokenizer checkpoint not found: {p}")
    if p.is_file():
        return BenchTokenizer(Pipeline.load(tokenizer=p, device=device).full_tokenizer(), True, str(p))
    cfg_path = _find_config("tokenizer", DEFAULT_TOKENIZER_CONFIG)
    cfg = load_config(TokenizerConfig, cfg_path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VQGAN(cfg, decode_only=False)
    where = cfg_path.relative_to(CONFIG_DIR.parent) if cfg_path else "TokenizerConfig defaults"
    log(f"no trained tokenizer installed: untrained f{cfg.factor} tokenizer from {where} (speed only)")
    return BenchTokenizer(model.to(device).eval().requires_grad_(False), False,
                          f"untrained (random init from {where})")


def build_priors(names: list[str], tokenizer: BenchTokenizer, device: torch.device, max_grid: tuple[int, int],
                 ckpt_dir: str | Path | None = None, seed: int = 0,
                 log: Callable[[str], None] = print) -> list[BenchEntry]:
    """A trained checkpoint per prior when one is installed (or in ``ckpt_dir``), loaded by the
    shared loader against the tokenizer, otherwise the prior built from
    ``configs/priors/<name>.toml`` with random weights. Untrained priors get ``train_grid =
    max_grid`` so that ar samples every benchmarked grid directly with its KV cache (no sliding
    window), the configuration LlamaGen-style models are trained for."""
    ckpt_root = Path(ckpt_dir) if ckpt_dir is not None else None
    if ckpt_root is not None and not ckpt_root.is_dir():
        raise NarError(f"checkpoint folder {ckpt_root} is not a folder")
    for name in names:
        PRIORS.get(name)  # unknown names: one clear error listing the known ones
    paths = {name: _prior_ckpt(name, ckpt_root) for name in names}
    trained = {name: path for name, path in paths.items() if path is not None}
    if trained and not tokenizer.trained:
        name, path = next(iter(trained.items()))
        raise NarError(f"a trained {name!r} model was found ({path}) but no trained tokenizer; give one")
    pipe = Pipeline.load(tokenizer=tokenizer.model, priors=trained, device=device) if trained else None
    entries = []
    for name in names:
        if name in trained:
            entries.append(BenchEntry(name, pipe.prior(name), True, str(trained[name])))
            continue
        cfg_path = _find_config("priors", f"{name}.toml")
        cls, model_cfg, _ = load_prior_run_config(name, cfg_path)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            prior = cls(model_cfg, int(tokenizer.model.codebook_size), 0, max_grid)
        where = cfg_path.relative_to(CONFIG_DIR.parent) if cfg_path else f"{cls.config_cls.__name__} defaults"
        log(f"no trained {name!r} model installed: untrained, built from {where} (speed only)")
        entries.append(BenchEntry(name, prior.to(device).eval(), False, f"untrained (random init from {where})"))
    return entries


def _precision_name(prior, precision: str | None) -> str:
    says = getattr(prior, "samples_in_bf16", None)  # a stand-in prior may not say
    return "unknown" if says is None else "bf16" if says(precision) else "fp32"


def bench_defaults(priors: list[str] | None = None, sizes=None, steps=None, batches=None,
                   device: str = "cpu", full: bool = False, out: str | Path | None = None,
                   n_quality: int | None = None, inception: str | Path | None = None,
                   tokenizer: str | Path | None = None, ckpt_dir: str | Path | None = None,
                   quality: bool = True, repeats: int | None = None, seed: int = 0,
                   command: str | None = None, threads: int | None = None, quality_size: int | None = None,
                   precision: str | None = None, quality_cfg: float | None = None,
                   real_classes: str | None = None, temperature: float | None = None,
                   sharpen: float | None = None, log: Callable[[str], None] = print, print_results: bool = True) -> dict[str, Any]:
    """What `nar bench` runs: build (or load) everything, measure, write, print."""
    dev = setup_device(device, threads)
    over: dict[str, Any] = {"seed": seed, "quality": quality, "command": command, "threads": threads,
                            "precision": precision}
    for key, value in (("sizes", sizes), ("steps", steps), ("batches", batches)):
        if value:
            over[key] = tuple(int(v) for v in value)
    if n_quality is not None:
        over["n_quality"] = int(n_quality)
    if quality_size is not None:
        over["quality_size"] = int(quality_size)
    if repeats is not None:
        over["repeats"] = int(repeats)
    if quality_cfg is not None:
        over["quality_cfg"] = float(quality_cfg)
    if real_classes is not None:
        over["real_classes"] = real_classes
    if temperature is not None:
        over["temperature"] = float(temperature)
    if sharpen is not None:
        over["sharpen"] = float(sharpen)
    settings = (BenchSettings.full(**over) if full else BenchSettings.quick(**over)).validate()

    names = list(priors) if priors else prior_names()
    tok = build_tokenizer(tokenizer, dev, seed=seed, log=log)
    f = int(tok.model.factor)
    side = max(s // f for s in settings.sizes) or 1
    entries = build_priors(names, tok, dev, (side, side), ckpt_dir=ckpt_dir, seed=seed, log=log)
    # the real-vs-real reference row needs only the feature networks, so load them even
    # when every prior is untrained
    classifier, csource, cmissing, incep, isource = load_quality_nets(dev, inception, settings.quality, log)
    out_dir = Path(out) if out is not None else Path("benchmarks") / "results" / device_slug(dev)
    return run_bench(entries, tok, dev, settings, classifier=classifier, inception=incep,
                     classifier_missing=cmissing, inception_source=isource, classifier_source=csource,
                     out_dir=out_dir, log=log, print_results=print_results)


