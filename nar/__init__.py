"""nar: high-resolution image generation over VQGAN tokens (AR, MaskGIT, SUNDAE priors).

    from nar import Pipeline
    out = Pipeline.load().sample(prior="sundae", n=4, class_name="lake", seed=0)
"""
__all__ = ["Pipeline", "PipelineOutput"]


def __getattr__(name: str):
    if name in __all__:  # imported on first use: `import nar` stays light (no torch)
        from nar.pipelines import pipeline
        return getattr(pipeline, name)
    raise AttributeError(f"module 'nar' has no attribute {name!r}")
