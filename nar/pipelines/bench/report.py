"""`nar bench` output: column definitions, rich tables, and the
Markdown / CSV / JSON files and PNG plots written under ``--out``."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any


# ---- columns -------------------------------------------------------------------------------
SPEED_COLUMNS: dict[str, str] = {
    "prior": "registry name of the prior",
    "weights": "trained (a checkpoint) or untrained (random init from its config: speed only)",
    "implementation": "what was timed where a prior says (ar: KV cache kind, compiled or eager, precision)",
    "size": "output image side in pixels (square images)",
    "grid": "token grid h x w = size / tokenizer factor",
    "tokens": "tokens per image (h*w)",
    "steps": "sampling steps asked for (n/a for ar: one step per token)",
    "batch": "batch size of the throughput measurement (latencies are always at batch 1)",
    "status": "ok, skipped (with the reason in note) or error",
    "steps_run": "sampling steps actually run at batch 1 (median over timed runs; SUNDAE can stop early)",
    "forward_passes": "network evaluations per image at batch 1 (median; ar: one incremental pass per token)",
    "gflops_per_image": "analytic sampling GFLOPs per image (matmuls only; ar: KV cache, about one causal "
                        "forward in total; parallel priors: one full forward per pass)",
    "decode_gflops": "decoder GFLOPs per image (convolutions + matmuls, counted by torch.utils.flop_counter)",
    "sample_p50_s": "sampling latency per image at batch 1, median (s)",
    "sample_p90_s": "sampling latency per image at batch 1, 90th percentile (s)",
    "decode_p50_s": "decoding latency per image at batch 1, median (s)",
    "decode_p90_s": "decoding latency per image at batch 1, 90th percentile (s)",
    "total_p50_s": "sampling + decoding per image at batch 1, median (s)",
    "total_p90_s": "sampling + decoding per image at batch 1, 90th percentile (s)",
    "timed_runs": "timed batch-1 runs behind the percentiles (after warm-up)",
    "sample_cpu_p50_s": "process CPU time (all threads) for sampling one image at batch 1, median (s)",
    "cpu_time_p50_s": "process CPU time (all threads) for sampling + decoding one image at batch 1, median (s): "
                      "on a shared machine the steadier figure; with one thread it is what an idle core takes",
    "throughput_img_s": "images per second at this batch size, decoding included",
    "tokens_per_s": "tokens sampled per second at this batch size (sampling only)",
    "gflop_per_s": "achieved sampling GFLOP/s at batch 1 (gflops_per_image / sample_p50_s)",
    "ms_per_forward": "sampling time per network forward at batch 1 (ms)",
    "peak_mem_mb": "peak memory (MiB); see peak_mem_kind",
    "peak_mem_kind": "cuda_max_allocated: torch CUDA max allocated during the row; process_rss_high_water: "
                     "the whole process's resident-set high-water mark so far (cannot be reset per row)",
    "note": "why a row was skipped or measured with fewer runs, and other caveats",
}

QUALITY_COLUMNS: dict[str, str] = {
    "row": "what is compared with the real images: real vs real (floor), tokenizer reconstruction, or a prior",
    "kind": "reference or prior",
    "weights": "trained / untrained",
    "steps": "sampling steps asked for (n/a for ar and reference rows)",
    "steps_run": "mean steps actually run while generating the quality samples",
    "cfg": "guidance scale of class-balanced samples (--quality-cfg); empty: unconditional samples",
    "size": "image side in pixels of the compared images",
    "n_real": "real images in the reference set",
    "n_fake": "generated (or second-set / reconstructed) images",
    "fd_nar": "FD (nar features): Frechet distance in nar's scene-classifier feature space (NOT FID; lower is better)",
    "precision": "improved precision (Kynkaanniemi et al., k=3) in the nar feature space: fidelity",
    "recall": "improved recall (k=3) in the nar feature space: diversity",
    "is_nar": "IS (nar scene classifier): Inception-Score formula over nar's scene classes (max = number of scenes)",
    "fid": "FID with the standard Inception weights; empty when no weights were given or found",
    "is_inception": "Inception Score with the Inception weights; empty without them",
    "class_fidelity": "class-balanced rows (--quality-cfg): share of samples nar's scene classifier sees as "
                      "the class asked for (the target's class fidelity); empty for unconditional rows",
    "time_per_image_s": "sampling + decoding per image at batch 1 for this prior/steps at this size "
                        "(from the speed table when measured there, else from the quality run)",
    "grad_energy_vs_real": "mean |luminance gradient| of these images / that of the real set (blur < 1)",
    "hf_share_vs_real": "share of spectral power above 1/4 Nyquist / that of the real set (blur < 1, noise > 1)",
    "block_ratios": "mean |difference| across every B-th pixel boundary / across the others, at the tokenizer "
                    "factor and at every patch size the prior merges (1 = no blocks; > 1.2: visible squares)",
    "block_ratio_max": "the largest of block_ratios",
    "status": "ok, or why there is no number (untrained weights, no classifier, ...)",
    "note": "details",
}

RATIO_COLUMNS: dict[str, str] = {
    "size": "image side in pixels",
    "grid": "token grid",
    "vs": "the parallel prior compared with ar",
    "steps": "its steps setting",
    "sample_ratio": "ar sampling time / this prior's sampling time (batch 1, medians)",
    "total_ratio": "ar (sampling + decoding) / this prior's (sampling + decoding)",
    "sample_cpu_ratio": "ar sampling CPU time / this prior's (steadier than wall time on a busy machine)",
    "ar_forward_passes": "ar network evaluations per image (= tokens)",
    "forward_passes": "this prior's network evaluations per image (= steps run)",
    "flops_ratio": "ar sampling FLOPs / this prior's sampling FLOPs",
    "ar_gflop_s": "FLOP rate ar achieves while sampling (GFLOP/s)",
    "gflop_s": "FLOP rate this prior achieves while sampling (GFLOP/s)",
}




# ---- formatting ----------------------------------------------------------------------------
def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value == 0:
            return "0"
        mag = abs(value)
        if mag >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}" if mag >= 1e-3 else f"{value:.2e}"
    return str(value)


SPEED_SHORT = [  # (column, header) shown in the printed / Markdown table
    ("prior", "prior"), ("weights", "weights"), ("size", "size"), ("grid", "grid"), ("steps", "steps"),
    ("batch", "batch"), ("steps_run", "steps run"), ("forward_passes", "fwd passes"),
    ("gflops_per_image", "GFLOPs/img"), ("decode_gflops", "decode GFLOPs"),
    ("sample_p50_s", "sample p50 s"), ("sample_p90_s", "sample p90 s"),
    ("decode_p50_s", "decode p50 s"), ("decode_p90_s", "decode p90 s"),
    ("total_p50_s", "total p50 s"), ("total_p90_s", "total p90 s"), ("timed_runs", "runs"),
    ("sample_cpu_p50_s", "sample CPU s"), ("cpu_time_p50_s", "total CPU s"),
    ("throughput_img_s", "img/s @batch"), ("tokens_per_s", "tok/s @batch"),
    ("gflop_per_s", "GFLOP/s"), ("peak_mem_mb", "peak MiB"), ("status", "status"), ("note", "note"),
]

QUALITY_SHORT = [
    ("row", "row"), ("weights", "weights"), ("steps", "steps"), ("steps_run", "steps run"), ("cfg", "cfg"), ("size", "size"),
    ("n_real", "n real"), ("n_fake", "n fake"), ("fd_nar", "FD (nar features)"),
    ("precision", "precision (nar)"), ("recall", "recall (nar)"), ("is_nar", "IS (nar scene classifier)"),
    ("fid", "FID (Inception)"), ("is_inception", "IS (Inception)"), ("class_fidelity", "class fidelity"),
    ("time_per_image_s", "s/img"), ("grad_energy_vs_real", "gradient energy × real"), ("hf_share_vs_real", "high-freq share × real"),
    ("block_ratios", "block ratios"), ("status", "status"), ("note", "note"),
]

RATIO_SHORT = [
    ("size", "size"), ("grid", "grid"), ("vs", "ar vs"), ("steps", "steps"),
    ("sample_ratio", "sampling time ar/x"), ("total_ratio", "total time ar/x"),
    ("sample_cpu_ratio", "sampling CPU time ar/x"),
    ("ar_forward_passes", "ar fwd passes"), ("forward_passes", "x fwd passes"),
    ("flops_ratio", "FLOPs ar/x"), ("ar_gflop_s", "ar GFLOP/s"), ("gflop_s", "x GFLOP/s"),
]


def _cell(row: dict, key: str) -> str:
    value = row.get(key)
    if key == "steps" and value is None:
        return "n/a"
    if key == "note" and value:
        return str(value).replace("|", "/")
    return fmt(value)


def markdown_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    if not rows:
        return "_(no rows)_\n"
    out = io.StringIO()
    out.write("| " + " | ".join(h for _, h in columns) + " |\n")
    out.write("|" + "|".join(" --- " for _ in columns) + "|\n")
    for r in rows:
        out.write("| " + " | ".join(_cell(r, k) for k, _ in columns) + " |\n")
    return out.getvalue()


def rich_table(title: str, rows: list[dict], columns: list[tuple[str, str]]):
    from rich.table import Table
    table = Table(title=title, show_lines=False)
    for key, header in columns:
        table.add_column(header, overflow="fold", max_width=48 if key == "note" else None)
    for r in rows:
        table.add_row(*(_cell(r, k) for k, _ in columns))
    return table


CONSOLE_SPEED = [
    ("prior", "prior"), ("weights", "weights"), ("size", "size"), ("steps", "steps"), ("batch", "batch"),
    ("steps_run", "steps run"), ("forward_passes", "fwd"), ("gflops_per_image", "GFLOPs/img"),
    ("sample_p50_s", "sample p50"), ("decode_p50_s", "decode p50"), ("total_p50_s", "total p50"),
    ("total_p90_s", "total p90"), ("timed_runs", "runs"), ("cpu_time_p50_s", "CPU s"),
    ("throughput_img_s", "img/s"),
    ("peak_mem_mb", "peak MiB"), ("status", "status"), ("ref", "note"),
]
CONSOLE_QUALITY = [
    ("row", "row"), ("weights", "weights"), ("steps", "steps"), ("cfg", "cfg"), ("n_fake", "n"), ("fd_nar", "FD (nar features)"),
    ("precision", "precision"), ("recall", "recall"), ("is_nar", "IS (nar)"), ("fid", "FID"),
    ("is_inception", "IS (Inception)"), ("class_fidelity", "class fid."), ("time_per_image_s", "s/img"),
    ("grad_energy_vs_real", "grad × real"),
    ("hf_share_vs_real", "HF × real"), ("block_ratios", "blocks"), ("status", "status"), ("ref", "note"),
]


def _with_note_refs(rows: list[dict], notes: dict[str, int]) -> list[dict]:
    out = []
    for r in rows:
        r = dict(r)
        if r.get("note"):
            r["ref"] = f"[{notes.setdefault(r['note'], len(notes) + 1)}]"
        out.append(r)
    return out


def print_tables(result: dict[str, Any], console=None) -> None:
    """Compact tables on the console (notes as numbered footnotes); the files have every column."""
    from rich.console import Console
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=220)
    env = result["environment"]
    console.print(f"[bold]nar bench[/] on {env['device_name']} ({env['cpus_usable']} CPUs usable, "
                  f"{env['torch_threads']} torch threads, load average {env.get('load_avg_start')}), "
                  f"torch {env['torch']}, commit {(env.get('commit') or '?')[:10]}"
                  f"{' (dirty)' if env.get('commit_dirty') else ''}, mode {result['settings']['mode']}")
    for note in result.get("notes", []):
        console.print(f"  - {note}", highlight=False)
    notes: dict[str, int] = {}
    console.print(rich_table("speed (seconds per image at batch 1; img/s at the row's batch)",
                             _with_note_refs(result["speed"], notes), CONSOLE_SPEED))
    if result.get("ratios"):
        console.print(rich_table("ar vs parallel samplers (same grid, tokenizer and seeds)",
                                 result["ratios"], RATIO_SHORT))
    if result.get("quality"):
        console.print(rich_table("quality", _with_note_refs(result["quality"], notes), CONSOLE_QUALITY))
    for text, i in notes.items():
        console.print(f"  [{i}] {text}", highlight=False)
    if result.get("files"):
        console.print(f"written: {Path(result['files']['markdown']).parent}/ "
                      f"({', '.join(Path(f).name for f in result['files'].values())})", highlight=False)


# ---- files ---------------------------------------------------------------------------------
def _csv(rows: list[dict], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return out.getvalue()


def _json_safe(value):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


# config fields that change how a prior draws when the caller leaves them alone
SAMPLING_DEFAULT_KEYS = ("steps", "temperature", "top_p", "choice_temperature", "temperature_end", "update_rule",
                         "guidance", "cfg_from", "polish")


def sampling_defaults(config: dict | None) -> str:
    """The sampling defaults a prior's own config sets (its steps, a nucleus filter below 1, ...), so a
    bench table's rows say what each prior drew with even where the command line named none."""
    if not config:
        return "its config's defaults (not recorded)"
    shown = []
    for key in (k for k in SAMPLING_DEFAULT_KEYS if k in config):
        value = config[key]
        if key == "top_p" and value >= 1.0:
            shown.append("no nucleus filter")
        elif (key, value) in (("temperature", 1.0), ("guidance", "null"), ("cfg_from", 0.0), ("polish", 0.0)):
            continue   # the plain draw, plain CFG on every step, no pass: not defaults worth naming
        else:
            shown.append(f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}")
    return ", ".join(shown) or "no sampling defaults of its own"


