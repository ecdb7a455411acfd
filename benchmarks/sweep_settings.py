"""Which sampling settings should a prior ship with? FD, class fidelity and sharpness per setting.

    PYTHONPATH=. python benchmarks/sweep_settings.py --prior sundae --size 1024 --per-class 8 \
        --setting "cfg=1" --setting "cfg=2" --setting "cfg=3,temperature=0.9"

Every setting samples ``--per-class`` images of every scene class (the same seeds for every
setting; ``cfg=0`` means unconditional: the null class, still counted per asked class for the
class-fidelity column, which then shows chance), decodes them, and reports against one procedural
real set of the same size and count:

- FD (nar features), precision / recall, and the reconstruction FD of a second real set (the
  floor the issue-13 target is set against);
- class fidelity: nar's scene classifier on the very same samples, overall and per asked class
  (the JSON keeps the confusion matrix), and on the reconstructions: the ceiling through this tokenizer;
- gradient energy, high-frequency share and block ratios (tokenizer cell and every merged patch)
  relative to the real set.

A setting is ``key=value`` pairs: ``cfg``, ``steps``, ``temperature``, ``top_k``, ``top_p``, and
any option the prior's sampler takes (sundae: ``temperature_end``, ``update_proportion``; maskgit:
``choice_temperature``). Writes ``sweep_<prior>_<size>.json`` / ``.md`` in ``--out``, and
``sweep_<prior>_<size>.jpg``: one row per setting, the first sample of every class (256² each).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.progress import track

from nar.core.config import parse_overrides
from nar.core.errors import NarError
from nar.core.images import to_tensor
from nar.eval.machine import environment, setup_device
from nar.eval.metrics import evaluate_images
from nar.eval.scene_classifier import shipped_scene_classifier
from nar.eval.sharpness import relative_to, sharpness_report
from nar.pipelines.bench.quality import block_pitches, real_labels, render_real
from nar.pipelines.bench.settings import REAL_CLASSES
from nar.pipelines.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[1]
REAL_SEED = 30_000  # disjoint from the training caches, the fresh-render streams and nar bench's sets
SAMPLE_KEYS = ("steps", "temperature", "top_k", "top_p")


def parse_setting(text: str) -> dict:
    try:
        return parse_overrides([part for part in text.split(",") if part.strip()])
    except NarError as e:
        raise SystemExit(f"bad setting {text!r} (key=value pairs separated by commas): {e}")


def sample_setting(pipe: Pipeline, prior: str, size: int, per_class: int, setting: dict, seed: int):
    """(images, asked labels, seconds): ``per_class`` samples of every class, decoded."""
    opts = dict(setting)
    cfg = float(opts.pop("cfg", 1.0))
    classes = pipe.class_names(prior)
    images, labels, t0 = [], [], time.perf_counter()
    for class_id in track(range(len(classes)), description=f"{prior} {setting}"):
        cond = [class_id] * per_class if cfg > 0 else None
        out = pipe.sample(prior=prior, n=per_class, size=size, cond=cond, cfg=max(cfg, 1.0),
                          seed=seed + 1000 * class_id, **opts)
        images.append(torch.stack([to_tensor(im) for im in out.images]))   # as saved: SR'd above native
        labels += [class_id] * per_class
    return torch.cat(images), torch.tensor(labels), time.perf_counter() - t0


def contact_sheet(rows: list[torch.Tensor], per_class: int, thumb: int = 256) -> Image.Image:
    """One row per setting: the first sample of every class, ``thumb`` px square each."""
    def row(images: torch.Tensor) -> np.ndarray:
        firsts = images[::per_class].clamp(-1, 1).add(1).mul(127.5).round().byte()
        tiles = [Image.fromarray(x.permute(1, 2, 0).numpy()).resize((thumb, thumb), Image.LANCZOS) for x in firsts]
        return np.concatenate([np.asarray(t) for t in tiles], axis=1)
    return Image.fromarray(np.concatenate([row(r) for r in rows], axis=0))


def quality(real, fake, real_sharp, blocks, classifier, device, labels=None) -> dict:
    """FD, precision / recall and sharpness of ``fake`` against ``real``; with ``labels`` (the class
    each image was asked for) also its class fidelity, per class and as a confusion matrix."""
    report = evaluate_images(real, fake, classifier=classifier, inception=False, device=device, fake_labels=labels)
    sharp = relative_to(sharpness_report(fake, blocks=blocks), real_sharp)
    row = {"fd": report.get("fd_nar"), "precision": report.get("precision"), "recall": report.get("recall"),
           "grad": sharp.get("grad_energy_vs_real"), "hf": sharp.get("hf_share_vs_real"),
           "blocks": {str(b): sharp[f"block_ratio_{b}"] for b in blocks}}
    if labels is not None:
        row["class_fidelity"] = report["class_fidelity"]
        row["class_fidelity_per_class"] = report["class_fidelity_detail"]["per_class"]
        row["confusion"] = report["class_fidelity_detail"]["confusion"]
    return row


def to_markdown(result: dict) -> str:
    blocks = result["blocks"]
    head = ["setting", "FD", "× recon", "precision", "recall", "class fidelity", "grad × real", "HF × real"]
    head += [f"block {b}" for b in blocks] + ["s / image"]
    lines = [f"# {result['prior']} settings at {result['size']}² ({result['n']} samples per row, "
             f"{result['per_class']} per class)", "",
             f"Command: `{result['command']}`  ", f"Device: {result['environment'].get('device_name', '')}", "",
             "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    recon = result["reconstruction"]["fd"]
    for row in [result["reconstruction"]] + result["rows"]:
        cells = [row["setting"], f"{row['fd']:.2f}", f"{row['fd'] / recon:.1f}×",
                 f"{row['precision']:.3f}", f"{row['recall']:.3f}",
                 "-" if row.get("class_fidelity") is None else f"{row['class_fidelity']:.3f}",
                 f"{row['grad']:.2f}", f"{row['hf']:.2f}"]
        cells += [f"{row['blocks'][str(b)]:.2f}" for b in blocks]
        cells.append("-" if row.get("seconds_per_image") is None else f"{row['seconds_per_image']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "FD: nar features against one procedural real set of the same size; `reconstruction`: "
              "a second real set through the tokenizer. Class fidelity: nar's scene classifier on the same "
              "samples (cfg 0: unconditional samples scored against the class their slot stands for: chance)."]
    per_class = [row for row in [result["reconstruction"]] + result["rows"] if row.get("class_fidelity_per_class")]
    if per_class:
        lines += ["", "Class fidelity per asked class:", ""]
        lines += [f"- {row['setting']}: " + ", ".join(f"{name} {v:.2f}" for name, v in
                                                      row["class_fidelity_per_class"].items()) for row in per_class]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prior", required=True)
    ap.add_argument("--setting", action="append", required=True, help="key=value,... (repeatable)")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--per-class", type=int, default=8)
    ap.add_argument("--ckpt", type=Path, action="append", default=None,
                    help="prior checkpoint (default: the shipped one); repeat to compare checkpoints on the same real set")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--real-classes", choices=REAL_CLASSES, default="balanced",
                    help="scenes of the real sets: equal counts (default) or each seed's own draw (before session 26)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "sweeps")
    args = ap.parse_args()
    settings = [parse_setting(s) for s in args.setting]
    dev = setup_device(args.device, args.threads)
    console = Console()
    ckpts = args.ckpt or [None]
    pipe = Pipeline.load(priors={args.prior: ckpts[0]} if ckpts[0] else None, device=dev)
    if pipe.prior(args.prior).num_classes == 0:
        raise SystemExit(f"{args.prior}: unconditional model; class fidelity needs classes")
    classifier = shipped_scene_classifier(dev)
    n = args.per_class * len(pipe.class_names(args.prior))
    blocks = block_pitches(pipe.prior(args.prior), int(pipe.tokenizer.factor), args.size)

    console.print(f"rendering {2 * n} real images at {args.size}²")
    balanced = args.real_classes == "balanced"
    real_a, real_b = render_real(n, args.size, REAL_SEED, balanced), render_real(n, args.size, REAL_SEED + n, balanced)
    real_sharp = sharpness_report(real_a, blocks=blocks)
    with torch.no_grad():  # not inference_mode: the tokenizer loads lazily, and its weights must stay normal tensors
        recon = torch.cat([pipe.decode_tensor(pipe.encode(b)).float().clamp(-1, 1) for b in real_b.split(4)])
    # the reconstructions' class fidelity (a balanced set's scenes are known) is the priors' ceiling
    recon_labels = real_labels(n, classifier.classes) if balanced else None
    reconstruction = {"setting": "reconstruction",
                      **quality(real_a, recon, real_sharp, blocks, classifier, dev, recon_labels)}

    rows, sheet_rows = [], []
    for ckpt, setting in [(c, s) for c in ckpts for s in settings]:
        if ckpt is not None and ckpt != ckpts[0]:  # the same tokenizer, loaded once
            pipe = Pipeline.load(tokenizer=pipe.full_tokenizer(), priors={args.prior: ckpt}, device=dev)
        images, labels, seconds = sample_setting(pipe, args.prior, args.size, args.per_class, setting, args.seed)
        sheet_rows.append(images)
        label = ", ".join(f"{k}={v}" for k, v in setting.items())
        row = {"setting": f"{ckpt.stem}: {label}" if len(ckpts) > 1 else label, "ckpt": str(ckpt or "shipped"),
               **quality(real_a, images, real_sharp, blocks, classifier, dev, labels),
               "seconds_per_image": seconds / len(images)}
        rows.append(row)
        console.print(f"{row['setting']}: FD {row['fd']:.2f} (recon {reconstruction['fd']:.2f}), "
                      f"class fidelity {row['class_fidelity']:.3f}, grad {row['grad']:.2f}, "
                      f"blocks {', '.join(f'{v:.2f}' for v in row['blocks'].values())}")
    result = {"prior": args.prior, "size": args.size, "per_class": args.per_class, "n": n, "blocks": blocks,
              "reconstruction": reconstruction, "rows": rows,
              "command": "python benchmarks/sweep_settings.py " + " ".join(
                  f"--{k.replace('_', '-')} {v!r}" if k == "setting" else f"--{k.replace('_', '-')} {v}"
                  for k, v in vars(args).items() if v is not None and k != "out"),
              "environment": environment(dev)}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"sweep_{args.prior}_{args.size}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    stem.with_suffix(".md").write_text(to_markdown(result))
    contact_sheet(sheet_rows, args.per_class).save(stem.with_suffix(".jpg"), quality=88)
    console.print(to_markdown(result))
    console.print(f"wrote {stem}.json / .md / .jpg")


if __name__ == "__main__":
    main()
