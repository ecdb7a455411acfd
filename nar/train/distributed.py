"""Data-parallel training under ``torchrun``: the one place that knows about ranks.

Every training command runs unchanged as one process or as N processes started by
``torchrun`` (``torchrun --nproc_per_node N -m nar train ...``). torchrun sets RANK /
WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; `init` reads them and joins the process
group (gloo for CPU tensors, NCCL for CUDA tensors: the ``cpu:gloo,cuda:nccl`` backend when a
GPU is present, plain gloo otherwise). Without those variables (or with WORLD_SIZE=1) every
function here is a cheap no-op, so the single-process path is exactly what it always was.

How the shared loop (`nar.train.loop.Trainer`) uses this module:

- **data**: the step generator is the same on every rank; a task draws the *global* batch
  (per-rank batch x world size) from it and keeps its own rank's part (`part`). The global
  batch of a step is therefore the same whatever the world size, and ranks never share a
  sample. Rank-local randomness (masks, dropout, noise) comes from torch's global RNG, seeded
  per rank (`rank_seed`; rank 0 keeps the single-process seed).
- **gradients**: after each ``loss.backward()`` the loop averages the gradients of that
  optimizer's parameters over ranks (`average_grads`: bucketed flat all-reduce, the same
  arithmetic as ``DistributedDataParallel``). We do this in the loop instead of wrapping the
  model in ``torch.nn.parallel.DistributedDataParallel`` because DDP synchronises through
  ``forward()``, while nar's tasks train through other methods (``prior.loss``), run two
  optimizers over a generator and a discriminator that the generator's loss also passes
  through, and take ``autograd.grad`` of the decoder's last layer for the adaptive GAN weight;
  every one of those needs DDP special cases (``no_sync``, ``find_unused_parameters``,
  static graphs). The cost: no overlap of communication with the backward pass.
- **buffers** (BatchNorm statistics in the discriminator): broadcast from rank 0 after every
  step, as DDP's ``broadcast_buffers`` does. The VQ codebook's EMA buffers are already
  synchronised by vector-quantize-pytorch itself (it all-reduces its cluster counts and sums
  when a process group exists at construction), which is why `init` must run before a model
  is built.
- **writes**: rank 0 alone writes logs, EMA weights, snapshots and checkpoints; the others
  wait at a barrier. Every rank reads the resume state (the run folder must be on a
  filesystem all nodes share).
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from nar.core.errors import NarError

BUCKET_ELEMENTS = 1 << 24      # 16 M floats (64 MB) per all-reduce bucket
TIMEOUT_MINUTES = 30


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str = "none"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def launched() -> bool:
    """True when this process was started by torchrun (or similar) with more than one rank."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        raise NarError(f"WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} is not a number") from None


def init() -> World:
    """Join the process group torchrun describes (idempotent); a single process otherwise."""
    if not launched():
        return World()
    if not dist.is_initialized():
        for var in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            if var not in os.environ:
                raise NarError(f"WORLD_SIZE is set but {var} is not: start distributed runs with torchrun")
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]) % torch.cuda.device_count())
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=TIMEOUT_MINUTES))
    return world()


def world() -> World:
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)),
                 str(dist.get_backend()))


def rank() -> int:
    return world().rank


def world_size() -> int:
    return world().size


def is_main() -> bool:
    return world().is_main


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if world().distributed:
        dist.barrier()


def device_for(device: torch.device) -> torch.device:
    """Each rank of a CUDA run gets its own GPU (LOCAL_RANK); CPU stays CPU."""
    w = world()
    if w.distributed and device.type == "cuda" and device.index is None:
        return torch.device("cuda", w.local_rank % torch.cuda.device_count())
    return device


def rank_seed(seed: int, rank_: int | None = None) -> int:
    """Per-rank seed for rank-local randomness; rank 0 keeps ``seed`` (the single-process run)."""
    r = rank() if rank_ is None else rank_
    return (seed + r * 0x9E3779B97F4A7C15) % (2 ** 63 - 1)


def part(global_n: int, rank_: int | None = None, size: int | None = None) -> slice:
    """This rank's contiguous slice of ``global_n`` items (equal parts; global_n % size == 0)."""
    r = rank() if rank_ is None else rank_
    n = world_size() if size is None else size
    per = global_n // n
    return slice(r * per, (r + 1) * per)


