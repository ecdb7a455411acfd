"""`nar bench`: every prior side by side on the same tokenizer, grid, seeds and machine.

Two layers:

- `run_bench(entries, tokenizer, device, settings, ...)` takes objects that are already
  built (priors, a tokenizer, optional quality networks) and measures them; tests pass tiny
  models to it.
- `bench_defaults(...)` builds those objects the way a user gets them: the trained
  checkpoints when installed (or in ``--ckpt-dir``), otherwise each prior built from
  ``configs/priors/<name>.toml`` with random weights — such rows are labelled
  "untrained" and are good for speed only (no quality numbers are produced for them).

Speed, per prior x size x steps x batch: a warm-up run, then timed batch-1 runs with the
same seeds for every prior (sampling and decoding timed separately, CUDA synchronized
around each region by `nar.core.timing.Timer`), then one throughput run at the row's batch
size. Quality, per prior x steps: images at ``quality_size`` against procedural images,
with two reference rows (real vs real: the floor; tokenizer reconstructions: the ceiling
any prior on this tokenizer can reach).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from nar.core.errors import NarError
from nar.core.timing import PeakMemory, Timer, summarize
from nar.pipelines.bench_flops import decoder_flops, flops_per_image

UNTRAINED = "untrained"
TRAINED = "trained"
UNTRAINED_NOTE = "untrained weights: speed only"
SHARED_DECODE_NOTE = "decode shared per size"


# ---- settings ------------------------------------------------------------------------------
@dataclass
class BenchSettings:
    mode: str = "quick"                         # quick | full | custom
    sizes: tuple[int, ...] = (256, 512, 1024)
    steps: tuple[int, ...] | None = None        # priors with steps (ar has none); None: each one's default
    batches: tuple[int, ...] = (1, 4)
    repeats: int = 3                            # timed batch-1 runs per row
    warmup: int = 1                             # untimed batch-1 runs before them
    slow_seconds: float | None = 4.0            # quick: a warm-up slower than this -> slow_repeats
    slow_repeats: int = 1
    batch_budget_s: float | None = 40.0         # quick: skip batch>1 rows estimated to take longer
    decode_batch: int = 4                       # images per decoder call in throughput runs
    share_decode: bool = True                   # quick on CPU: time the decoder once per size, shared by all priors
    seed: int = 0
    temperature: float = 1.0
    quality: bool = True
    n_quality: int = 24                         # generated images per quality row (and real ones)
    quality_size: int = 256
    quality_steps: tuple[int, ...] | None = None  # default: the speed steps
    quality_batch: int = 8
    quality_seed: int = 1_000_000               # procedural seeds of the real sets (disjoint from training)
    command: str | None = None                  # the command line, recorded in the outputs
    threads: int | None = None                  # torch CPU threads (None: torch's default)

    @classmethod
    def quick(cls, **overrides) -> "BenchSettings":
        return replace(cls(), **overrides)

    @classmethod
    def full(cls, **overrides) -> "BenchSettings":
        base = cls(mode="full", steps=(4, 8, 12, 20, 24), batches=(1, 8), repeats=5, warmup=2,
                   slow_seconds=None, batch_budget_s=None, share_decode=False, n_quality=256)
        return replace(base, **overrides)

    def validate(self) -> "BenchSettings":
        if self.mode not in ("quick", "full", "custom"):
            raise NarError(f"bench mode must be quick or full, got {self.mode!r}")
        for name, values in (("sizes", self.sizes), ("steps", self.steps or (1,)), ("batch", self.batches)):
            if not values or any(int(v) < 1 for v in values):
                raise NarError(f"--{name} needs positive integers, got {list(values)}")
        if self.repeats < 1 or self.warmup < 0:
            raise NarError("repeats must be >= 1 and warm-up >= 0")
        if self.quality and self.n_quality < 4:
            raise NarError(f"--n-quality must be at least 4 (precision/recall use k=3), got {self.n_quality}")
        return self


@dataclass
class BenchEntry:
    """A prior to benchmark: the module, whether its weights are trained, and where it came from."""
    name: str
    prior: Any
    trained: bool
    source: str

    @property
    def weights(self) -> str:
        return TRAINED if self.trained else UNTRAINED


@dataclass
class BenchTokenizer:
    model: Any
    trained: bool
    source: str


# ---- helpers -------------------------------------------------------------------------------
def _median_int(values: list[int]) -> int | float | None:
    if not values:
        return None
    m = statistics.median(values)
    return int(m) if float(m).is_integer() else float(m)


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


def _has_steps(prior) -> bool:
    """Priors with a steps knob (parallel samplers) declare a default; ar does not."""
    return getattr(prior, "default_steps", None) is not None


def default_steps(prior) -> int | None:
    """The steps a prior samples with when none are given (its config's, else its class's)."""
    if not _has_steps(prior):
        return None
    return int(getattr(getattr(prior, "cfg", None), "steps", None) or prior.default_steps)


def steps_for(prior, steps: tuple[int, ...] | list[int] | None) -> list[int | None]:
    """The steps settings a prior is measured at: [None] for ar; the given list; or its default."""
    if not _has_steps(prior):
        return [None]
    return list(steps) if steps else [default_steps(prior)]


class _Runner:
    """Sample + decode with one prior and one tokenizer, timed."""

    def __init__(self, entry: BenchEntry, tokenizer, device: torch.device, settings: BenchSettings,
                 timer: Timer):
        self.entry, self.tok, self.device, self.s, self.timer = entry, tokenizer, device, settings, timer

    def sample(self, n: int, grid, steps, seed: int):
        gen = _generator(self.device, seed)
        with torch.inference_mode():
            return self.entry.prior.sample(n, grid, steps=steps, temperature=self.s.temperature, generator=gen)

    def decode(self, tokens: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        chunk = chunk or tokens.shape[0]
        with torch.inference_mode():
            parts = [self.tok.decode_tokens(t.to(self.device)) for t in tokens.split(chunk)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def timed(self, n: int, grid, steps, seed: int, chunk: int | None = None, decode: bool = True):
        """(SampleOutput, images or None, sampling seconds, decoding seconds or None)."""
        c0 = time.process_time()
        out, t_sample = self.timer.time(self.sample, n, grid, steps, seed)
        self.last_sample_cpu_s = time.process_time() - c0
        images = t_decode = None
        if decode:
            images, t_decode = self.timer.time(self.decode, out.tokens, chunk)
        self.last_cpu_s = time.process_time() - c0  # process CPU time, all threads
        return out, images, t_sample, t_decode


class _DecodeJob:
    """Quick mode: the decoder timed once per size on random tokens, shared by every prior's
    row at that size (a convolutional decoder's cost does not depend on which prior made
    the tokens, and at 1024² on a CPU one decode can take minutes)."""

    def __init__(self, tokenizer, device: torch.device, grid, settings: BenchSettings, timer: Timer,
                 warm: bool):
        self.tok, self.device, self.grid, self.s, self.timer = tokenizer, device, grid, settings, timer
        self.warm, self.times, self.cpu, self.repeats, self.note = warm, [], [], settings.repeats, ""
        self.error: str | None = None

    def _tokens(self, seed: int) -> torch.Tensor:
        gen = _generator(self.device, seed)
        return torch.randint(int(self.tok.codebook_size), (1, *self.grid), generator=gen, device=self.device)

    def _decode(self, tokens):
        with torch.inference_mode():
            return self.tok.decode_tokens(tokens)

    def warm_up(self) -> None:
        s = self.s
        if not self.warm:
            self.repeats = min(self.repeats, s.slow_repeats)
            self.note = f"{self.repeats} run(s), no extra warm-up (already slow at a smaller size)"
            return
        took = 0.0
        for i in range(s.warmup):
            _, took = self.timer.time(self._decode, self._tokens(s.seed + 10_000 + i))
        if s.slow_seconds is not None and s.warmup and took > s.slow_seconds:
            self.repeats = min(self.repeats, s.slow_repeats)
        self.note = f"{self.repeats} run(s) after {s.warmup} warm-up(s)"

    def timed_run(self, r: int) -> None:
        c0 = time.process_time()
        _, t = self.timer.time(self._decode, self._tokens(self.s.seed + r))
        self.times.append(t)
        self.cpu.append(time.process_time() - c0)

    def run(self, log) -> None:
        try:
            self.warm_up()
            for r in range(self.repeats):
                self.timed_run(r)
        except Exception as e:  # noqa: BLE001 - reported in every row of the size
            self.error = f"decoder: {'out of memory' if _is_oom(e) else type(e).__name__}: {e}"
            log(f"[red]error[/] {self.error}")


# ---- speed ---------------------------------------------------------------------------------
def _base_row(entry: BenchEntry, size: int, grid, steps, batch: int) -> dict[str, Any]:
    from nar.pipelines.bench_report import SPEED_COLUMNS
    return {**dict.fromkeys(SPEED_COLUMNS), "prior": entry.name, "weights": entry.weights, "size": size,
            "grid": f"{grid[0]}x{grid[1]}" if grid else "", "tokens": grid[0] * grid[1] if grid else None,
            "steps": steps, "batch": batch, "status": "ok", "note": ""}


def _skip_rows(entry, size, grid, steps, batches, status, reason) -> list[dict]:
    return [{**_base_row(entry, size, grid, steps, b), "status": status, "note": reason} for b in batches]


class _SpeedJob:
    """One prior x size x steps: warm-up, timed batch-1 runs (interleaved with the other jobs of
    the same size, so that background load drifts skew every prior alike), then one
    throughput run per batch size. Produces one row per batch size."""

    def __init__(self, entry: BenchEntry, tokenizer, device: torch.device, size: int, steps: int | None,
                 settings: BenchSettings, timer: Timer, log: Callable[[str], None], decode: bool = True):
        self.entry, self.tok, self.device, self.size, self.steps = entry, tokenizer, device, size, steps
        self.decode = decode  # False: the size's shared decoder timing fills the decode columns
        self.s, self.timer, self.log = settings, timer, log
        self.runner = _Runner(entry, tokenizer, device, settings, timer)
        self.cpu: list[float] = []
        self.sample_cpu: list[float] = []
        self.mem = PeakMemory(device)
        self.notes: list[str] = [] if entry.trained else [UNTRAINED_NOTE]
        self.rows: list[dict[str, Any]] | None = None   # set when the job ends early (skipped / error)
        self.t_s: list[float] = []
        self.t_d: list[float] = []
        self.runs: list[int] = []
        self.passes: list[int] = []
        self.peak = 0.0
        self.repeats = settings.repeats
        self.seconds = 0.0
        f = int(tokenizer.factor)
        self.grid = (size // f, size // f) if size % f == 0 else None
        if self.grid is None:
            self._end("skipped", f"size {size} is not a multiple of the tokenizer factor {f}")

    @property
    def alive(self) -> bool:
        return self.rows is None

    def _end(self, status: str, reason: str) -> None:
        self.rows = _skip_rows(self.entry, self.size, self.grid, self.steps, list(self.s.batches), status, reason)

    def _guard(self, fn, what: str) -> None:
        t0 = time.perf_counter()
        try:
            fn()
        except NarError as e:
            self._end("skipped", str(e))
        except Exception as e:  # noqa: BLE001 - a row that fails must still show up in the table
            if _is_oom(e):
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                self._end("skipped", f"out of memory ({what}): {e}")
            else:
                self.log(f"[red]error[/] {self.entry.name} {self.size}px steps={self.steps} ({what}): "
                         f"{type(e).__name__}: {e}")
                self._end("error", f"{type(e).__name__} ({what}): {e}")
        self.seconds += time.perf_counter() - t0

    def warm_up(self) -> None:
        def go():
            self.entry.prior.check_grid(self.grid)
            warm = 0.0
            for i in range(self.s.warmup):  # seeds far from the timed ones
                _, _, ts, td = self.runner.timed(1, self.grid, self.steps, self.s.seed + 10_000 + i,
                                                 decode=self.decode)
                warm = ts + (td or 0.0)
            s = self.s
            if s.slow_seconds is not None and s.warmup and warm > s.slow_seconds and self.repeats > s.slow_repeats:
                self.repeats = s.slow_repeats
                self.notes.append(f"{self.repeats} run: warm-up took {warm:.1f}s > {s.slow_seconds:g}s")
        self._guard(go, "warm-up")

    def timed_run(self, r: int) -> None:
        def go():
            self.mem.reset()
            out, _, ts, td = self.runner.timed(1, self.grid, self.steps, self.s.seed + r, decode=self.decode)
            self.peak = max(self.peak, self.mem.peak_mb())
            self.t_s.append(ts)
            self.t_d.append(td)
            self.runs.append(int(out.steps_run))
            self.passes.append(int(out.forward_passes))
            self.cpu.append(self.runner.last_cpu_s)
            self.sample_cpu.append(self.runner.last_sample_cpu_s)
        self._guard(go, "batch 1")

    def finish(self, decode_flops_cache: dict, shared: "_DecodeJob | None" = None) -> list[dict[str, Any]]:
        if self.rows is None and shared is not None and shared.error:
            self._end("error", shared.error)
        if self.rows is not None:
            return self.rows
        s, grid = self.s, self.grid
        sample_stats = summarize(self.t_s)
        if shared is not None:  # quick mode: the size's shared decoder timing
            decode_stats = summarize(shared.times)
            total_stats = summarize([a + decode_stats["p50"] for a in self.t_s])
            cpu = [c + summarize(shared.cpu)["p50"] for c in self.cpu]
            self.notes.append(SHARED_DECODE_NOTE)
        else:
            decode_stats = summarize(self.t_d)
            total_stats = summarize([a + b for a, b in zip(self.t_s, self.t_d)])
            cpu = self.cpu
        fwd, steps_run = _median_int(self.passes), _median_int(self.runs)
        flops, flops_how = flops_per_image(self.entry.prior, grid, steps_run=steps_run, forward_passes=fwd)
        if self.size not in decode_flops_cache:
            decode_flops_cache[self.size] = decoder_flops(self.tok, grid)
        dflops = decode_flops_cache[self.size]
        if min(self.runs) != max(self.runs):
            self.notes.append(f"steps run varied over seeds: {min(self.runs)}..{max(self.runs)}")
        common = {
            "steps_run": steps_run, "forward_passes": fwd,
            "gflops_per_image": None if flops is None else flops / 1e9,
            "decode_gflops": None if dflops is None else dflops / 1e9,
            "flops_method": flops_how,
            "sample_p50_s": sample_stats["p50"], "sample_p90_s": sample_stats["p90"],
            "decode_p50_s": decode_stats["p50"], "decode_p90_s": decode_stats["p90"],
            "total_p50_s": total_stats["p50"], "total_p90_s": total_stats["p90"],
            "timed_runs": len(self.t_s),
            "cpu_time_p50_s": summarize(cpu)["p50"],
            "sample_cpu_p50_s": summarize(self.sample_cpu)["p50"],
            "gflop_per_s": None if flops is None else flops / 1e9 / sample_stats["p50"],
            "ms_per_forward": 1e3 * sample_stats["p50"] / fwd if fwd else None,
            "peak_mem_kind": self.mem.kind,
            "sample_times_s": self.t_s, "decode_times_s": shared.times if shared is not None else self.t_d,
            "decode_shared": shared is not None,
            "decode_runs": len(shared.times) if shared is not None else len(self.t_d),
            "decode_note": shared.note if shared is not None else "",
        }
        tokens = grid[0] * grid[1]
        rows = []
        for b in s.batches:
            row = {**_base_row(self.entry, self.size, grid, self.steps, b), **common}
            notes = list(self.notes)
            if b == 1:
                row.update(throughput_img_s=1.0 / total_stats["p50"], tokens_per_s=tokens / sample_stats["p50"],
                           peak_mem_mb=self.peak)
            else:
                self._throughput(row, b, notes, tokens, total_stats["p50"])
            row["note"] = "; ".join(notes)
            rows.append(row)
        return rows

    def _throughput(self, row: dict, b: int, notes: list[str], tokens: int, per_image: float) -> None:
        s = self.s
        estimate = b * per_image * (2 if s.warmup else 1)
        row.update(throughput_img_s=None, tokens_per_s=None, peak_mem_mb=None)
        if s.batch_budget_s is not None and estimate > s.batch_budget_s:
            row["status"] = "skipped"
            notes.append(f"batch {b} skipped: est. {estimate:.0f}s > {s.batch_budget_s:g}s")
            return
        t0 = time.perf_counter()
        try:
            if s.warmup:
                self.runner.timed(b, self.grid, self.steps, s.seed + 20_000, s.decode_batch)
            self.mem.reset()
            _, _, ts, td = self.runner.timed(b, self.grid, self.steps, s.seed, s.decode_batch)
            row.update(throughput_img_s=b / (ts + td), tokens_per_s=b * tokens / ts, peak_mem_mb=self.mem.peak_mb())
            if b > s.decode_batch:
                notes.append(f"decoded {s.decode_batch} images per decoder call")
        except Exception as e:  # noqa: BLE001
            oom = _is_oom(e)
            if not oom and not isinstance(e, NarError):
                self.log(f"[red]error[/] {self.entry.name} {self.size}px steps={self.steps} batch {b}: {e}")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            row["status"] = "skipped" if oom or isinstance(e, NarError) else "error"
            notes.append(f"batch {b}: {'out of memory' if oom else type(e).__name__}: {e}")
        self.seconds += time.perf_counter() - t0


def speed_rows_for_size(entries: list[BenchEntry], tokenizer, device: torch.device, size: int,
                        settings: BenchSettings, timer: Timer, decode_flops_cache: dict,
                        log: Callable[[str], None], slow_before: dict | None = None) -> list[dict[str, Any]]:
    """Every prior (x steps) at one size: warm-ups, then the timed batch-1 runs round-robin
    over the priors (run r of every prior before run r+1 of any), then throughput runs."""
    share = settings.share_decode and device.type != "cuda"  # a GPU decodes fast: time it in every row
    jobs = [_SpeedJob(e, tokenizer, device, size, steps, settings, timer, log, decode=not share)
            for e in entries for steps in steps_for(e.prior, settings.steps)]
    shared = None
    if share and size % int(tokenizer.factor) == 0:
        g = size // int(tokenizer.factor)
        slow_decoder = slow_before is not None and ("<decoder>", None) in slow_before
        shared = _DecodeJob(tokenizer, device, (g, g), settings, timer, warm=not slow_decoder)
        shared.run(log)
        if (slow_before is not None and settings.slow_seconds is not None and shared.times
                and summarize(shared.times)["p50"] > settings.slow_seconds):
            slow_before.setdefault(("<decoder>", None), size)
        if shared.times:
            log(f"  decoder  {size:5d}px: {summarize(shared.times)['p50']:.3f}s/img ({len(shared.times)} run(s), "
                "shared by every prior at this size)")
    for job in jobs:
        if not job.alive:
            continue
        prev = slow_before.get((job.entry.name, job.steps)) if slow_before is not None else None
        if prev is not None and settings.slow_seconds is not None:
            # quick mode: this prior already took > slow_seconds per image at a smaller size, so it
            # is warm (code paths, allocator, kernels) and this larger size is slower still
            job.repeats = min(job.repeats, settings.slow_repeats)
            job.notes.append(f"{job.repeats} run, no warm-up here: warmed up at {prev}px, already "
                             f"> {settings.slow_seconds:g}s there")
        else:
            job.warm_up()
    for r in range(max((j.repeats for j in jobs), default=0)):
        for job in jobs:
            if job.alive and r < job.repeats:
                job.timed_run(r)
    rows = []
    for job in jobs:
        mine = job.finish(decode_flops_cache, shared)
        rows.extend(mine)
        first = mine[0]
        own = first["sample_p50_s"] if shared is not None else first["total_p50_s"]  # this job's own work
        if (slow_before is not None and first["status"] == "ok" and settings.slow_seconds is not None
                and own > settings.slow_seconds):
            slow_before.setdefault((job.entry.name, job.steps), size)
        steps = job.steps if job.steps is not None else "n/a"
        what = (f"{first['total_p50_s']:.3f}s/img ({first['sample_p50_s']:.3f} sample + "
                f"{first['decode_p50_s']:.3f} decode, {first['timed_runs']} run(s))"
                if first["status"] == "ok" else f"{first['status']}: {first['note']}")
        log(f"  {job.entry.name:8s} {size:5d}px steps={steps:>3}: {what} [{job.seconds:.1f}s]")
    return rows


def ratio_rows(speed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ar against every parallel prior and steps setting at each size (batch-1 medians)."""
    ok = [r for r in speed if r.get("status") == "ok" and r.get("batch") == 1]
    out = []
    for ar in (r for r in ok if r["prior"] == "ar"):
        for other in (r for r in ok if r["prior"] != "ar" and r["size"] == ar["size"]):
            def div(a, b):
                return None if a is None or not b else a / b
            out.append({
                "size": ar["size"], "grid": ar["grid"], "vs": other["prior"], "steps": other["steps"],
                "sample_ratio": div(ar["sample_p50_s"], other["sample_p50_s"]),
                "total_ratio": div(ar["total_p50_s"], other["total_p50_s"]),
                "sample_cpu_ratio": div(ar.get("sample_cpu_p50_s"), other.get("sample_cpu_p50_s")),
                "ar_forward_passes": ar["forward_passes"], "forward_passes": other["forward_passes"],
                "flops_ratio": div(ar.get("gflops_per_image"), other.get("gflops_per_image")),
                "ar_gflop_s": ar.get("gflop_per_s"), "gflop_s": other.get("gflop_per_s"),
                "weights": "trained" if ar["weights"] == other["weights"] == TRAINED else UNTRAINED,
            })
    return out


