"""Sampling helpers shared by the priors and pipelines: schedules, logit filters, masked-pixel fills."""

# Inpainting samples cooler than free generation: the fill has to agree with the kept tokens around
# it, not explore. On 48 held-out 1024² scenes (benchmarks/results/issue13, session 10) maskgit's
# inpainting FD went 3.26 -> 2.58 from temperature 1 to 0.7 (2.63 at 0.5), its border-band FD
# 2.94 -> 1.97. Free sampling keeps each prior's own default.
INPAINT_TEMPERATURE = 0.7

# The prior a fill uses when none is named (`nar inpaint`, `Pipeline.inpaint`, `POST /inpaint`):
# maskgit v2, fine-tuned with box corruption, had the lowest inpainting FD on those scenes (2.33
# against sundae v3's 3.40, both at 0.7; session 11; sundae v4: 2.78, session 12).
INPAINT_PRIOR = "maskgit"

# Options a fill adds to its prior's defaults (a caller's own options win). maskgit re-draws the least
# likely tokens of its fill given everything around it (its refinement, `nar.priors.maskgit`): the
# fill loses its dark specks, and the border-band FD (does the fill continue what surrounds it?) was
# lower in both runs, 1.78 -> 1.64 on 48 scenes and 1.63 -> 1.59 on 96; the whole-image FD moved
# within its noise (2.33 -> 2.13 and 2.09 -> 2.21; session 12). Free sampling keeps refinement off:
# there it cost FD and recall for fewer specks.
#
# A maskgit fill also starts from its region's kept border mirrored in, row by row (``init="reflect"``,
# `nar.sampling.fill.reflect_fill`), and the model redraws only what its refinement finds least likely:
# on the same 48 scenes FD 0.67 against 2.14–2.30 for a fill decoded from [MASK] (reconstruction 0.75),
# border-band FD 0.66 against 1.60, box gradient 0.80× real against 0.60×. The kept ridges, horizons
# and skylines run on into the box; the model's own fill does not continue them (session 18). The
# mirror alone scores lower still (0.30) but leaves a mirror seam; 4 rounds of 25 % score 1.68.
# ``init="mask"`` is the model's fill alone. Its refinement redraws in MaskGIT's confidence order, as
# measured, whatever order free sampling uses (``order="halton"``, session 41).
INPAINT_OPTIONS = {"maskgit": {"init": "reflect", "refine_rounds": 2, "refine_ratio": 0.15, "refine_steps": 2,
                               "order": "confidence"}}


# Free maskgit draws cool over their steps (0.8 -> 0.6 since session 46); a maskgit fill draws at its one
# temperature throughout (its refinement steps included), as it was measured.
CONSTANT_FILL_TEMPERATURE = ("maskgit",)


def inpaint_options(prior_name: str, options: dict | None = None, temperature: float | None = None) -> dict:
    """A fill's sampler options: the prior's INPAINT_OPTIONS, then the caller's ``options`` over them. For
    the priors of CONSTANT_FILL_TEMPERATURE a given fill ``temperature`` is also the last step's, unless
    the caller's options set ``temperature_end``."""
    merged = {**INPAINT_OPTIONS.get(prior_name, {}), **(options or {})}
    if prior_name in CONSTANT_FILL_TEMPERATURE and temperature is not None:
        merged.setdefault("temperature_end", temperature)
    return merged
