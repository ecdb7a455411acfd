"""Copy trained checkpoints into the package as the default models (fp16 weights + metadata).

    python scripts/ship_models.py runs/defaults
    python scripts/ship_models.py --sr runs/sr_v2      # the 2x super-resolution model alone
    python scripts/ship_models.py --prior ar runs/ar_1024         # one prior on the shipped tokenizer's tokens
    python scripts/ship_models.py --decoder runs/tok_gan512       # a decoder-only tokenizer fine-tune
    python scripts/ship_models.py --finetune maskgit runs/mg512s2 [PARENT] [--note "how it was carried over"]
    python scripts/ship_models.py --sampling maskgit choice_temperature=7 steps=16 [--note "why"]   # sampling defaults only

expects RUN/tokenizer/model.safetensors and RUN/{ar,maskgit,sundae}/model.safetensors.
The shipped tokenizer keeps the content hash of the weights it was trained as, so priors
trained on its token cache still match it; priors point at the shipped tokenizer.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from nar.core.checkpoint import load_checkpoint, read_meta, save_checkpoint, tensors_hash
from nar.core.errors import NarError
from nar.pipelines.models import MODELS_DIR, TOKENIZER_FILE
from nar.pipelines.train_prior import FRESH_POOL_DIR
from nar.tokenizer import tokenizer_hash


def this_machine() -> str:
    """The CPU that ships the models: training runs on the same machine (1 torch thread) in this project."""
    name = "CPU"
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            name = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()}-core {name}, 1 torch thread"


def n_params(tensors: dict[str, torch.Tensor]) -> int:
    return sum(v.numel() for v in tensors.values() if v.is_floating_point())


def half(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}


def training_record(run_dir: Path, step: int | None, token_cache: str | None = None) -> dict:
    """Steps, wall time (summed over resumed stages: the loop's clock restarts on resume),
    hardware and data, for `nar models` and the model card."""
    wall, prev = 0.0, 0.0
    metrics = run_dir / "metrics.jsonl"
    for line in metrics.read_text().splitlines() if metrics.exists() else []:
        t = json.loads(line).get("time")
        if t is None:
            continue
        if t < prev:
            wall += prev
        prev = t
    record = {"steps": step, "wall_hours": round((wall + prev) / 3600, 2),
              "hardware": this_machine()}
    header = None
    schedule = run_dir / "fresh_schedule.json"     # `nar train --fresh`: grids made while it trained
    if schedule.exists():
        fresh = json.loads(schedule.read_text())
        made = int(fresh["initial"] + fresh["per_step"] * (step or 0))
        window = f", batches from the newest {fresh['window']}" if fresh.get("window") else ""
        own_pool = (run_dir / FRESH_POOL_DIR).resolve()
        pool = Path(fresh.get("folder") or own_pool).resolve()
        if pool == own_pool:
            made_by = "encoded while it trained"
        else:   # --fresh-dir: another run's pool, which that run's worker (or this one's) filled
            made_by = f"read from the shared pool {os.path.relpath(pool, Path.cwd())}"
        record["data"] = (f"fresh procedural {fresh['size']}² renders {made_by} "
                          f"(LandscapeDataset seed {fresh['seed']}: {made} grids by step {step}{window})")
        return record
    for name in ("header.json", "index.json"):   # a single cache, or a sharded one (index.json)
        if token_cache and (Path(token_cache) / name).exists():
            header = Path(token_cache) / name
            break
    if header is not None:
        h = json.loads(header.read_text())
        record["data"] = f"{h['n']} token grids {h['grid'][0]}x{h['grid'][1]} of {h.get('source', '')} " \
                         f"at {h['image_size'][0]}²"
    return record


def save_prior(name: str, run: Path, tensors: dict[str, torch.Tensor], meta: dict, factor: int | None,
               record: dict, how: str = "") -> None:
    """nar/assets/models/NAME.safetensors: fp16 weights, the prior's metadata without the paths of
    the machine it trained on, and its training record."""
    dst = MODELS_DIR / f"{name}.safetensors"
    meta = {**meta, "tokenizer_path": None, "token_cache": None, "weights_dtype": "float16",
            "source_run": str(run), "params": n_params(tensors), "tokenizer_factor": factor, "training": record}
    save_checkpoint(dst, half(tensors), meta)
    print(f"{name} ({how}step {meta.get('step')}) -> {dst}")


def main(run: Path) -> None:
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    tok_src = run / "tokenizer" / "model.safetensors"
    tensors, meta = load_checkpoint(tok_src)
    meta = {**meta, "hash": tokenizer_hash(tok_src), "weights_dtype": "float16", "source_run": str(run),
            "params": n_params(tensors),
            "training": {**training_record(tok_src.parent, meta.get("step")),
                         "data": "fresh procedural landscapes per step, 4 x 128² crops of 256² renders"}}
    save_checkpoint(MODELS_DIR / TOKENIZER_FILE, half(tensors), meta)
    factor = meta.get("factor")
    print(f"tokenizer -> {MODELS_DIR / TOKENIZER_FILE}")
    for name in ("ar", "maskgit", "sundae"):
        src = run / name / "model.safetensors"
        if not src.exists():
            print(f"{name}: no checkpoint at {src}, skipped")
            continue
        tensors, meta = load_checkpoint(src)
        if meta.get("tokenizer_hash") != tokenizer_hash(tok_src):
            raise SystemExit(f"{src} was not trained on {tok_src}'s tokens")
        save_prior(name, run / name, tensors, meta, factor,
                   training_record(src.parent, meta.get("step"), meta.get("token_cache")))


def ship_sr(run: Path, cpu_hours: float | None = None) -> None:
    """The 2x super-resolution model: RUN/model.safetensors (EMA weights) -> nar/assets/models/sr.safetensors.
    ``cpu_hours``: measured process CPU time when known (the machine is shared, so wall x threads overstates it)."""
    from nar.pipelines.upscale import SR_FILE
    src = run / "model.safetensors"
    tensors, meta = load_checkpoint(src)
    if meta.get("kind") != "sr":
        raise SystemExit(f"{src} is not a super-resolution checkpoint")
    data = meta.get("data") or {}
    record = training_record(run, meta.get("step"))
    if cpu_hours is not None:
        record["cpu_hours"] = cpu_hours
    else:   # one torch thread: CPU time <= wall time (less on a shared machine)
        record["cpu_hours_at_most"] = record["wall_hours"]
    low_res = ("the (2L)² render box-averaged (2x supersampled)" if data.get("low_res", "render") == "supersampled"
               else "a plain L² render")
    crops = (f"each the busiest of {data['crop_candidates']} placements" if data.get("crop_candidates", 1) > 1
             else "uniform placements")
    record["data"] = (f"fresh procedural scene pairs per step ({data.get('scenes_per_step')} per step), rendered at "
                      f"(2L)² for L in {data.get('lr_sizes')}, input {low_res}; aligned {data.get('crop')}² -> "
                      f"{2 * data.get('crop', 0)}² crops ({crops}), batch {meta.get('train', {}).get('batch_size')}")
    meta = {**meta, "weights_dtype": "float16", "source_run": str(run), "params": n_params(tensors),
            "training": record}
    save_checkpoint(MODELS_DIR / SR_FILE, half(tensors), meta)
    print(f"sr (step {meta.get('step')}) -> {MODELS_DIR / SR_FILE}")


def ship_prior(name: str, run: Path) -> None:
    """A prior trained from scratch on the shipped tokenizer's tokens: RUN/model.safetensors
    replaces nar/assets/models/NAME.safetensors (the set's other models stay)."""
    tok_hash = tokenizer_hash(MODELS_DIR / TOKENIZER_FILE)
    src = run / "model.safetensors"
    tensors, meta = load_checkpoint(src)
    if meta.get("kind") != "prior" or meta.get("name") != name:
        raise SystemExit(f"{src} is not a {name} prior")
    if meta.get("tokenizer_hash") != tok_hash:
        raise SystemExit(f"{src} was not trained on the shipped tokenizer's tokens")
    save_prior(name, run, tensors, meta, read_meta(MODELS_DIR / TOKENIZER_FILE).get("factor"),
               training_record(run, meta.get("step"), meta.get("token_cache")))


def ship_decoder(run: Path) -> None:
    """A decoder-only fine-tune of the shipped tokenizer (train_parts = "decoder"): its encoder
    and codebook are the shipped ones, so it keeps the shipped tokens' hash and every shipped
    prior stays valid. The record keeps the parent's training."""
    dst = MODELS_DIR / TOKENIZER_FILE
    parent = read_meta(dst)
    src = run / "model.safetensors"
    tensors, meta = load_checkpoint(src)
    if meta.get("kind") != "tokenizer" or meta.get("config", {}).get("train_parts") != "decoder":
        raise SystemExit(f"{src} is not a decoder-only tokenizer fine-tune")
    if meta.get("tokens_hash") != tokenizer_hash(dst):
        raise SystemExit(f"{src} was not fine-tuned from the shipped tokenizer (its tokens differ)")
    record = training_record(run, meta.get("step"))
    record["data"] = (f"fresh procedural landscapes per step, {meta['config']['crops_per_image']} x "
                      f"{meta['config']['crop']}² crops of {meta['config']['image_size']}² renders; decoder only")
    record["fine_tuned_from"] = {"tokenizer": parent.get("hash"), "step": parent.get("step"),
                                 "training": parent.get("training")}
    stage = meta["config"].get("init_from")   # a staged fine-tune: count the stage it started from
    if stage and Path(stage).resolve().parent != MODELS_DIR and (Path(stage).parent / "metrics.jsonl").exists():
        earlier = read_meta(Path(stage))
        record["earlier_stage"] = {"run": str(Path(stage).parent),
                                   **training_record(Path(stage).parent, earlier.get("step"))}
    # "hash": the weights it was trained as; tokens_hash (kept): the shipped tokens it makes
    meta = {**meta, "hash": tensors_hash(tensors), "weights_dtype": "float16", "source_run": str(run),
            "params": n_params(tensors), "training": record}
    save_checkpoint(dst, half(tensors), meta)
    print(f"tokenizer (decoder fine-tune, step {meta.get('step')}) -> {dst}")


def ship_finetune(name: str, run: Path, parent_name: str | None = None, note: str | None = None) -> None:
    """A prior fine-tuned from a shipped one (`nar train --init-from`): RUN/model.safetensors
    replaces nar/assets/models/NAME.safetensors; its record keeps the parent's training. The
    parent is the shipped NAME, or the shipped PARENT_NAME (e.g. a maskgit started from sundae);
    a later step of the run that made the shipped NAME keeps that model's parent.
    ``note``: how the parent's weights were carried over, when not as they were."""
    parent = read_meta(MODELS_DIR / f"{parent_name or name}.safetensors")
    src = run / "model.safetensors"
    tensors, meta = load_checkpoint(src)
    if meta.get("tokenizer_hash") != parent.get("tokenizer_hash"):
        raise SystemExit(f"{src} was not trained on the shipped tokenizer's tokens")
    record = training_record(run, meta.get("step"), meta.get("token_cache"))
    if parent.get("source_run") == str(run) and parent.get("name") == name:
        # a later step of the very run that made the shipped model: the record, which counts the
        # whole run, keeps the shipped model's parent rather than counting the run twice
        record["fine_tuned_from"] = parent["training"].get("fine_tuned_from")
    else:
        record["fine_tuned_from"] = ({"prior": parent.get("name")} | {k: parent.get(k) for k in ("step", "source_run")}
                                     | {"training": parent.get("training")})
    if note:
        record["fine_tuned_from"]["how"] = note
    save_prior(name, run, tensors, meta, parent.get("tokenizer_factor"), record, how="fine-tuned, ")


def ship_sampling(name: str, settings: dict, note: str | None = None) -> None:
    """New sampling defaults for a shipped prior: only keys that are both fields of its config
    and sampling settings (``steps``, ``temperature``, ``top_p`` or one of the prior's ``sample_options``) may change (a field
    added to the config after the file was written starts from its default); the weights are
    written back as they are, and the record lists every change (``sampling_changes``)."""
    from dataclasses import MISSING, fields
    from nar.core.config import from_dict
    from nar.priors import PRIORS
    dst = MODELS_DIR / f"{name}.safetensors"
    tensors, meta = load_checkpoint(dst)
    cls = PRIORS.get(name)
    config = dict(meta["config"])
    defaults = {f.name: f.default for f in fields(cls.config_cls) if f.default is not MISSING}
    allowed = {"steps", "temperature", "top_p", *cls.sample_options} & (set(config) | set(defaults))
    changes = []
    for key, value in settings.items():
        if key not in allowed:
            raise SystemExit(f"{name}: {key!r} is not a sampling default in its config "
                             f"(one of: {', '.join(sorted(allowed))})")
        before = config.get(key, defaults.get(key))
        if isinstance(before, float) and isinstance(value, int):
            value = float(value)   # "7" parses as an int; the config holds a float
        changes.append({"key": key, "from": before, "to": value})
        config[key] = value
    try:   # the new config must still load
        from_dict(cls.config_cls, config, where=f"{name} config")
    except (NarError, TypeError, ValueError) as e:
        raise SystemExit(f"{name}: the new sampling defaults do not make a valid config: {e}")
    change = {"step": meta.get("step"), "changes": changes} | ({"note": note} if note else {})
    meta = {**meta, "config": config, "sampling_changes": [*meta.get("sampling_changes", []), change]}
    save_checkpoint(dst, tensors, meta)
    print(f"{name}: sampling defaults " + ", ".join(f"{c['key']} {c['from']} -> {c['to']}" for c in changes)
          + f" -> {dst}")


def cli() -> None:
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__)
        return
    note = None
    if "--note" in sys.argv:   # --finetune / --sampling ... --note TEXT: how the weights were carried over, or why
        i = sys.argv.index("--note")
        if i + 1 == len(sys.argv):
            raise SystemExit("ship_models: --note needs its text")
        note = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    if len(sys.argv) > 3 and sys.argv[1] == "--sampling":   # python scripts/ship_models.py --sampling maskgit steps=16
        from nar.core.config import parse_overrides
        ship_sampling(sys.argv[2], parse_overrides(sys.argv[3:]), note)
    elif len(sys.argv) > 3 and sys.argv[1] == "--finetune":   # python scripts/ship_models.py --finetune sundae runs/sundae_local [PARENT]
        ship_finetune(sys.argv[2], Path(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None, note)
    elif len(sys.argv) > 3 and sys.argv[1] == "--prior":  # python scripts/ship_models.py --prior ar runs/ar_1024
        ship_prior(sys.argv[2], Path(sys.argv[3]))
    elif len(sys.argv) > 2 and sys.argv[1] == "--decoder":  # python scripts/ship_models.py --decoder runs/tok_gan512
        ship_decoder(Path(sys.argv[2]))
    elif len(sys.argv) > 2 and sys.argv[1] == "--sr":     # python scripts/ship_models.py --sr runs/sr_v2 [CPU_HOURS]
        ship_sr(Path(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else None)
    elif len(sys.argv) > 1 and sys.argv[1].startswith("-"):
        raise SystemExit(f"ship_models: {sys.argv[1]} needs its arguments, or is not an option (see --help)")
    else:
        main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/defaults"))


if __name__ == "__main__":
    try:
        cli()
    except NarError as e:   # a missing or wrong checkpoint: one line, not a traceback
        raise SystemExit(f"ship_models: {e}")