# ---- quality -------------------------------------------------------------------------------
def render_real(n: int, size: int, seed: int) -> torch.Tensor:
    """n procedural landscapes (seeds seed, seed+1, ...) as (n, 3, size, size) floats in [-1, 1]."""
    from nar.data.landscapes import generate_landscape
    imgs = [torch.from_numpy(generate_landscape(seed + i, size, size)[0]) for i in range(n)]
    return torch.stack(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _quality_row(row: str, kind: str, weights: str, size: int, steps=None) -> dict[str, Any]:
    return {"row": row, "kind": kind, "weights": weights, "steps": steps, "steps_run": None, "size": size,
            "n_real": None, "n_fake": None, "fd_nar": None, "precision": None, "recall": None, "is_nar": None,
            "fid": None, "is_inception": None, "time_per_image_s": None, "status": "ok", "note": ""}


def _metrics_into(row: dict, report: dict) -> None:
    for k in ("fd_nar", "precision", "recall", "is_nar", "fid", "is_inception", "n_real", "n_fake"):
        row[k] = report.get(k)
    row["labels"] = report.get("labels", {})


def quality_rows(entries: list[BenchEntry], tokenizer: BenchTokenizer, device: torch.device,
                 settings: BenchSettings, classifier, inception, speed: list[dict],
                 log: Callable[[str], None], classifier_missing: str | None = None) -> list[dict[str, Any]]:
    """Reference rows and one row per prior (x steps for priors with steps)."""
    from nar.eval.metrics import evaluate_images

    s = settings
    size = s.quality_size
    n = s.n_quality
    rows: list[dict[str, Any]] = []

    def evaluate(real, fake):
        return evaluate_images(real, fake, classifier=classifier,
                               inception=inception if inception is not None else False, device=device)

    have_metric = classifier is not None
    no_metric = f"no nar feature network: {classifier_missing}" if not have_metric else ""

    real_a = real_b = None
    if have_metric:
        log(f"quality: rendering {2 * n} procedural images at {size}x{size}")
        real_a = render_real(n, size, s.quality_seed)
        real_b = render_real(n, size, s.quality_seed + n)

    # reference 1: real vs real (two disjoint procedural sets): the floor
    ref = _quality_row("real vs real (floor)", "reference", "-", size)
    if have_metric:
        _metrics_into(ref, evaluate(real_a, real_b))
        ref["note"] = f"procedural seeds {s.quality_seed}.. vs {s.quality_seed + n}.."
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
            recon = torch.cat([tokenizer.model.decode_tokens(tokenizer.model.encode(b.to(device))).float().cpu()
                               for b in real_b.split(s.quality_batch)]).clamp(-1, 1)
        _metrics_into(rec, evaluate(real_a, recon))
        rec["note"] = "encode + decode of the second real set, against the first"
    rows.append(rec)

    f = int(tokenizer.model.factor)
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
            grid = (size // f, size // f)
            runner = _Runner(entry, tokenizer.model, device, s, Timer(device))
            try:
                fakes, runs, seconds = [], [], 0.0
                for i in range(0, n, s.quality_batch):
                    b = min(s.quality_batch, n - i)
                    out, images, ts, td = runner.timed(b, grid, steps, s.quality_seed + 500_000 + i)
                    fakes.append(images.float().cpu().clamp(-1, 1))
                    runs.append(out.steps_run)
                    seconds += ts + td
                _metrics_into(row, evaluate(real_a, torch.cat(fakes)))
                row["steps_run"] = sum(runs) / len(runs)
                match = [r for r in speed if r["prior"] == entry.name and r["size"] == size
                         and r["steps"] == steps and r["batch"] == 1 and r["status"] == "ok"]
                if match:
                    row["time_per_image_s"] = match[0]["total_p50_s"]
                else:
                    row["time_per_image_s"] = seconds / n
                    row["note"] = f"time per image from the quality run (batch {s.quality_batch})"
            except NarError as e:
                row.update(status="skipped", note=str(e))
            except Exception as e:  # noqa: BLE001
                log(f"[red]error[/] quality {entry.name} steps={steps}: {type(e).__name__}: {e}")
                row.update(status="error", note=f"{type(e).__name__}: {e}")
            rows.append(row)
    return rows


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
    from nar.eval.machine import environment
    from nar.pipelines.bench_report import print_tables, write_outputs

    s = (settings or BenchSettings()).validate()
    device = torch.device(device)
    if not isinstance(tokenizer, BenchTokenizer):
        tokenizer = BenchTokenizer(tokenizer, True, getattr(tokenizer, "path", "in-memory tokenizer"))
    tok = tokenizer.model
    if not entries:
        raise NarError("no priors to benchmark")
    timer = Timer(device)
    env = environment(device)
    log(f"nar bench ({s.mode}) on {env['device_name']}: priors {', '.join(e.name for e in entries)}; "
        f"sizes {list(s.sizes)}; steps {list(s.steps) if s.steps else 'each prior default'}; "
        f"batches {list(s.batches)}; {torch.get_num_threads()} CPU thread(s)")

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

    from nar.eval.machine import loadavg
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
                 "forward in total but in h*w sequential steps, a parallel sampler one full forward per step")
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
    from nar.core.config import to_dict
    try:
        return to_dict(prior.cfg)
    except Exception:  # noqa: BLE001
        return None


# ---- defaults: what `nar bench` builds -----------------------------------------------------
CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
DEFAULT_TOKENIZER_CONFIG = "f32_1024.toml"


def _find_config(kind: str, name: str) -> Path | None:
    for root in (CONFIG_DIR, Path.cwd() / "configs"):
        p = root / kind / name
        if p.is_file():
            return p
    return None


def _prior_ckpt(name: str, ckpt_dir: Path | None) -> Path | None:
    from nar.pipelines.models import default_prior_path, prior_in_folder
    if ckpt_dir is not None:
        return prior_in_folder(name, ckpt_dir)
    p = default_prior_path(name)
    return p if p.is_file() else None


def build_tokenizer(path: str | Path | None, device: torch.device, seed: int = 0,
                    log: Callable[[str], None] = print) -> BenchTokenizer:
    """--tokenizer, else the installed default, else an untrained one from configs/tokenizer."""
    from nar.pipelines.models import default_tokenizer_path
    from nar.tokenizer import load_tokenizer

    p = Path(path) if path is not None else default_tokenizer_path()
    if path is not None and not p.is_file():
        raise NarError(f"tokenizer checkpoint not found: {p}")
    if p.is_file():
        return BenchTokenizer(load_tokenizer(p, decode_only=False, device=device), True, str(p))
    from nar.core.config import load_config
    from nar.tokenizer.config import TokenizerConfig
    from nar.tokenizer.model import VQGAN

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
    """A trained checkpoint per prior when one is installed (or in ``ckpt_dir``), otherwise the
    prior built from ``configs/priors/<name>.toml`` with random weights. Untrained priors
    get ``train_grid = max_grid`` so that ar samples every benchmarked grid directly with its
    KV cache (no sliding window), the configuration LlamaGen-style models are trained for."""
    from nar.pipelines.train_prior import load_prior_run_config
    from nar.priors import PRIORS, load_prior

    ckpt_root = Path(ckpt_dir) if ckpt_dir is not None else None
    if ckpt_root is not None and not ckpt_root.is_dir():
        raise NarError(f"--ckpt-dir {ckpt_root} is not a folder")
    tok_hash = getattr(tokenizer.model, "hash", None) if tokenizer.trained else None
    entries = []
    for name in names:
        PRIORS.get(name)  # unknown names: one clear error listing the known ones
        path = _prior_ckpt(name, ckpt_root)
        if path is not None:
            if not tokenizer.trained:
                raise NarError(f"a trained {name!r} model was found ({path}) but no trained tokenizer; "
                               "pass --tokenizer")
            prior = load_prior(path, name=name, tokenizer_hash=tok_hash, device=device)
            entries.append(BenchEntry(name, prior, True, str(path)))
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


def load_quality_nets(device: torch.device, inception_path: str | Path | None, want: bool,
                      log: Callable[[str], None] = print):
    """(classifier, classifier_source, classifier_missing, inception, inception_source)."""
    if not want:
        return None, None, "quality disabled", None, None
    from nar.eval.inception import load_inception
    from nar.eval.scene_classifier import default_path, load_scene_classifier
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


def bench_defaults(priors: list[str] | None = None, sizes=None, steps=None, batches=None,
                   device: str = "cpu", full: bool = False, out: str | Path | None = None,
                   n_quality: int | None = None, inception: str | Path | None = None,
                   tokenizer: str | Path | None = None, ckpt_dir: str | Path | None = None,
                   quality: bool = True, repeats: int | None = None, seed: int = 0,
                   command: str | None = None, threads: int | None = None, quality_size: int | None = None,
                   log: Callable[[str], None] = print, print_results: bool = True) -> dict[str, Any]:
    """What `nar bench` runs: build (or load) everything, measure, write, print."""
    from nar.eval.machine import device_slug, setup_device
    from nar.priors import prior_names

    dev = setup_device(device, threads)
    over: dict[str, Any] = {"seed": seed, "quality": quality, "command": command, "threads": threads}
    for key, value in (("sizes", sizes), ("steps", steps), ("batches", batches)):
        if value:
            over[key] = tuple(int(v) for v in value)
    if n_quality is not None:
        over["n_quality"] = int(n_quality)
    if quality_size is not None:
        over["quality_size"] = int(quality_size)
    if repeats is not None:
        over["repeats"] = int(repeats)
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


def parse_int_list(text: str | None, option: str) -> list[int] | None:
    if text is None or text == "":
        return None
    try:
        values = [int(v) for v in str(text).replace(" ", "").split(",") if v]
    except ValueError:
        raise NarError(f"{option} needs comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise NarError(f"{option} needs positive integers, got {text!r}")
    return values
