"""`nar bench` quality, per prior x steps: images at ``quality_size`` against procedural images,
with two reference rows (real vs real: the floor; tokenizer reconstructions: the ceiling any
prior on this tokenizer can reach)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from nar.core.device import precision_context
from nar.core.errors import NarError
from nar.core.images import array_to_tensor
from nar.core.timing import Timer
from nar.data.landscapes import SCENES, generate_landscape
from nar.eval.inception import load_inception
from nar.eval.metrics import evaluate_images
from nar.eval.scene_classifier import default_path, load_scene_classifier
from nar.eval.sharpness import relative_to, sharpness_report
from nar.pipelines.bench.settings import (TRAINED, UNTRAINED, UNTRAINED_NOTE, BenchEntry, BenchSettings,
                                          BenchTokenizer, steps_for)
from nar.pipelines.bench.speed import _Runner
from nar.pipelines.upscale import prior_native_size, sample_plan


# ---- quality -------------------------------------------------------------------------------
def sample_seed(s: BenchSettings, i: int) -> int:
    """Seed of the quality batch that starts at sample i: ``--seed`` moves the samples (a second
    sample set against the same real sets, to see a row's seed spread); seed 0 keeps the original set."""
    return s.quality_seed + 500_000 + 100_000 * s.seed + i


def real_scenes(n: int, balanced: bool) -> list[str | None]:
    """The scene of each real image: ``balanced`` gives image i scene i mod C (every scene n / C
    times, as the class-balanced sample rows ask for them); otherwise each seed draws its own (None)."""
    return [SCENES[i % len(SCENES)] if balanced else None for i in range(n)]


def real_labels(n: int, classes) -> torch.Tensor | None:
    """(n,) class ids, in the order of ``classes`` (the scene classifier's), of a balanced real set;
    None when the classifier does not know every scene."""
    classes = list(classes)
    if not set(SCENES) <= set(classes):
        return None
    return torch.tensor([classes.index(scene) for scene in real_scenes(n, balanced=True)])


def render_real(n: int, size: int, seed: int, balanced: bool = False) -> torch.Tensor:
    """n procedural landscapes (seeds seed, seed+1, ...) as (n, 3, size, size) floats in [-1, 1].

    The generator draws scenes uniformly, so a 144-image set can hold 33 coasts and 16 lakes; FD in
    a scene classifier's features reads such a set's class mix. ``balanced`` forces the scenes to
    equal counts (every other choice of each seed is kept): the same distribution, stratified."""
    return torch.stack([array_to_tensor(generate_landscape(seed + i, size, size, scene=scene)[0])
                        for i, scene in enumerate(real_scenes(n, balanced))])


def _quality_row(row: str, kind: str, weights: str, size: int, steps=None) -> dict[str, Any]:
    return {"row": row, "kind": kind, "weights": weights, "steps": steps, "steps_run": None, "cfg": None, "size": size,
            "n_real": None, "n_fake": None, "fd_nar": None, "precision": None, "recall": None, "is_nar": None,
            "fid": None, "is_inception": None, "class_fidelity": None, "class_fidelity_per_class": None,
            "time_per_image_s": None, "grad_energy_vs_real": None,
            "hf_share_vs_real": None, "block_ratios": None, "block_ratio_max": None, "status": "ok", "note": ""}


def merged_patch_sizes(prior, factor: int) -> list[int]:
    """Pixel pitches at which a prior's images could show squares: the tokenizer's cell, and
    every patch its network merges (SUNDAE's hourglass: factor × cumulative shortening)."""
    sizes, total = {factor}, 1
    for s in getattr(getattr(getattr(prior, "cfg", None), "net", None), "shorten", ()) or ():
        total *= int(s)
        sizes.add(factor * total)
    return sorted(sizes)


def block_pitches(prior, factor: int, size: int) -> list[int]:
    """`merged_patch_sizes` in a ``size``² image: magnified by the super-resolution passes when the
    prior draws it below that size (a 512²-native prior's 16-px cells are 32 px at 1024²)."""
    _, passes = sample_plan(size, prior_native_size(prior, factor))
    return [b << passes for b in merged_patch_sizes(prior, factor)]


def _sharpness_into(row: dict, images: torch.Tensor, real: dict, blocks: list[int]) -> None:
    blocks = [b for b in blocks if b < min(images.shape[-2:])]
    rep = relative_to(sharpness_report(images, blocks=blocks), real)
    row["grad_energy_vs_real"] = rep.get("grad_energy_vs_real")
    row["hf_share_vs_real"] = rep.get("hf_share_vs_real")
    ratios = {b: rep[f"block_ratio_{b}"] for b in blocks}
    row["block_ratios"] = ", ".join(f"{b}px {v:.2f}" for b, v in ratios.items())
    row["block_ratio_max"] = max(ratios.values()) if ratios else None


def class_names_mismatch(classifier, prior) -> str:
    """Why nar's scene classifier cannot score a prior's class-balanced samples ("" when it can):
    the prior must name its classes, in the classifier's order."""
    names = list(getattr(prior, "meta_info", {}).get("class_names") or [])
    if names == list(classifier.classes):
        return ""
    why = "the prior does not name its classes" if not names else \
        f"the prior's classes ({', '.join(names)}) are not the scene classifier's"
    return f"no class fidelity: {why}"


def _metrics_into(row: dict, report: dict) -> None:
    for k in ("fd_nar", "precision", "recall", "is_nar", "fid", "is_inception", "n_real", "n_fake", "class_fidelity"):
        row[k] = report.get(k)
    if "class_fidelity_detail" in report:  # {class: share seen as asked}, for the JSON
        row["class_fidelity_per_class"] = report["class_fidelity_detail"]["per_class"]
    row["labels"] = report.get("labels", {})


def quality_rows(entries: list[BenchEntry], tokenizer: BenchTokenizer, device: torch.device,
                 settings: BenchSettings, classifier, inception, speed: list[dict],
                 log: Callable[[str], None], classifier_missing: str | None = None) -> list[dict[str, Any]]:
    """Reference rows and one row per prior (x steps for priors with steps)."""
    s = settings
    size = s.quality_size
    n = s.n_quality
    rows: list[dict[str, Any]] = []

    def evaluate(real, fake, fake_labels=None):
        return evaluate_images(real, fake, classifier=classifier, fake_labels=fake_labels,
                               inception=inception if inception is not None else False, device=device)

    have_metric = classifier is not None
    no_metric = f"no nar feature network: {classifier_missing}" if not have_metric else ""

    real_a = real_b = None
    if have_metric:
        log(f"quality: rendering {2 * n} procedural images at {size}x{size}")
        balanced = s.real_classes == "balanced"
        real_a = render_real(n, size, s.quality_seed, balanced)
        real_b = render_real(n, size, s.quality_seed + n, balanced)

    # reference 1: real vs real (two disjoint procedural sets): the floor
    ref = _quality_row("real vs real (floor)", "reference", "-", size)
    f = int(tokenizer.model.factor)
    real_sharp = sharpness_report(real_a, blocks=(f,)) if real_a is not None else {}
    if have_metric:
        _metrics_into(ref, evaluate(real_a, real_b))
        _sharpness_into(ref, real_b, real_sharp, [f])
        ref["note"] = (f"procedural seeds {s.quality_seed}.. vs {s.quality_seed + n}.., scenes "
                       + (f"balanced (image i: scene i mod {len(SCENES)})" if balanced else "drawn by each seed"))
    else:
        ref.update(status="n/a", note=no_metric)
    rows.append(ref)

    # reference 2: tokenizer reconstructions of the second set vs the first set: the best a prior can reach
    rec = _quality_row("tokenizer reconstruction", "reference", TRAINED if tokenizer.trained else UNTRAINED, size)
    if not tokenizer.trained:
        rec.update(status=UNTRAINED, note="untrained tokenizer: reconstructions are not meaningful")
    elif not have_metric:
        rec.update(status="n/a", note=no_metric)
    elif getattr(tokenizer.model, "decode_only", False) or not hasattr(tokenizer.model, "encode"):
        rec.update(status="n/a", note="tokenizer loaded decode-only (no encoder)")
    elif size % int(tokenizer.model.factor):
        rec.update(status="n/a", note=f"quality size {size} is not a multiple of the factor")
    else:
        with torch.inference_mode():
            recon = torch.cat([_decode_as_sampled(tokenizer.model, tokenizer.model.encode(b.to(device)), s)
                               for b in real_b.split(s.quality_batch)]).clamp(-1, 1)
        # a balanced set's scenes are known: its reconstructions' class fidelity is the priors' ceiling
        _metrics_into(rec, evaluate(real_a, recon, real_labels(n, classifier.classes) if balanced else None))
        _sharpness_into(rec, recon, real_sharp, [f])
        rec["note"] = "encode + decode of the second real set, against the first" + (
            "; class fidelity: its scenes as the classifier sees them" if balanced else "")
    rows.append(rec)

    for entry in entries:
        for steps in steps_for(entry.prior, s.quality_steps or s.steps):
            row = _quality_row(entry.name, "prior", entry.weights, size, steps)
            if not entry.trained:
                row.update(status=UNTRAINED, note=f"{UNTRAINED_NOTE}; quality needs a trained model")
                rows.append(row)
                continue
            if not tokenizer.trained:
                row.update(status=UNTRAINED, note="untrained tokenizer: no quality")
                rows.append(row)
                continue
            if not have_metric:
                row.update(status="n/a", note=no_metric)
                rows.append(row)
                continue
            if size % f:
                row.update(status="skipped", note=f"quality size {size} is not a multiple of the factor {f}")
                rows.append(row)
                continue
            runner = _Runner(entry, tokenizer.model, device, s, Timer(device))
            classes = int(getattr(entry.prior, "num_classes", 0) or 0)
            guided = s.quality_cfg is not None and classes > 0
            row["cfg"] = s.quality_cfg if guided else None
            try:
                # above the prior's native size: drawn there, then super-resolved as `nar sample` does
                gen_size, passes = sample_plan(size, prior_native_size(entry.prior, f))
                grid = (gen_size // f, gen_size // f)
                upscale = _upscaler(passes, device, s.sharpen_amount)
                fakes, runs, seconds = [], [], 0.0
                for i in range(0, n, s.quality_batch):
                    b = min(s.quality_batch, n - i)
                    cond = (torch.arange(i, i + b, device=device) % classes) if guided else None
                    out, images, ts, td = runner.timed(b, grid, steps, sample_seed(s, i), cond=cond,
                                                       cfg=s.quality_cfg if guided else 1.0)
                    images, t_sr = Timer(device).time(upscale, images.float().cpu().clamp(-1, 1))
                    fakes.append(images)
                    runs.append(out.steps_run)
                    seconds += ts + td + t_sr
                fakes = torch.cat(fakes)
                mismatch = class_names_mismatch(classifier, entry.prior) if guided else ""
                asked = torch.arange(n) % classes if guided and not mismatch else None
                _metrics_into(row, evaluate(real_a, fakes, asked))
                _sharpness_into(row, fakes, real_sharp, block_pitches(entry.prior, f, size))
                row["steps_run"] = sum(runs) / len(runs)
                match = [r for r in speed if r["prior"] == entry.name and r["size"] == size
                         and r["steps"] == steps and r["batch"] == 1 and r["status"] == "ok"]
                notes = ([f"class-balanced samples, cfg {s.quality_cfg:g}"] if guided else
                         ["unconditional model: unconditional samples"] if s.quality_cfg is not None else [])
                notes += [mismatch] if mismatch else []
                if passes:
                    notes.append(f"drawn at {gen_size}², {1 << passes}x super-resolution"
                                 + (f", sharpened {s.sharpen_amount:g}" if s.sharpen_amount else ""))
                if match and not guided:  # the speed rows are unguided: a guided row times itself
                    row["time_per_image_s"] = match[0]["total_p50_s"]
                else:
                    row["time_per_image_s"] = seconds / n
                    notes.append(f"time per image from the quality run (batch {s.quality_batch})")
                row["note"] = "; ".join(notes)
            except NarError as e:
                row.update(status="skipped", note=str(e))
            except Exception as e:  # noqa: BLE001
                log(f"[red]error[/] quality {entry.name} steps={steps}: {type(e).__name__}: {e}")
                row.update(status="error", note=f"{type(e).__name__}: {e}")
            rows.append(row)
    return rows


def _upscaler(passes: int, device: torch.device, sharpen: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Images (B, 3, H, W) -> ``passes`` times 2x super-resolved, the first pass sharpened, as
    `nar sample` does (the identity for 0 passes); a missing SR model is a NarError (the row is skipped)."""
    if not passes:
        return lambda images: images
    from nar.pipelines.upscale import load_sr, upscale_tensor
    model = load_sr(None, device)
    return lambda images: upscale_tensor(images, model, passes=passes, sharpen=sharpen)


def load_quality_nets(device: torch.device, inception_path: str | Path | None, want: bool,
                      log: Callable[[str], None] = print):
    """(classifier, classifier_source, classifier_missing, inception, inception_source)."""
    if not want:
        return None, None, "quality disabled", None, None
    classifier = missing = source = None
    try:
        classifier = load_scene_classifier(None, device)
        source = f"scene classifier {default_path().name}"
    except NarError as e:
        missing = str(e)
        log(f"quality: {missing}")
    inception = load_inception(inception_path, device=device)
    inception_source = getattr(getattr(inception, "info", None), "path", None) if inception is not None else None
    return classifier, source, missing, inception, inception_source


def _decode_as_sampled(model, tokens: torch.Tensor, s: BenchSettings) -> torch.Tensor:
    """Reconstructions: encoded in fp32, decoded in the precision the priors' rows decode in."""
    with torch.inference_mode(), precision_context(tokens.device, s.decode_precision):
        return model.decode_tokens(tokens).float().cpu()
