"""The closed loop: fit, read the residuals, rank the rule graph's actions, refit with the top few, keep a
change only when the model comparison says so, repeat.

Model comparison: with a sampler's log-evidence, computed under the mismatch-aware likelihood
(fit/likelihood.py: the fit errors carry a free inflation factor, so ln Z and its gains carry the misfit), a
change is kept when its ln Z gain clears two bars (:func:`acceptance_threshold`): :data:`MIN_DELTA_LN_Z`
(2 ln B >= 6, "strong" on the Kass & Raftery 1995 scale), and the noise of the comparison itself, z sigma, with
sigma from each fit's ln Z error and the spread of this source's own baseline replicates (two sampler seeds,
three when they disagree by more than :data:`MULTIMODAL_LN_Z`), and z the one-sided point of a 5 % family-wise
error over every comparison the run can make (``steps x width``, Bonferroni). A candidate that clears the
bars is refitted with another seed and kept only when that replicate clears them too. Without an evidence, a
change is kept when it lowers BIC by at least :data:`MIN_DELTA_BIC` (the same scale: Delta BIC ~ -2 ln B).

A change kept where the data reject the new model as well (its errors needed more inflation than
:data:`~astrorag.fit.likelihood.MAX_INFLATION`) is labelled "best available", never decisive.

Every attempted change gives one record in the ``rules learn`` fit-log format. A record counts as evidence
for a rule only when the comparison was decisive: a confirmed kept change, or a refit that lost at least as
much as a keep must gain, both on models the data accept; the others are kept with the reason they do not
count (:func:`learnable`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any

import numpy as np

from ..graph.model import RuleGraph
from ..graph.regions import REGIONS
from ..graph.types import RankedAction
from ..sed.analysis import analyse
from ..sed.photometry import Photometry
from .base import FitError, FitResult, Fitter
from .cache import FitCache, fit_key
from .scratch import init_worker
from .spec import ModelSpec, NotAModelChange, apply_action, as_range, baseline

MIN_DELTA_LN_Z = 3.0
MIN_DELTA_BIC = 6.0
#: Baseline replicates further apart than this disagree on the posterior itself (another mode): a third is run.
MULTIMODAL_LN_Z = 3.0
#: Family-wise false-acceptance level of a whole run: every comparison it can make shares it (Bonferroni).
#: A fixed run-to-run spread measured on four sources used to stand in the noise bar; each source's own
#: baseline replicates measure it now, and the confirming refit with another seed tests every keep.
FALSE_ACCEPT_ALPHA = 0.05
#: Two candidates of a round whose best-fit models differ by less than this many fit errors in every band are
#: one comparison (near-duplicates): the weaker is not confirmed separately and its record does not count.
DUPLICATE_SIGMA = 0.5


def acceptance_threshold(err_old: float | None, err_new: float | None, comparisons: int = 1,
                         spread: float = 0.0) -> tuple[float, str]:
    """The ln Z gain a change must reach, and which bar sets it (``"kass_raftery"`` or ``"noise"``).

    ``comparisons`` is the size of the family the run's 5 % false-acceptance level is shared over;
    ``spread`` the standard deviation of this source's baseline ln Z over sampler seeds.

    >>> acceptance_threshold(0.05, 0.05, comparisons=9)
    (3.0, 'kass_raftery')
    >>> t, bar = acceptance_threshold(0.05, 0.05, comparisons=9, spread=2.0); round(t, 2), bar
    (7.18, 'noise')
    """
    sigma = math.hypot(max(err_old or 0.0, spread), max(err_new or 0.0, spread))
    z = NormalDist().inv_cdf(1 - FALSE_ACCEPT_ALPHA / max(comparisons, 1))
    noise = z * sigma
    return (MIN_DELTA_LN_Z, "kass_raftery") if MIN_DELTA_LN_Z >= noise else (noise, "noise")


def learnable(step: FitStep, before: FitResult, after: FitResult | None, duplicate_of: str = "") -> str:
    """Why a step's record must not count as evidence for its rule, or ``""`` when it counts.

    It counts when the comparison was decisive on models the data accept: a kept change confirmed by a second
    seed, or a refit that lost at least the gain a keep needs. A single refit in between, an unconverged fit,
    a near-duplicate of a better candidate, or a pair the data reject (no model fits, so the gain says which
    wrong model is less wrong) is kept in the log with this reason and not counted.
    """
    if after is None:
        return "the refit failed"
    if duplicate_of:
        return f"a near-duplicate of {duplicate_of}'s refit"
    if not after.converged or not before.converged:
        return "a fit did not converge"
    if after.rejected:
        # Both wrong, or the change made it wrong: the gain says which wrong model is less wrong.
        rejected = [f"{which}: {fit.rejected}" for which, fit in (("before", before), ("after", after)) if fit.rejected]
        return "the data reject the models compared (" + "; ".join(rejected) + ")"
    if step.accepted:
        return ""   # a confirmed change to a model the data accept (from one they may have rejected)
    if before.rejected:
        return f"the model it changed is rejected by the data ({before.rejected}) and the change was not kept"
    if step.delta is not None and step.threshold is not None and step.delta <= -step.threshold:
        return ""
    if step.threshold_bar == "bic":
        return "" if step.delta is not None and step.delta <= 0 else "a BIC gain short of the bar, not decisive"
    return "an unconfirmed single refit: its gain is neither decisive for nor against the change"


@dataclass
class FitStep:
    """One fit on the path: the baseline (no action) or one attempted change."""

    step: int
    action: dict[str, Any] | None
    change: str
    chi2: float | None
    chi2_red: float | None
    log_evidence: float | None
    bic: float | None
    delta: float | None          # ln Z gain (evidence) or BIC drop, against the model it changed
    accepted: bool
    seconds: float
    symptoms: list[str] = field(default_factory=list)
    not_represented: list[str] = field(default_factory=list)
    error: str = ""
    log_evidence_err: float | None = None
    threshold: float | None = None         # the gain this step had to reach
    threshold_bar: str | None = None       # which bar set it: kass_raftery, noise or bic
    replicates: list[float] = field(default_factory=list)   # ln Z of independent seeds (baseline; a confirmation)
    quality: str = ""
    inflation: float | None = None         # the factor the fit errors needed (median; fit/likelihood.py)
    chi2_red_inflated: float | None = None
    rejected_by_data: str = ""             # why the data reject this step's model even with inflated errors
    kept_as: str = ""                      # "decisive" or "best available: ..." for a kept change

    @classmethod
    def from_fit(cls, step: int, action: dict[str, Any] | None, change: str, fit: FitResult,
                 symptoms: list[str], **extra: Any) -> FitStep:
        """The step of one finished fit (its figures read from the fit)."""
        return cls(step, action, change, fit.chi2, fit.chi2_red, fit.log_evidence, fit.bic, extra.pop("delta", None),
                   False, fit.seconds, list(symptoms), fit.not_represented, log_evidence_err=fit.log_evidence_err,
                   quality=fit.quality, inflation=fit.inflation_p50, chi2_red_inflated=fit.chi2_red_inflated,
                   rejected_by_data=fit.rejected, **extra)

    def set_fit(self, fit: FitResult) -> None:
        """Read the figures of ``fit`` (the replicate a confirmation kept)."""
        self.log_evidence, self.chi2, self.chi2_red, self.quality = fit.log_evidence, fit.chi2, fit.chi2_red, fit.quality
        self.inflation, self.chi2_red_inflated, self.rejected_by_data = (fit.inflation_p50, fit.chi2_red_inflated,
                                                                         fit.rejected)

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class FitPath:
    """The outcome of :func:`run_loop` for one source."""

    source_id: str
    fitter: str
    criterion: str                 # "log_evidence" or "bic"
    steps: list[FitStep]
    final: FitResult
    baseline: FitResult
    records: list[dict[str, Any]]
    skipped: list[dict[str, str]] = field(default_factory=list)
    spread: float = 0.0            # this source's baseline ln Z spread over seeds, used in the comparisons
    comparisons: int = 1           # the family the run's false-acceptance level is shared over
    multimodal: bool = False       # the baseline's replicates disagreed by more than MULTIMODAL_LN_Z
    seed: int | None = None
    fits: list[FitResult] = field(default_factory=list, repr=False)
    kept: list[tuple[str, FitResult]] = field(default_factory=list, repr=False)  # (rule id, fit) per kept change
    prior_check: dict[str, Any] | None = None   # the verdict under a second prior (prior_check), when run

    @property
    def final_model(self) -> ModelSpec:
        return self.final.spec

    @property
    def threshold(self) -> float:
        """The smallest gain any step could be kept with (each step records its own)."""
        return MIN_DELTA_LN_Z if self.criterion == "log_evidence" else MIN_DELTA_BIC

    @property
    def accepted(self) -> list[FitStep]:
        return [s for s in self.steps[1:] if s.accepted]

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    @property
    def verdict(self) -> str:
        """One line on what the run concludes, in the terms a referee would ask for."""
        kept = [s.action["rule_id"] for s in self.accepted if s.action]
        changes = f"kept {', '.join(kept)}" if kept else "kept no change"
        prior = ""
        if self.prior_check:
            c = self.prior_check
            second = c["ln_z_gain_second_prior"]
            prior = (f"; {c['winner']} against {c['rival']}: {c['verdict']} (ln Z gain {c['ln_z_gain_first_prior']:+.1f}"
                     + (f", {second:+.1f} under the second prior)" if second is not None else ")"))
        if self.final.rejected:
            return (f"no model fits; best available: {self.final_model.describe()} ({changes}); "
                    f"the data reject it: {self.final.rejected}{prior}")
        return f"{changes}; the final model fits the data ({self.final.quality}){prior}"

    @property
    def bhstar(self) -> dict[str, Any] | None:
        """The final model's black-hole-star component in readable units, with 68 % intervals."""
        names = {"T_eff_K": "bhstar:temperature", "share_of_observed_5500A": "bhstar:f5500_share",
                 "share_of_observed_1500A": "bhstar:uv_share", "log_L_bol_Lsun": "bhstar:log_L_bol_lsun",
                 "balmer_break_depth": "bhstar:balmer_break", "broad_halpha_ew_rest_AA": "bhstar:halpha_ew"}
        post = self.final.posterior
        if "bhstar:temperature" not in post:
            return None
        return {label: {q: post[name][q] for q in ("p16", "p50", "p84")} for label, name in names.items()
                if name in post}

    def to_dict(self) -> dict[str, Any]:
        return {"source_id": self.source_id, "fitter": self.fitter, "criterion": self.criterion,
                "threshold": self.threshold, "seed": self.seed, "ln_z_spread": round(self.spread, 3),
                "comparisons": self.comparisons, "false_acceptance_alpha": FALSE_ACCEPT_ALPHA,
                "verdict": self.verdict, "rejected_by_data": self.final.rejected or None,
                "inflation": self.final.inflation, "chi2_red_inflated": None if self.final.chi2_red_inflated is None
                else round(self.final.chi2_red_inflated, 3),
                "multimodal": self.multimodal, "prior_check": self.prior_check, "bhstar": self.bhstar,
                "steps": [s.to_dict() for s in self.steps], "final_model": self.final_model.to_dict(),
                "final_model_text": self.final_model.describe(),
                "final": self.final.to_dict(), "quality": self.final.quality, "chi2_red": round(self.final.chi2_red, 3),
                "at_prior_edge": self.final.at_prior_edge,
                "fits": self.n_fits, "seconds": round(self.seconds, 1),
                "skipped_actions": self.skipped, "records": self.records}

    @property
    def n_fits(self) -> int:
        """Fits run, replicates included."""
        return sum(max(len(s.replicates), 1) for s in self.steps if s.chi2 is not None)


