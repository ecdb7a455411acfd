"""Pipelines compose models: `Pipeline` (tokenizer + priors on a device), sample, inpaint,
bench, tokenizer jobs, prior training. Models never import this package."""
__all__ = ["Pipeline", "PipelineOutput"]


def __getattr__(name: str):
    if name in __all__:
        from nar.pipelines import pipeline
        return getattr(pipeline, name)
    raise AttributeError(f"module 'nar.pipelines' has no attribute {name!r}")