def _buckets(tensors: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Tensors grouped by (device, dtype) into buckets of at most BUCKET_ELEMENTS elements."""
    groups: dict[tuple, list[list[torch.Tensor]]] = {}
    for t in tensors:
        key = (t.device, t.dtype)
        bucket_list = groups.setdefault(key, [[]])
        if bucket_list[-1] and sum(x.numel() for x in bucket_list[-1]) + t.numel() > BUCKET_ELEMENTS:
            bucket_list.append([])
        bucket_list[-1].append(t)
    return [b for lists in groups.values() for b in lists if b]


@torch.no_grad()
def average_grads(params: list[torch.nn.Parameter]) -> None:
    """Average ``.grad`` over ranks, in place. A parameter without a gradient on a rank counts
    as zero there; it gets a gradient only if some rank produced one (so AdamW skips a
    parameter exactly when a single process would have)."""
    w = world()
    if not w.distributed:
        return
    params = [p for p in params if p.requires_grad]
    if not params:
        return
    # which parameters have a gradient somewhere: one small all-reduce
    device = params[0].device
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=device)
    dist.all_reduce(has)
    for p, h in zip(params, has.tolist()):
        if h > 0 and p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p, h in zip(params, has.tolist()) if h > 0]
    for bucket in _buckets(grads):
        flat = torch.cat([g.reshape(-1) for g in bucket])
        dist.all_reduce(flat)
        flat.div_(w.size)
        offset = 0
        for g in bucket:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()


@torch.no_grad()
def broadcast_state(modules: list[torch.nn.Module], buffers_only: bool = False) -> None:
    """Copy rank 0's parameters (unless ``buffers_only``) and buffers to every rank."""
    if not world().distributed:
        return
    tensors = []
    for m in modules:
        if not buffers_only:
            tensors += [p.data for p in m.parameters()]
        tensors += [b for b in m.buffers() if b is not None]
    for bucket in _buckets(tensors):
        if bucket[0].dtype == torch.bool:       # gloo/NCCL broadcast of bools: go through uint8
            for t in bucket:
                u = t.to(torch.uint8)
                dist.broadcast(u, src=0)
                t.copy_(u.bool())
            continue
        flat = torch.cat([t.reshape(-1) for t in bucket])
        dist.broadcast(flat, src=0)
        offset = 0
        for t in bucket:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()


def mean_metrics(metrics: dict[str, float], device: torch.device | str = "cpu") -> dict[str, float]:
    """Every metric averaged over ranks (each rank must report the same keys)."""
    w = world()
    if not w.distributed or not metrics:
        return metrics
    keys = sorted(metrics)
    values = torch.tensor([float(metrics[k]) for k in keys] + [float(len(keys))], dtype=torch.float64,
                          device=device)
    dist.all_reduce(values)
    if int(round(values[-1].item())) != len(keys) * w.size:
        raise RuntimeError(f"ranks reported different metrics at the same step: {keys}")
    return {k: float(v) / w.size for k, v in zip(keys, values[:-1].tolist())}


def all_same(value: int, what: str, device: torch.device | str = "cpu") -> None:
    """Raise NarError on every rank unless all ranks hold the same integer ``value``."""
    if not world().distributed:
        return
    t = torch.tensor([value, -value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    if int(t[0]) != value or int(-t[1]) != value:
        raise NarError(f"ranks disagree on {what} ({int(-t[1])}..{int(t[0])}); every rank must see "
                       "the same run folder and data (a filesystem all nodes share)")


def sum_int(value: int, device: torch.device | str = "cpu") -> int:
    if not world().distributed:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(t)
    return int(t[0])


DISTRIBUTED_COMMANDS = (("train",), ("tokenizer", "train"), ("tokenizer", "encode"))


def check_command(argv: list[str]) -> None:
    """Under torchrun only the data-parallel commands run; the others would run N times over
    and race on the same output files."""
    if not launched():
        return
    words = [a for a in argv if not a.startswith("-")][:2]
    if not any(tuple(words[:len(c)]) == c for c in DISTRIBUTED_COMMANDS):
        raise NarError(f"`nar {' '.join(words)}` does not run under torchrun; start it as one process "
                       "(`nar tokenizer train`, `nar train` and `nar tokenizer encode` do run under torchrun)")


def error_prefix() -> str:
    """'rank 1: ' in a distributed run (each rank reports its own error), else ''."""
    return f"rank {os.environ.get('RANK', '?')}: " if launched() else ""


@torch.no_grad()
def broadcast_norm_buffers(modules: list[torch.nn.Module]) -> None:
    """Rank 0's running statistics of every BatchNorm-like layer to all ranks (the buffers a
    training step changes that nothing else keeps in sync)."""
    if not world().distributed:
        return
    norms = [m for root in modules for m in root.modules()
             if isinstance(m, torch.nn.modules.batchnorm._NormBase) and m.track_running_stats]
    if norms:
        broadcast_state(norms, buffers_only=True)


def rank_range(n: int, rank_: int | None = None, size: int | None = None) -> tuple[int, int]:
    """This rank's contiguous share [start, stop) of n items (sizes differ by at most one)."""
    r = rank() if rank_ is None else rank_
    w = world_size() if size is None else size
    return n * r // w, n * (r + 1) // w