def _symptoms_and_residuals(phot: Photometry, model: list[float]) -> tuple[list[str], dict[str, float]]:
    analysed = analyse(replace(phot, model=np.array([model], dtype=float)))
    resid = {r: round(float(v[0]), 3) for r, v in analysed.diagnostics.resid.items()
             if r in REGIONS and np.isfinite(v[0])}
    return analysed.symptom_names(0), resid


def fit_symptoms(phot: Photometry, fitter: Fitter, result: FitResult) -> tuple[list[str], dict[str, float]]:
    """Symptoms of a fit: the residual and shape symptoms of the photometry with the model, and what the
    posterior shows (a parameter against its prior bound)."""
    symptoms, resid = _symptoms_and_residuals(phot, result.model_ujy)
    return symptoms + [s for s in fitter.edge_symptoms(result) if s not in symptoms], resid


def _action_dict(a: RankedAction) -> dict[str, Any]:
    return {"rule_id": a.rule_id, "rank": a.rank, "direction": a.direction, "parameter": a.parameter,
            "module": a.module, "summary": a.summary, "contested": a.contested}


def _gain(fitter: Fitter, new: FitResult, old: FitResult) -> float:
    if fitter.gives_evidence and new.log_evidence is not None and old.log_evidence is not None:
        return new.log_evidence - old.log_evidence
    return old.bic - new.bic


