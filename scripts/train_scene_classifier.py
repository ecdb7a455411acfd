#!/usr/bin/env python
"""Train nar's scene classifier (the "nar features" for FD / precision / recall) and ship it.

    python scripts/train_scene_classifier.py --out runs/scene_cls --steps 400

1. renders ``--n-per-class`` procedural landscapes of every scene at ``--render-size``² and
   caches them in memory at ``--store-size``² (uint8; random crops are taken from there);
2. trains the classifier with nar's shared loop (`nar.train.loop.train`, resumable:
   re-running with the same ``--out`` continues);
3. measures accuracy on held-out seeds (a disjoint seed range) rendered at 256² and 512²;
4. writes the fp16 weights with their accuracy to ``--asset`` (default: the shipped
   ``nar/assets/scene_classifier.safetensors``) unless ``--no-install``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nar.core.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from nar.core.errors import NarError  # noqa: E402
from nar.eval.scene_classifier import (  # noqa: E402
    Augment, SceneClassifier, SceneClassifierConfig, SceneClassifierTask, default_path,
    evaluate_accuracy, landscapes_fingerprint, render_scene_set,
)
from nar.train.loop import MODEL_FILE, TrainConfig, train  # noqa: E402
from nar.core.progress import progress_bar  # noqa: E402

HELDOUT_OFFSET = 50_000_000   # held-out seeds start here (training seeds are below it)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/scene_cls", help="run folder (resumable)")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--n-per-class", type=int, default=400, help="training images per scene")
    p.add_argument("--render-size", type=int, default=256)
    p.add_argument("--store-size", type=int, default=144, help="cache resolution (crops come from it)")
    p.add_argument("--input-size", type=int, default=128)
    p.add_argument("--heldout-per-class", type=int, default=100, help="held-out images per scene at 256²")
    p.add_argument("--heldout-512-per-class", type=int, default=10, help="held-out images per scene at 512²")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--device", default="auto")
    p.add_argument("--asset", default=str(default_path()), help="where to write the shipped fp16 weights")
    p.add_argument("--no-install", action="store_true", help="do not write --asset")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def render(n_per_class: int, render_size: int, store_size: int, seed: int, progress: bool, desc: str):
    from nar.data.landscapes import SCENES
    with progress_bar(progress, total=n_per_class * len(SCENES), desc=desc) as advance:
        return render_scene_set(n_per_class, render_size, store_size, seed, on_image=advance)


@torch.no_grad()
def heldout_accuracy(model: SceneClassifier, args, progress: bool) -> dict:
    model.eval()
    base = HELDOUT_OFFSET + args.seed * 1_000_000
    imgs, labels = render(args.heldout_per_class, 256, 256, base, progress, "held-out 256²")
    res256 = evaluate_accuracy(model, imgs, labels)
    del imgs
    out = {"256": res256}
    if args.heldout_512_per_class > 0:
        imgs, labels = render(args.heldout_512_per_class, 512, 512, base + 500_000, progress, "held-out 512²")
        out["512"] = evaluate_accuracy(model, imgs, labels, batch_size=32)
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    progress = not args.no_progress
    t_start = time.time()
    torch.manual_seed(args.seed)
    cfg = SceneClassifierConfig(input_size=args.input_size)
    model = SceneClassifier(cfg)
    run_dir = Path(args.out)

    fingerprint = landscapes_fingerprint()
    t0 = time.time()
    train_seed = args.seed * 1_000_000
    images, labels = render(args.n_per_class, args.render_size, args.store_size, train_seed, progress, "render")
    t_render = time.time() - t0

    task = SceneClassifierTask(model, images, labels, batch_size=args.batch_size, augment=Augment())
    tcfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup,
                       min_lr_ratio=0.02, weight_decay=0.05, beta2=0.99, log_every=25,
                       ckpt_every=max(100, args.steps // 4), snapshot_every=0, seed=args.seed,
                       device=args.device)
    t0 = time.time()
    train(task, tcfg, run_dir, progress=progress)
    t_train = time.time() - t0

    tensors, meta = load_checkpoint(run_dir / MODEL_FILE)
    trained = SceneClassifier(cfg)
    trained.load_state_dict(tensors)
    trained = trained.cpu().eval()
    t0 = time.time()
    acc = heldout_accuracy(trained, args, progress)
    t_eval = time.time() - t0
    if landscapes_fingerprint(reload=True) != fingerprint:
        raise NarError("nar.data.landscapes changed while training (its renders differ); run again")

    summary = {
        "heldout_accuracy_256": acc["256"]["accuracy"],
        "heldout_accuracy_512": acc.get("512", {}).get("accuracy"),
        "per_class_256": acc["256"]["per_class"],
        "confusion_256": acc["256"]["confusion"],
        "n_train": int(images.shape[0]), "steps": args.steps, "batch_size": args.batch_size,
        "render_s": round(t_render, 1), "train_s": round(t_train, 1), "eval_s": round(t_eval, 1),
        "total_s": round(time.time() - t_start, 1),
        "command": "python scripts/train_scene_classifier.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    (run_dir / "heldout.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "confusion_256"}, indent=2))
    print("confusion (256², rows = true " + ", ".join(cfg.classes) + "):")
    for row in summary["confusion_256"]:
        print("  " + " ".join(f"{v:4d}" for v in row))

    if not args.no_install:
        ship_meta = trained.meta()
        ship_meta.update(step=meta.get("step"), train=meta.get("train"), augment=meta.get("augment"),
                         dtype="float16", heldout=summary, landscapes_fingerprint=fingerprint)
        half = {k: (v.half() if v.is_floating_point() else v) for k, v in trained.state_dict().items()}
        path = save_checkpoint(args.asset, half, ship_meta)
        path.chmod(0o644)  # a shipped file, readable by all (mkstemp creates 0600)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NarError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