def to_markdown(result: dict[str, Any]) -> str:
    env, s = result["environment"], result["settings"]
    lines = [f"# nar bench: {env['device_name']}", ""]
    lines.append(f"- date (UTC): {env['date_utc']}; commit `{env.get('commit')}`"
                 f"{' (uncommitted changes)' if env.get('commit_dirty') else ''}")
    lines.append(f"- device: {env['device_name']}; {env['cpu_count']} CPUs ({env['cpus_usable']} usable), "
                 f"{env['torch_threads']} torch threads; {env['platform']}")
    lines.append(f"- python {env['python']}, torch {env['torch']}, x-transformers {env.get('x_transformers')}, "
                 f"vector-quantize-pytorch {env.get('vector_quantize_pytorch')}, numpy {env.get('numpy')}"
                 + (f", CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')}" if env.get("cuda") else ""))
    lines.append(f"- load average (1/5/15 min) at start {env.get('load_avg_start')}, at end "
                 f"{env.get('load_avg_end')}: other processes on the machine slow every number down")
    lines.append(f"- command: `{s.get('command') or 'nar bench'}`")
    lines.append(f"- mode {s['mode']}: sizes {s['sizes']}, steps {s['steps'] or 'each prior default'}, "
                 f"batches {s['batches']}, "
                 f"{s['warmup']} warm-up run(s) then {s['repeats']} timed run(s) per row, seeds "
                 f"{s['seed']}..{s['seed'] + s['repeats'] - 1} for every prior, "
                 + (f"temperature {s['temperature']} " if s.get('temperature') is not None
                    else "each prior's own temperature ")
                 + "(and each prior's own sampling defaults, listed with it below)")
    lines.append(f"- tokenizer: {result['tokenizer']['source']} (factor {result['tokenizer']['factor']}, "
                 f"{result['tokenizer']['codebook_size']} codes)")
    for p in result["priors"]:
        lines.append(f"- prior `{p['name']}`: {p['source']} ({p['params_m']:.1f} M parameters, "
                     f"train grid {p['train_grid']}; samples with {sampling_defaults(p.get('config'))})")
    lines += ["", "Notes:", ""]
    lines += [f"- {n}" for n in result.get("notes", [])]
    lines += ["", "## Speed (latencies per image at batch 1; throughput at the row's batch)", "",
              markdown_table(result["speed"], SPEED_SHORT)]
    if result.get("ratios"):
        lines += ["## AR vs parallel samplers", "", markdown_table(result["ratios"], RATIO_SHORT)]
    q = result.get("quality_settings", {})
    lines += ["## Quality", "",
              f"{q.get('n', '?')} generated images per row at {q.get('size', '?')}x{q.get('size', '?')} against "
              f"{q.get('n', '?')} procedural images (seeds {q.get('seed', '?')}...); Inception: "
              f"{q.get('inception') or 'none (FID and IS columns empty)'}; nar features: "
              f"{q.get('classifier') or 'none'}.", "",
              markdown_table(result["quality"], QUALITY_SHORT)]
    lines += ["## Columns", ""]
    for title, cols in (("speed", SPEED_COLUMNS), ("ar vs parallel", RATIO_COLUMNS), ("quality", QUALITY_COLUMNS)):
        lines.append(f"{title}:")
        lines.append("")
        lines += [f"- `{k}`: {v}" for k, v in cols.items()]
        lines.append("")
    return "\n".join(lines)