def applicable_change(spec: ModelSpec, action, fitter: Fitter, built=None) -> tuple[ModelSpec | None, str]:
    """``(new model, what changed)`` when the action changes what the fitter builds, else ``(None, why not)``.

    ``built`` is ``fitter.translate(spec)`` when the caller already has it.
    """
    try:
        new, change = apply_action(spec, action)
    except NotAModelChange as exc:
        return None, str(exc)
    unkept = fitter.unkept_change(spec, new)
    if unkept:
        return None, f"not representable in {fitter.name}: {unkept}"
    if fitter.translate(new) == (fitter.translate(spec) if built is None else built):
        lost = sorted(set(fitter.not_representable(new)) - set(fitter.not_representable(spec)))
        return None, f"not representable in {fitter.name}: {'; '.join(lost) or 'no change'}"
    return new, change


def candidate_actions(graph: RuleGraph, symptoms: list[str], spec: ModelSpec, fitter: Fitter, width: int,
                      tried: set[ModelSpec]) -> tuple[list[tuple[RankedAction, ModelSpec, str]], list[dict[str, str]]]:
    """The top ``width`` ranked actions that change the model in a way the fitter can build.

    Among actions of equal score, the smaller change comes first: one that keeps the model's modules (a wider
    range of a parameter it already has) before one that adds a component. The first is nested in the model
    and costs the evidence less if it does not help; the order of equal scores is otherwise arbitrary.
    """
    from ..sed.advisor import rank_actions

    applicable, skipped, seen = [], [], set()
    built = fitter.translate(spec)
    for action in rank_actions(graph, symptoms, limit=24):
        if len(applicable) >= width and action.score < applicable[width - 1][0].score:
            break   # every action tied with the last one chosen has been read
        new, change = applicable_change(spec, action, fitter, built)
        if new is None or new in tried or new in seen:
            skipped.append({"rule_id": action.rule_id, "why": change if new is None else
                            "the model already has this change"})
            continue
        seen.add(new)
        applicable.append((action, new, change))
    applicable.sort(key=lambda c: (-c[0].score, len(set(c[1].modules) - set(spec.modules))))
    chosen = applicable[:width]
    tried.update(new for _, new, _ in chosen)
    return chosen, skipped


