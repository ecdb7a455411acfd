"""`nar bench` speed: per prior x size x steps x batch, a warm-up run, then timed batch-1 runs
with the same seeds for every prior (sampling and decoding timed separately, CUDA synchronized
around each region by `nar.core.timing.Timer`), then one throughput run at the row's batch size."""
from __future__ import annotations

import time
from typing import Any, Callable

import torch

from nar.core.device import precision_context
from nar.core.errors import NarError
from nar.core.timing import PeakMemory, Timer, summarize
from nar.pipelines.bench.flops import decoder_flops, flops_per_image
from nar.pipelines.bench.report import SPEED_COLUMNS
from nar.pipelines.bench.settings import (SHARED_DECODE_NOTE, TRAINED, UNTRAINED, UNTRAINED_NOTE, BenchEntry,
                                          BenchSettings, _generator, _is_oom, _median_int, steps_for)


class _Runner:
    """Sample + decode with one prior and one tokenizer, timed."""

    def __init__(self, entry: BenchEntry, tokenizer, device: torch.device, settings: BenchSettings,
                 timer: Timer):
        self.entry, self.tok, self.device, self.s, self.timer = entry, tokenizer, device, settings, timer

    def sample(self, n: int, grid, steps, seed: int, cond: torch.Tensor | None = None, cfg: float = 1.0):
        gen = _generator(self.device, seed)
        with torch.inference_mode():
            return self.entry.prior.sample(n, grid, steps=steps, temperature=self.s.temperature, generator=gen,
                                           precision=self.s.precision, cond=cond, cfg_scale=cfg)

    def decode(self, tokens: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        chunk = chunk or tokens.shape[0]
        with torch.inference_mode(), precision_context(self.device, self.s.decode_precision):
            parts = [self.tok.decode_tokens(t.to(self.device)).float() for t in tokens.split(chunk)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def timed(self, n: int, grid, steps, seed: int, chunk: int | None = None, decode: bool = True,
              cond: torch.Tensor | None = None, cfg: float = 1.0):
        """(SampleOutput, images or None, sampling seconds, decoding seconds or None)."""
        c0 = time.process_time()
        out, t_sample = self.timer.time(self.sample, n, grid, steps, seed, cond, cfg)
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
        with torch.inference_mode(), precision_context(self.device, self.s.decode_precision):
            return self.tok.decode_tokens(tokens).float()

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
        impl = getattr(self.entry.prior, "implementation", None)
        if callable(impl):  # ar: which decode path ran (cache kind, compiled or not)
            common["implementation"] = impl(grid)
            self.notes.append(f"ran: {common['implementation']}")
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
    from nar.pipelines.upscale import prior_native_size, sample_plan
    plans = {e.name: sample_plan(size, prior_native_size(e.prior, int(tokenizer.factor))) for e in entries}
    above = [e for e in entries if plans[e.name][1]]
    if above:   # above a prior's native size (e.g. 2048²): generation at it + decode + 2x super-resolution
        from nar.pipelines.bench.sr import sr_rows_for_size
        rows = []
        for plan in dict.fromkeys(plans[e.name] for e in above):
            rows += sr_rows_for_size([e for e in above if plans[e.name] == plan], tokenizer, device, size, plan,
                                     settings, timer, decode_flops_cache, log, slow_before)
        direct = [e for e in entries if not plans[e.name][1]]
        return (speed_rows_for_size(direct, tokenizer, device, size, settings, timer, decode_flops_cache, log,
                                    slow_before) if direct else []) + rows
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


