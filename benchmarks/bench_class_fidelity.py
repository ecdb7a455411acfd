"""Do class-conditioned samples show the asked scene?

    PYTHONPATH=. python benchmarks/bench_class_fidelity.py --priors ar,maskgit --size 256
    PYTHONPATH=. python benchmarks/bench_class_fidelity.py --priors sundae --size 1024

For every prior and scene class, samples ``--per-class`` images with that class and
classifier-free guidance ``--cfg``, decodes them and asks nar's scene classifier (the one
behind nar's FD features and IS) which scene each shows. Reported per prior: accuracy over
all samples, per-class accuracy and the confusion matrix (rows: asked class, columns: seen
class). Two reference rows bound what a prior can reach: ``real`` (procedural images of the
class at the same size) and ``reconstruction`` (the same images through the tokenizer, the
ceiling for anything that draws through it).

Models: the shipped defaults, or ``--ckpt-dir`` with ``<prior>.safetensors`` /
``<prior>/model.safetensors``. Writes ``class_fidelity_<size>.json`` and ``.md`` in ``--out``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import track

from nar.core.images import to_tensor
from nar.data.landscapes import LandscapeDataset
from nar.eval.machine import environment, setup_device
from nar.eval.scene_classifier import evaluate_accuracy, shipped_scene_classifier
from nar.pipelines.models import prior_in_folder
from nar.pipelines.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[1]
HELD_OUT_SEED = 20_000  # disjoint from the seeds of the token caches and nar bench's sets


def prior_ckpt(ckpt_dir: Path | None, name: str) -> Path | None:
    """None: the shipped default; else the prior's checkpoint in ``ckpt_dir``."""
    if ckpt_dir is None:
        return None
    path = prior_in_folder(name, ckpt_dir)
    if path is None:
        raise SystemExit(f"no {name} checkpoint in {ckpt_dir}")
    return path


def reference_rows(pipe: Pipeline, size: int, per_class: int, classes: list[str], classifier) -> dict:
    """Accuracy on real images of each class and on their tokenizer reconstructions."""
    data = LandscapeDataset(per_class * len(classes), size, seed=HELD_OUT_SEED, scenes=classes)
    real = torch.stack([data[i][0] for i in range(len(data))])
    labels = torch.tensor([i % len(classes) for i in range(len(data))])
    recon = torch.cat([pipe.decode_tensor(pipe.encode(x)) for x in real.split(4)])
    return {"real": evaluate_accuracy(classifier, real, labels),
            "reconstruction": evaluate_accuracy(classifier, recon, labels)}


def prior_row(pipe: Pipeline, name: str, size: int, per_class: int, cfg: float, steps: int | None,
              classifier, seed: int) -> dict:
    classes = pipe.class_names(name)
    images, labels = [], []
    t0 = time.perf_counter()
    for class_id in track(range(len(classes)), description=f"{name} {size}²"):
        out = pipe.sample(prior=name, n=per_class, size=size, steps=steps, cond=[class_id] * per_class, cfg=cfg,
                          seed=seed + class_id)
        images.append(torch.stack([to_tensor(im) for im in out.images]))   # as saved: SR'd above native
        labels += [class_id] * per_class
    row = evaluate_accuracy(classifier, torch.cat(images), torch.tensor(labels))
    row.update(cfg=cfg, steps=steps, seconds=time.perf_counter() - t0)
    return row


def to_markdown(result: dict) -> str:
    classes = result["classes"]
    lines = [f"# Class fidelity at {result['size']}² ({result['per_class']} samples per class, "
             f"CFG {result['cfg']})", "",
             f"Command: `{result['command']}`  ", f"Device: {result['environment'].get('device_name', '')}", "",
             "| row | accuracy | " + " | ".join(classes) + " |",
             "| --- | --- | " + " | ".join("---" for _ in classes) + " |"]
    for name, row in result["rows"].items():
        cells = " | ".join(f"{row['per_class'][c]:.2f}" for c in classes)
        lines.append(f"| {name} | {row['accuracy']:.3f} | {cells} |")
    lines += ["", "Accuracy of nar's scene classifier on the images: `real` and `reconstruction` are "
              "procedural images of each class and their tokenizer round trip; prior rows are samples "
              "asked for that class. Confusion matrices (rows asked, columns seen) are in the JSON."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--priors", default="ar,maskgit,sundae")
    ap.add_argument("--size", type=int, required=True, help="image side in pixels")
    ap.add_argument("--per-class", type=int, default=4)
    ap.add_argument("--cfg", type=float, default=2.0)
    ap.add_argument("--steps", type=int, default=None, help="steps for parallel priors (default: each prior's)")
    ap.add_argument("--ckpt-dir", type=Path, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "class_fidelity")
    args = ap.parse_args()
    dev = setup_device(args.device, args.threads)
    console = Console()
    classifier = shipped_scene_classifier(dev)
    rows, classes = {}, None
    for name in [p.strip() for p in args.priors.split(",") if p.strip()]:
        ckpt = prior_ckpt(args.ckpt_dir, name)
        pipe = Pipeline.load(priors={name: ckpt} if ckpt else None, device=dev)
        if pipe.prior(name).num_classes == 0:
            raise SystemExit(f"{name}: unconditional model, nothing to check")
        if classes is None:
            classes = pipe.class_names(name)
            rows.update(reference_rows(pipe, args.size, args.per_class, classes, classifier))
        rows[name] = prior_row(pipe, name, args.size, args.per_class, args.cfg, args.steps, classifier, args.seed)
        console.print(f"{name}: accuracy {rows[name]['accuracy']:.3f} ({rows[name]['seconds']:.0f} s)")
    result = {"size": args.size, "per_class": args.per_class, "cfg": args.cfg, "classes": classes,
              "rows": rows, "command": "python benchmarks/bench_class_fidelity.py " +
              " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                       if v is not None and k not in ("out",)),
              "environment": {**environment(dev)}}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"class_fidelity_{args.size}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    stem.with_suffix(".md").write_text(to_markdown(result))
    console.print(to_markdown(result))
    console.print(f"wrote {stem}.json / .md")


if __name__ == "__main__":
    main()