def fit_or_reason(fitter: Fitter, phot: Photometry, spec: ModelSpec, replicate: int = 0) -> FitResult | str:
    """The fit, or why it failed (so that one failed fit in a pool does not stop the others)."""
    try:
        return fitter.fit(phot, spec, replicate=replicate)
    except FitError as exc:
        return str(exc)


class _Runner:
    """Runs fits in this process, a process pool, or through a dask ``submit``; results in the order given.

    A fit found in the cache is not run again; every fit is put there the moment it ends, so an
    interrupted run loses only the fits in flight. Pool workers die with this process (fit/scratch.py).
    """

    def __init__(self, fitter: Fitter, source: Photometry, workers: int, submit: Callable[..., Future] | None,
                 cache: FitCache | None = None):
        self.fitter, self.source, self.submit, self.cache = fitter, source, submit, cache
        self.pool = ProcessPoolExecutor(max_workers=workers, initializer=init_worker) \
            if submit is None and workers > 1 else None

    def _kept(self, key: str, outcome: FitResult | str) -> FitResult | str:
        if self.cache is not None and not isinstance(outcome, str):
            self.cache.put(key, outcome)
        return outcome

    def __call__(self, jobs: list[tuple[ModelSpec, int]]) -> list[FitResult | str]:
        keys = [fit_key(self.fitter, self.source, spec, rep) for spec, rep in jobs]
        results: list[FitResult | str | None] = [self.cache.get(k, spec) if self.cache is not None else None
                                                 for k, (spec, _) in zip(keys, jobs)]
        todo = [i for i, r in enumerate(results) if r is None]
        if self.submit is not None:
            futures = {i: self.submit(fit_or_reason, self.fitter, self.source, *jobs[i]) for i in todo}
            for i, future in futures.items():
                results[i] = self._kept(keys[i], future.result())
        elif self.pool is not None:
            # Every fit goes to the pool, even a lone one: this process then holds no scratch folder that
            # a SIGKILL could leave behind, and each fit is kept as it ends, whatever the order.
            pending = {self.pool.submit(fit_or_reason, self.fitter, self.source, *jobs[i]): i for i in todo}
            for future in as_completed(pending):
                i = pending[future]
                results[i] = self._kept(keys[i], future.result())
        else:
            for i in todo:
                results[i] = self._kept(keys[i], fit_or_reason(self.fitter, self.source, *jobs[i]))
        return results  # type: ignore[return-value]

    def close(self, interrupted: bool = False) -> None:
        """Shut the pool; after an interruption its workers are stopped now, not after their fits."""
        if self.pool is None:
            return
        if interrupted:
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.terminate()  # SIGTERM: the worker removes its scratch folder and exits
        self.pool.shutdown(wait=not interrupted, cancel_futures=True)


