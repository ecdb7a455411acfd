"""nar: high-resolution image generation over VQGAN tokens (AR, MaskGIT, SUNDAE priors).

    from nar import Pipeline
    out = Pipeline.load().sample(prior="sundae", n=4, class_name="lake", seed=0)
"""
import os as _os

__all__ = ["Pipeline", "PipelineOutput"]

# CPU tensors of 2 MB and more on transparent huge pages (torch's own switch, read once at its
# first allocation, so it takes effect when nar is imported before torch, as the `nar` command
# does). A 1024² decode allocates ~30 fresh 16-128 MB buffers; with 4 KB pages their first-touch
# page faults cost a fifth of its CPU time on the 2-core box (benchmarks/results/issue15_cpu.md).
# THP_MEM_ALLOC_ENABLE=0 in the environment turns it off.
_os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


def __getattr__(name: str):
    if name in __all__:  # imported on first use: `import nar` stays light (no torch)
        from nar.pipelines import pipeline
        return getattr(pipeline, name)
    raise AttributeError(f"module 'nar' has no attribute {name!r}")
