"""The one training loop: tokenizer and every prior plug into it through a `TrainTask`.

nanoGPT-style and deliberately plain. What it owns:
- AdamW per named optimizer (a GAN has two), linear warm-up + cosine decay, grad clipping;
- bf16 autocast where the hardware has it natively (CUDA, CPUs with AVX512-BF16 / AMX); optional EMA of the model weights;
- exact resume: every step reseeds torch from (seed, step) and tasks draw their batch from
  ``step_generator(seed, step)``, so a resumed run replays the same batches and noise;
- data parallelism under torchrun (`nar.train.distributed`): the generator is the same on
  every rank and tasks keep their rank's part of the global batch; gradients are averaged
  over ranks before clipping; rank 0 alone writes (others wait at a barrier);
- atomic safetensors checkpoints (`model.safetensors` for use, `state.safetensors` to resume),
  JSONL metrics, periodic snapshots (sample / reconstruction grids) and a rich progress bar;
  optionally TensorBoard scalars and snapshot grids (``tensorboard=True``, rank 0 only,
  `nar.train.tensorboard`).
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch import nn

from nar.core.checkpoint import load_checkpoint, read_meta, save_checkpoint
from nar.core.config import to_dict
from nar.core.device import pick_device, precision_context
from nar.core.errors import NarError
from nar.core.progress import progress_bar
from nar.core.train_config import TrainConfig  # noqa: F401  (re-exported)
from nar.train import distributed
from nar.train.tensorboard import TensorBoardLog

MODEL_FILE = "model.safetensors"
STATE_FILE = "state.safetensors"
METRICS_FILE = "metrics.jsonl"


class TrainTask(Protocol):
    """What a model must provide to be trained by `train`."""

    model: nn.Module  # saved as model.safetensors (EMA weights when enabled)

    def optimizers(self) -> dict[str, list[nn.Parameter]]:
        """Parameter lists, one AdamW (and schedule) per name, e.g. {"gen": ..., "disc": ...}."""

    def train_step(self, step: int, generator: torch.Generator,
                   optimize: Callable[[str, torch.Tensor], None]) -> dict[str, float]:
        """Draw the batch for ``step`` from ``generator``, compute losses, call
        ``optimize(name, loss)`` once per optimizer that should step; return metrics.

        Under torchrun ``generator`` is the same on every rank: draw the *global* batch
        (batch_size x world size) from it and keep this rank's part (`distributed.part`), so
        the samples of a step do not depend on the world size. torch's global RNG is seeded
        per rank (rank-local noise)."""

    def checkpoint_meta(self) -> dict[str, Any]:
        """JSON metadata that makes model.safetensors self-describing (kind, name, config...)."""

    # Optional: ``extra_modules() -> dict[str, nn.Module]``, modules trained alongside but not
    # part of the model (e.g. a discriminator); they are checkpointed in state.safetensors.
    # Optional: ``data_state() -> dict`` (JSON) and ``load_data_state(state, saved_world_size)``
    # for data read as a stream (shards): where the stream stands, saved with the checkpoint.
    # Optional: ``saved_config(config) -> dict``, a saved run's config as this code reads it (fields
    # added since it was saved take their defaults), so a resume compares like with like.

    def snapshot(self, model: nn.Module, step: int, out_dir: Path) -> None:
        """Write a PNG grid of samples / reconstructions (``model`` is the EMA copy if any)."""


def step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step * 7919 + 12345) % (2**63 - 1)


def step_generator(seed: int, step: int, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(step_seed(seed, step))
    return g


def lr_at(step: int, cfg: TrainConfig) -> float:
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    progress = min(max(progress, 0.0), 1.0)
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def autocast_for(device: torch.device, bf16: bool):
    """bf16 autocast when asked for and the device has native bf16 (CUDA, or a CPU with
    AVX512-BF16 / AMX: 1.7x faster training steps on this project's CPU); fp32 otherwise."""
    return precision_context(device, "auto" if bf16 else "fp32")


def _make_optimizer(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.AdamW:
    # no weight decay on biases, norms and embeddings' 1-d gains
    decay = [p for p in params if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in params if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def _flatten_optimizer(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{name}.{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(name: str, tensors: dict[str, torch.Tensor], info: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optim.{name}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, field = key[len(prefix):].split(".", 1)
            state.setdefault(int(idx), {})[field] = value
    for key, value in info["scalars"].items():
        idx, field = key.split(".", 1)
        state.setdefault(int(idx), {})[field] = value
    return {"state": state, "param_groups": info["param_groups"]}


def _prefixed(prefix: str, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}{k}": v for k, v in sd.items()}


def _strip(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


class Trainer:
    def __init__(self, task: TrainTask, cfg: TrainConfig, run_dir: str | Path,
                 progress: bool = True, device: torch.device | None = None, tensorboard: bool = False):
        self.task, self.cfg, self.run_dir = task, cfg, Path(run_dir)
        self.tensorboard = tensorboard
        self.world = distributed.init()
        self.device = distributed.device_for(device or pick_device(cfg.device))
        self.progress = progress and self.world.is_main
        self.model = task.model.to(self.device)
        self.extras = {k: m.to(self.device) for k, m in getattr(task, "extra_modules", dict)().items()}
        self.opts = {name: _make_optimizer(list(params), cfg) for name, params in task.optimizers().items()}
        self.ema = None
        if cfg.ema_decay > 0:
            self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.step = 0

    # ---- checkpoints -------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        meta = dict(self.task.checkpoint_meta())
        meta.update(step=self.step, train=to_dict(self.cfg), ema=self.ema is not None,
                     world_size=self.world.size, global_batch=self.cfg.batch_size * self.world.size)
        return meta

    def save(self) -> None:
        """Rank 0 writes model.safetensors and state.safetensors; every rank waits for it."""
        if self.world.is_main:
            self._save()
        distributed.barrier()

    def _save(self) -> None:
        model_for_use = self.ema if self.ema is not None else self.model
        save_checkpoint(self.run_dir / MODEL_FILE, model_for_use.state_dict(), self._meta())
        tensors = _prefixed("model.", self.model.state_dict())
        if self.ema is not None:
            tensors.update(_prefixed("ema.", self.ema.state_dict()))
        for name, module in self.extras.items():
            tensors.update(_prefixed(f"extra.{name}.", module.state_dict()))
        optim_info = {}
        for name, opt in self.opts.items():
            t, info = _flatten_optimizer(name, opt)
            tensors.update(t)
            optim_info[name] = info
        meta = {"kind": "train_state", "step": self.step, "optim": optim_info,
                "model_meta": self._meta(), "world_size": self.world.size}
        if hasattr(self.task, "data_state"):
            meta["data"] = self.task.data_state()
        # model.safetensors first: if we die in between, state lags and resume redoes steps
        save_checkpoint(self.run_dir / STATE_FILE, tensors, meta)

    def try_resume(self) -> bool:
        path = self.run_dir / STATE_FILE
        if not path.exists():
            return False
        meta = read_meta(path)
        if meta.get("kind") != "train_state":
            raise NarError(f"{path} is not a nar training state")
        saved = dict(meta["model_meta"])
        mine = self.task.checkpoint_meta()
        if hasattr(self.task, "saved_config") and saved.get("kind") == mine.get("kind"):
            saved["config"] = self.task.saved_config(saved.get("config") or {})
        for key in ("kind", "name", "config"):
            if saved.get(key) != mine.get(key):
                raise NarError(f"{self.run_dir} holds a run with a different {key} "
                               f"({saved.get(key)!r}); use another run folder or the same config")
        tensors, _ = load_checkpoint(path)
        self.model.load_state_dict(_strip("model.", tensors))
        if self.ema is not None and saved.get("ema"):
            self.ema.load_state_dict(_strip("ema.", tensors))
        for name, module in self.extras.items():
            module.load_state_dict(_strip(f"extra.{name}.", tensors))
        for name, opt in self.opts.items():
            opt.load_state_dict(_unflatten_optimizer(name, tensors, meta["optim"][name]))
        self.step = int(meta["step"])
        saved_world = int(meta.get("world_size", 1))
        if hasattr(self.task, "load_data_state"):
            self.task.load_data_state(meta.get("data"), saved_world)
        if saved_world != self.world.size and self.world.is_main:
            self._log(f"resuming step {self.step} of a run trained on {saved_world} process(es) with "
                      f"{self.world.size}: same samples per step if the global batch is unchanged, "
                      "not bit-exact (rank-local noise and reduction order change)")
        if self.world.is_main:
            self._truncate_metrics(self.step)
        return True

    def _truncate_metrics(self, step: int) -> None:
        path = self.run_dir / METRICS_FILE
        if not path.exists():
            return
        keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= step]
        path.write_text("".join(ln + "\n" for ln in keep))

    # ---- the loop ----------------------------------------------------------------
    def _optimize(self, name: str, loss: torch.Tensor) -> None:
        opt = self.opts[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.world.distributed:
            distributed.average_grads([p for g in opt.param_groups for p in g["params"]])
        if self.cfg.grad_clip > 0:
            params = [p for g in opt.param_groups for p in g["params"]]
            norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
            self._grad_norms[name] = float(norm)
        lr = lr_at(self.step, self.cfg)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = min(self.cfg.ema_decay, (1 + self.step) / (10 + self.step))
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.lerp_(p, 1 - decay)
        for e, b in zip(self.ema.buffers(), self.model.buffers()):
            e.copy_(b)

    def _log(self, text: str) -> None:
        if self.world.is_main and (self.progress or self.world.distributed):
            print(text, flush=True)

    def run(self, resume: bool = True, until: int | None = None) -> Path:
        """Train to ``cfg.steps`` (or stop early after step ``until``, as an interruption would)."""
        main = self.world.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self._log(f"world size {self.world.size}"
                  + (f" ({self.world.backend})" if self.world.distributed else "")
                  + f", batch {self.cfg.batch_size} per process, global batch "
                  f"{self.cfg.batch_size * self.world.size}, device {self.device}")
        if resume:
            self.try_resume()
        elif (self.run_dir / STATE_FILE).exists():
            raise NarError(f"{self.run_dir} already holds a training run; resume it or pick another run folder")
        if self.world.distributed:
            distributed.all_same(self.step, "the step to start from")
            # rank 0's weights everywhere (as DDP does at construction), EMA included
            distributed.broadcast_state([self.model, *self.extras.values()]
                                        + ([self.ema] if self.ema is not None else []))
        if main:
            (self.run_dir / "config.json").write_text(json.dumps(self._meta(), indent=2))
        cfg = self.cfg
        t0, last = time.time(), {}
        tb = TensorBoardLog(self.run_dir, self.step) if main and self.tensorboard else None
        tb_mark = (time.perf_counter(), self.step)   # throughput since the previous log line
        with (open(self.run_dir / METRICS_FILE, "a") if main else contextlib.nullcontext()) as metrics_file, \
                progress_bar(self.progress, total=cfg.steps, start=self.step, desc="train") as advance:
            while self.step < min(cfg.steps, until or cfg.steps):
                torch.manual_seed(distributed.rank_seed(step_seed(cfg.seed, self.step), self.world.rank))
                gen = step_generator(cfg.seed, self.step)
                self._grad_norms = {}
                self.model.train()
                with autocast_for(self.device, cfg.bf16):
                    metrics = self.task.train_step(self.step, gen, self._optimize)
                if self.world.distributed:   # BatchNorm statistics follow rank 0, as in DDP
                    distributed.broadcast_norm_buffers([self.model, *self.extras.values()])
                if self.ema is not None:
                    self._update_ema()
                self.step += 1
                last = {k: float(v) for k, v in metrics.items()}
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    logged = distributed.mean_metrics(last)        # averaged over ranks
                    if main:
                        record = {"step": self.step, "lr": lr_at(self.step - 1, cfg),
                                  "time": round(time.time() - t0, 3), **logged,
                                  **{f"grad_norm_{k}": v for k, v in self._grad_norms.items()}}
                        metrics_file.write(json.dumps(record) + "\n")
                        metrics_file.flush()
                        if tb is not None:
                            now, steps = time.perf_counter(), self.step - tb_mark[1]
                            rate = steps / max(now - tb_mark[0], 1e-9)
                            tb.scalars(self.step, record, rate * cfg.batch_size * self.world.size, rate)
                            tb_mark = (now, self.step)
                advance(self.step, {k: v for k, v in last.items() if k in ("loss", "rec", "psnr", "usage")})
                if self.step % cfg.ckpt_every == 0 or self.step in (cfg.steps, until):
                    self.save()
                if main and cfg.snapshot_every and (self.step % cfg.snapshot_every == 0 or self.step == cfg.steps):
                    model = self.ema if self.ema is not None else self.model
                    model.eval()
                    self.task.snapshot(model, self.step, self.run_dir / "snapshots")
                    if tb is not None:
                        tb.image(self.step, self.run_dir / "snapshots" / f"step_{self.step:07d}.png")
        if tb is not None:
            tb.close()
        distributed.barrier()
        return self.run_dir


def train(task: TrainTask, cfg: TrainConfig, run_dir: str | Path, resume: bool = True,
          progress: bool = True, tensorboard: bool = False) -> Path:
    return Trainer(task, cfg, run_dir, progress=progress, tensorboard=tensorboard).run(resume=resume)