def _baseline(run: _Runner, spec: ModelSpec, fitter: Fitter, say) -> tuple[FitResult, list[float], bool, float]:
    """The baseline fit: two independent seeds (one without an evidence), a third when they disagree.

    Returns the best fit, the replicates' ln Z, whether they disagreed, and the seconds all of them took.
    """
    replicates = 2 if fitter.gives_evidence else 1
    outcomes = run([(spec, r) for r in range(replicates)])
    fits = [o for o in outcomes if not isinstance(o, str)]
    if not fits:
        raise FitError(outcomes[0])
    values = [f.log_evidence for f in fits if f.log_evidence is not None]
    multimodal = len(values) > 1 and max(values) - min(values) > MULTIMODAL_LN_Z
    if multimodal:
        say(f"{run.source.source_id}: baseline replicates disagree (ln Z {', '.join(f'{v:.1f}' for v in values)}): "
            "the posterior has more than one mode; a third seed decides")
        third = run([(spec, 2)])[0]
        if not isinstance(third, str):
            fits.append(third)
            values.append(third.log_evidence)
    best = max(fits, key=lambda f: f.log_evidence if f.log_evidence is not None else -f.bic)
    return best, values, multimodal, sum(f.seconds for f in fits)


@dataclass
class Candidate:
    """One refit of a round: its step, its fit (None when it failed) and its fit-log record."""

    step: FitStep
    fit: FitResult | None
    record: dict[str, Any]
    duplicate_of: str = ""

    @property
    def rule_id(self) -> str:
        return self.step.action["rule_id"] if self.step.action else ""

    @property
    def passes(self) -> bool:
        """Cleared its bar with a finished sampler (an unfinished one's evidence is not an evidence)."""
        return (self.fit is not None and self.fit.converged and not self.duplicate_of
                and self.step.delta is not None and self.step.threshold is not None
                and self.step.delta >= self.step.threshold)


def _near_duplicates(candidates: list[Candidate], source: Photometry) -> None:
    """Mark each candidate whose best-fit model is within :data:`DUPLICATE_SIGMA` fit errors of a better
    candidate's in every band: one comparison, not two."""
    errors = np.asarray(source.fit_err[0], dtype=float)
    fitted = sorted((c for c in candidates if c.fit is not None), key=lambda c: -(c.step.delta or -math.inf))
    for i, weaker in enumerate(fitted):
        for better in fitted[:i]:
            if better.duplicate_of:
                continue
            a, b = np.asarray(better.fit.model_ujy, float), np.asarray(weaker.fit.model_ujy, float)
            use = np.isfinite(a) & np.isfinite(b) & np.isfinite(errors) & (errors > 0)
            if use.any() and np.all(np.abs(a[use] - b[use]) / errors[use] < DUPLICATE_SIGMA):
                weaker.duplicate_of = better.rule_id
                break