def write_outputs(result: dict[str, Any], out_dir: str | Path) -> dict[str, str]:
    """bench.json, bench.md, speed.csv, quality.csv, ratios.csv and the PNG plots."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "json": out / "bench.json", "markdown": out / "bench.md", "speed_csv": out / "speed.csv",
        "quality_csv": out / "quality.csv", "ratios_csv": out / "ratios.csv",
        "plot_time": out / "time_vs_steps.png", "plot_quality": out / "quality_vs_time.png",
    }
    result = dict(result)
    result["files"] = {k: str(v) for k, v in files.items()}
    result["columns"] = {"speed": SPEED_COLUMNS, "quality": QUALITY_COLUMNS, "ratios": RATIO_COLUMNS}
    files["json"].write_text(json.dumps(_json_safe(result), indent=2) + "\n")
    files["markdown"].write_text(to_markdown(result))
    files["speed_csv"].write_text(_csv(result["speed"], list(SPEED_COLUMNS)))
    files["quality_csv"].write_text(_csv(result["quality"], list(QUALITY_COLUMNS)))
    files["ratios_csv"].write_text(_csv(result.get("ratios", []), list(RATIO_COLUMNS)))
    plot_time_vs_steps(result, files["plot_time"])
    plot_quality_vs_time(result, files["plot_quality"])
    return {k: str(v) for k, v in files.items()}


# ---- plots ---------------------------------------------------------------------------------
def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def plot_time_vs_steps(result: dict[str, Any], path: str | Path) -> None:
    """One panel per size: seconds per image (batch 1, median) against steps; solid =
    sampling + decoding, dashed = sampling only. ar runs one step per token, so it is a
    horizontal line labelled with its token count."""
    plt = _pyplot()
    rows = [r for r in result["speed"] if r.get("status") == "ok" and r.get("batch") == 1]
    sizes = sorted({r["size"] for r in result["speed"]})
    fig, axes = plt.subplots(1, max(1, len(sizes)), figsize=(5 * max(1, len(sizes)), 4), squeeze=False)
    all_steps = sorted({r["steps"] for r in rows if r.get("steps") is not None}) or [1]
    colors = {}
    for ax, size in zip(axes[0], sizes):
        here = [r for r in rows if r["size"] == size]
        for name in sorted({r["prior"] for r in here}):
            mine = sorted((r for r in here if r["prior"] == name), key=lambda r: r.get("steps") or 0)
            color = colors.setdefault(name, f"C{len(colors)}")
            if all(r.get("steps") is None for r in mine):
                r = mine[0]
                ax.axhline(r["total_p50_s"], color=color, label=f"{name} ({r['tokens']} sequential steps)")
                ax.axhline(r["sample_p50_s"], color=color, linestyle="--")
                continue
            xs = [r["steps"] for r in mine]
            ax.plot(xs, [r["total_p50_s"] for r in mine], "o-", color=color, label=name)
            ax.plot(xs, [r["sample_p50_s"] for r in mine], "o--", color=color, alpha=0.6)
        if here:
            ax.plot([], [], color="gray", linestyle="--", label="dashed: sampling only")
        ax.set_title(f"{size}x{size}" + (f" ({here[0]['grid']} tokens)" if here else " (no rows)"))
        ax.set_xlabel("sampling steps")
        ax.set_ylabel("seconds per image, batch 1 (solid: + decode)")
        ax.set_xticks(all_steps)
        if here:
            ax.set_yscale("log")
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"time per image vs steps: {result['environment']['device_name']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_quality_vs_time(result: dict[str, Any], path: str | Path) -> None:
    """FD (nar features) against seconds per image; reference rows as horizontal lines."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    points = [r for r in result["quality"] if r.get("kind") == "prior" and r.get("fd_nar") is not None]
    refs = [r for r in result["quality"] if r.get("kind") == "reference" and r.get("fd_nar") is not None]
    for i, r in enumerate(points):
        if r.get("time_per_image_s") is None:
            continue
        ax.scatter([r["time_per_image_s"]], [r["fd_nar"]], color=f"C{i % 10}")
        label = r["row"] + (f" ({r['steps']} steps)" if r.get("steps") else "")
        ax.annotate(label, (r["time_per_image_s"], r["fd_nar"]), fontsize=8, xytext=(4, 4),
                    textcoords="offset points")
    for j, r in enumerate(refs):
        ax.axhline(r["fd_nar"], linestyle=":", color="gray")
        ax.text(0.01, r["fd_nar"], r["row"], transform=ax.get_yaxis_transform(), fontsize=8, va="bottom")
    if not points:
        why = sorted({r.get("status", "") for r in result["quality"] if r.get("kind") == "prior"})
        ax.text(0.5, 0.75, "no prior has a quality number\n(" + "; ".join(w for w in why if w) + ")",
                ha="center", va="center", transform=ax.transAxes, fontsize=9, wrap=True)
    else:
        ax.set_xscale("log")
    ax.set_xlabel("seconds per image (sampling + decoding, batch 1)")
    ax.set_ylabel("FD (nar features), lower is better")
    ax.set_title(f"quality vs time: {result['environment']['device_name']}", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