def _refit_round(run: _Runner, chosen, current: FitResult, symptoms: list[str], resid: dict[str, float],
                 number: int, path: FitPath, fitter: Fitter) -> list[Candidate]:
    """Refit the round's chosen changes and score each against ``current``."""
    source = run.source
    outcomes = run([(new, 0) for _, new, _ in chosen])
    candidates = []
    for (action, new, change), outcome in zip(chosen, outcomes):
        if isinstance(outcome, str):
            step = FitStep(number, _action_dict(action), change, None, None, None, None, None, False, 0.0,
                           list(symptoms), [], outcome)
            candidates.append(Candidate(step, None, {}))
            continue
        path.fits.append(outcome)
        _, after_resid = _symptoms_and_residuals(source, outcome.model_ujy)
        gain = _gain(fitter, outcome, current)
        if fitter.gives_evidence:
            threshold, bar = acceptance_threshold(current.log_evidence_err, outcome.log_evidence_err,
                                                  path.comparisons, path.spread)
        else:
            threshold, bar = MIN_DELTA_BIC, "bic"
        record = {
            "source_id": source.source_id, "symptoms": list(symptoms),
            "action": {"parameter": action.parameter, "module": action.module, "direction": action.direction},
            "rule_id": action.rule_id, "fitter": fitter.name,
            "chi2_before": round(current.chi2_red, 4), "chi2_after": round(outcome.chi2_red, 4),
            "inflation_before": current.inflation_p50, "inflation_after": outcome.inflation_p50,
            "residuals_before": resid, "residuals_after": after_resid,
            path.criterion + "_gain": round(gain, 3), "threshold": round(threshold, 3), "accepted": False}
        path.records.append(record)
        step = FitStep.from_fit(number, _action_dict(action), change, outcome, symptoms, delta=gain,
                                threshold=round(threshold, 3), threshold_bar=bar)
        candidates.append(Candidate(step, outcome, record))
    _near_duplicates(candidates, source)
    return candidates


def _settle_records(candidates: list[Candidate], current: FitResult) -> None:
    """Say in each record whether it counts as evidence for its rule, and if not, why (:func:`learnable`)."""
    for c in candidates:
        if not c.record:
            continue
        why = learnable(c.step, current, c.fit, c.duplicate_of)
        c.record["accepted"] = c.step.accepted
        c.record["counts"] = not why
        if why:
            c.record["not_counted"] = why
        else:
            c.record.pop("not_counted", None)


#: The second prior of the prior-sensitivity check: the non-stellar continuum (AGN disc or BH*) may give at most
#: this share of the rest-optical light, so the host must make the rest (as Merida et al. 2026,
#: arXiv:2606.12355, refit LRDs under a prior against a strong AGN continuum and saw the verdicts move).
SECOND_PRIOR_MAX_SHARE = 0.3


def family_of(spec: ModelSpec) -> str:
    """The model family a verdict is about: ``"bhstar"``, ``"agn"`` or ``"stars"``."""
    if spec.has("bhstar"):
        return "bhstar"
    return "agn" if spec.member("agn") else "stars"


def second_prior(spec: ModelSpec) -> ModelSpec:
    """``spec`` under the prior that disfavours a strong non-stellar continuum (:data:`SECOND_PRIOR_MAX_SHARE`).

    >>> from astrorag.graph.types import Action
    >>> agn, _ = apply_action(baseline(5.0), Action("increase", "fracAGN", "skirtor2016", "0.5 - 0.99"))
    >>> second_prior(agn).value("skirtor2016", "fracAGN")
    (0.1, 0.3)
    """
    cap = SECOND_PRIOR_MAX_SHARE
    for module, parameter in ((spec.member("agn"), "fracAGN"), ("bhstar", "f5500_share")):
        if module and spec.has(module) and parameter in spec.module(module):
            lo, hi = as_range(spec.value(module, parameter))
            spec = spec.with_value(module, parameter, (round(min(max(lo, 0.01), cap / 3), 6), min(hi, cap)))
    return spec


def _dusty_agn_alternative(spec: ModelSpec) -> ModelSpec:
    """The winner with its BH* replaced by the dusty-AGN reading (rule lrd-reddened-agn's model)."""
    from ..graph.types import Action

    stars = spec.without("bhstar")
    if stars.member("agn"):
        return stars
    new, _ = apply_action(stars, Action("increase", "fracAGN", "skirtor2016", "0.5 - 0.99",
                                        also=(("broad_lines", "free"), ("lambda_fracAGN", "0.4/0.7"),
                                              ("EBV", "0.1 - 0.5"), ("i", "0 - 30"))))
    return new


def prior_check(run: _Runner, path: FitPath, say) -> dict[str, Any] | None:
    """Refit the winning family and its best rival under :func:`second_prior`; say whether the verdict holds.

    Runs when the loop kept a non-stellar family (AGN or BH*) for a source with a V-shaped SED. The rival is the
    best fit of another family the run made; a BH* winner with no AGN fit in the run is also compared with the
    dusty-AGN reading, fitted here. "robust to the prior" needs the winner ahead by the Kass & Raftery bar
    under both priors.
    """
    final = path.final
    winner_family = family_of(final.spec)
    if winner_family == "stars" or "v_shaped_sed" not in path.steps[0].symptoms or final.log_evidence is None:
        return None
    rivals = [f for f in path.fits if family_of(f.spec) != winner_family and f.log_evidence is not None
              and f.converged]
    if winner_family == "bhstar" and not any(family_of(f.spec) == "agn" for f in rivals):
        dusty = run([(_dusty_agn_alternative(final.spec), 0)])[0]
        if not isinstance(dusty, str):
            path.fits.append(dusty)
            rivals.append(dusty)
    if not rivals:
        return None
    rival = max(rivals, key=lambda f: f.log_evidence)
    say(f"{path.source_id}: prior check: refitting {winner_family} and {family_of(rival.spec)} under a prior "
        f"that caps the non-stellar continuum at {SECOND_PRIOR_MAX_SHARE:g} of the rest-optical light")
    outcomes = run([(second_prior(final.spec), 0), (second_prior(rival.spec), 0)])
    gains = [final.log_evidence - rival.log_evidence]
    if not any(isinstance(o, str) for o in outcomes):
        gains.append(outcomes[0].log_evidence - outcomes[1].log_evidence)
        path.fits += list(outcomes)
    robust = len(gains) == 2 and min(gains) >= MIN_DELTA_LN_Z
    verdict = "robust to the prior" if robust else ("prior-dependent" if len(gains) == 2 else
                                                    "undecided: a second-prior refit failed")
    check = {"winner": winner_family, "rival": family_of(rival.spec), "rival_model": rival.spec.describe(),
             "ln_z_gain_first_prior": round(gains[0], 3),
             "ln_z_gain_second_prior": round(gains[1], 3) if len(gains) == 2 else None,
             "second_prior": f"non-stellar continuum share <= {SECOND_PRIOR_MAX_SHARE:g} at rest-optical",
             "verdict": verdict}
    if winner_family == "bhstar":
        agn = [f for f in rivals if family_of(f.spec) == "agn"]
        if agn:
            check["ln_z_gain_vs_dusty_agn"] = round(final.log_evidence - max(f.log_evidence for f in agn), 3)
    say(f"{path.source_id}: {winner_family} against {check['rival']}: gain {gains[0]:+.1f} under the first prior"
        + (f", {gains[1]:+.1f} under the second" if len(gains) == 2 else "") + f": {verdict}")
    return check


def run_loop(source: Photometry, graph: RuleGraph, fitter: Fitter, *, steps: int,
             width: int, workers: int = 1, submit: Callable[..., Future] | None = None,
             progress: Callable[[str], None] | None = None, start: ModelSpec | None = None,
             cache: FitCache | None = None, on_round: Callable[[FitPath], None] | None = None,
             check_prior: bool = True) -> FitPath:
    """Baseline fit of one source (a one-row table from :meth:`Photometry.source`, with its error floor),
    then up to ``steps`` rounds of refits with the top ``width`` actions.

    After a round that keeps a change, the next round starts from the new model and its symptoms; after a
    round that keeps nothing, it tries the next-ranked actions on the same model. The loop ends after
    ``steps`` rounds or when no untried action changes the model. The same fitter seed gives the same path.

    ``submit`` runs fits elsewhere (a dask client's ``submit``); otherwise a process pool of ``workers``
    runs each round's refits (in this process when ``workers`` is 1). Fits found in ``cache`` are not run
    again (the same command resumes an interrupted run); ``on_round`` sees the path after every round, so
    its records can be written as they come. When the run keeps a non-stellar family for a V-shaped source,
    :func:`prior_check` refits the winner and its best rival under a second prior (``check_prior``).

    Raises
    ------
    FitError
        When the baseline fit fails (the source cannot be fitted at all).
    """
    say = progress or (lambda _msg: None)
    spec = start or baseline(source.redshift)
    say(f"{source.source_id}: baseline fit ({spec.describe()})")
    run = _Runner(fitter, source, workers, submit, cache)
    interrupted = True
    try:
        current, replicates, multimodal, seconds = _baseline(run, spec, fitter, say)
        spread = statistics.stdev(replicates) if len(replicates) > 1 else 0.0
        symptoms, resid = fit_symptoms(source, fitter, current)
        first = FitStep.from_fit(0, None, "baseline", current, symptoms,
                                 replicates=[round(v, 3) for v in replicates])
        first.accepted, first.seconds = True, seconds
        path = FitPath(source.source_id, fitter.name, "log_evidence" if fitter.gives_evidence else "bic",
                       [first], current, current, [], fits=[current], spread=spread,
                       comparisons=max(steps * width, 1), multimodal=multimodal,
                       seed=getattr(fitter.options, "seed", None))
        tried: set[ModelSpec] = {spec}
        for number in range(1, steps + 1):
            chosen, skipped = candidate_actions(graph, symptoms, spec, fitter, width, tried)
            path.skipped += [dict(s, step=str(number)) for s in skipped]
            if not chosen:
                say(f"{source.source_id}: no further action the fitter can test")
                break
            say(f"{source.source_id}: round {number}: refitting with {', '.join(a.rule_id for a, _, _ in chosen)}")
            candidates = _refit_round(run, chosen, current, symptoms, resid, number, path, fitter)
            passing = sorted((c for c in candidates if c.passes), key=lambda c: -c.step.delta)
            best = None
            for candidate in passing:
                if not fitter.gives_evidence or _confirm(run, candidate, current, path, say):
                    best = candidate
                    break
            _settle_records(candidates, current)  # judged against the model they changed
            if best is not None:
                best.step.accepted = best.record["accepted"] = True
                best.step.kept_as = ("decisive" if not best.fit.rejected else
                                     f"best available: the data reject this model too ({best.fit.rejected})")
                _settle_records([best], current)
                current, spec = best.fit, best.fit.spec
                path.kept.append((best.rule_id, current))
                symptoms, resid = fit_symptoms(source, fitter, current)
                label = "" if best.step.kept_as == "decisive" else f" [{best.step.kept_as}]"
                say(f"{source.source_id}: kept {best.rule_id} ({path.criterion} gain {best.step.delta:.1f} >= "
                    f"{best.step.threshold:.1f}; chi2 {current.chi2:.1f}){label}")
            path.steps += [c.step for c in candidates]
            if on_round is not None:
                on_round(path)
            if best is None:
                # The same model and symptoms: the next round tries the next-ranked actions not yet tried.
                say(f"{source.source_id}: no change passed the {path.criterion} threshold; trying the next actions")
        path.final = current
        if fitter.gives_evidence and check_prior:
            path.prior_check = prior_check(run, path, say)
        interrupted = False
    finally:
        run.close(interrupted)
    path.final = current
    return path


def _confirm(run: _Runner, candidate: Candidate, current: FitResult, path: FitPath, say) -> bool:
    """Refit the round's best change with another seed; keep it only when that replicate passes too.

    The kept fit is the replicate with the higher evidence (a sampler misses modes, it does not invent them);
    the step reports both ln Z values and the smaller gain.
    """
    step, outcome, record = candidate.step, candidate.fit, candidate.record
    again = run([(outcome.spec, 1)])[0]
    if isinstance(again, str):
        say(f"{path.source_id}: the confirming refit of {candidate.rule_id} failed: {again}")
        step.error = f"confirmation failed: {again}"
        return False
    path.fits.append(again)
    gains = [step.delta, _gain(run.fitter, again, current)]
    step.replicates = [round(outcome.log_evidence, 3), round(again.log_evidence, 3)]
    step.seconds += again.seconds
    step.delta = min(gains)
    record[path.criterion + "_gain"] = round(step.delta, 3)
    if step.delta < step.threshold or not again.converged:
        say(f"{path.source_id}: {candidate.rule_id} did not hold with another seed (gains "
            f"{gains[0]:.1f}, {gains[1]:.1f}; needs {step.threshold:.1f})")
        return False
    chosen = max((outcome, again), key=lambda f: f.log_evidence)
    step.set_fit(chosen)
    record["chi2_after"], record["inflation_after"] = round(chosen.chi2_red, 4), chosen.inflation_p50
    candidate.fit = chosen
    return True
