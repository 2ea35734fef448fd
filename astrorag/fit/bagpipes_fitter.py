"""The bagpipes fitter (Carnall et al. 2018, arXiv:1712.04452) with the nautilus sampler.

Install with ``pip install -e ".[fit]"``. The translation from the CIGALE vocabulary is one table,
:data:`TRANSLATION`; :func:`to_bagpipes` applies it and lists what bagpipes cannot represent, so nothing is
dropped silently.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import time
import warnings

import numpy as np

from ..errors import InputError
from ..sed.photometry import Photometry
from . import bhstar
from .base import FitError, FitResult, Fitter, chi2_of, fit_seed, prior_edge, significant
from .likelihood import INFLATION_NAME, LIKELIHOOD
from .scratch import scratch_dir
from .spec import ModelSpec, age_cap_myr, as_range

Z_SUN = 0.02           # BC03's solar metallicity (CIGALE's metallicity is the mass fraction Z)
R_V_CALZETTI = 4.05    # Calzetti et al. 2000
R_V_SMC = 2.74         # Gordon et al. 2003, SMC bar
C_ANGSTROM_S = 2.99792458e18
#: Broad-line width (km/s, Gaussian sigma) of the AGN component: FWHM ~ 4,700 km/s, typical of LRDs' broad
#: H-alpha (Matthee et al. 2024, arXiv:2306.05448; Greene et al. 2024, arXiv:2309.05714).
BROAD_LINE_SIGMA_KMS = 2000.0
#: Prior of the broad H-alpha rest equivalent width (A) when the AGN makes broad lines: LRDs reach ~800 A
#: (Labbe et al. 2024, arXiv:2412.04557); the prior spans well past it on both sides.
BROAD_HALPHA_EW_AA = (10.0, 3000.0)

#: CIGALE vocabulary -> bagpipes, one row per parameter; "—" marks what bagpipes cannot represent.
TRANSLATION: tuple[tuple[str, str, str], ...] = (
    ("sfhdelayed.age_main [Myr]", "delayed.age [Gyr]", "/1000"),
    ("sfhdelayed.tau_main [Myr]", "delayed.tau [Gyr]", "/1000"),
    ("sfhdelayed.f_burst, age_burst", "burst.massformed (free, log Msun), burst.age [Gyr]",
     "a burst of free mass, not a mass fraction"),
    ("(stellar mass)", "delayed.massformed", "free, log10 Msun 4-13"),
    ("bc03.metallicity (Z)", "delayed.metallicity [Z/Zsun]", "/0.02"),
    ("bc03.imf", "—", "bagpipes' BC03 grid has a Kroupa IMF"),
    ("sfh2exp, sfhdelayedbq, sfhperiodic, m2005", "—", "not representable"),
    ("nebular.logU", "nebular.logU", "same"),
    ("nebular.zgas (Z)", "nebular.metallicity [Z/Zsun]", "/0.02"),
    ("nebular.f_esc, ne, lines_width", "—", "not representable"),
    ("dustatt_modified_starburst.E_BV_lines, E_BV_factor", "dust.Av, dust.eta = 1",
     "Av = 4.05 x E_BV_factor x E_BV_lines: young and old stars get the same continuum attenuation, as in CIGALE; "
     "the nebular lines get it too (bagpipes attenuates lines with their young stars), not E_BV_lines: the "
     "line-to-continuum ratio E_BV_factor is not representable, and a change of it alone is not refitted"),
    ("dustatt_modified_starburst.powerlaw_slope, uv_bump_amplitude", "dust.type = Salim: delta, B", "same meaning"),
    ("dustatt_modified_CF00.Av_ISM, mu, slope_ISM", "dust.type = CF00: Av, eta = 1/mu, n = -slope_ISM",
     "slope_BC not separate"),
    ("dl2014.qpah, umin, gamma", "dust.qpah, umin, gamma", "Draine & Li 2007 dust emission"),
    ("skirtor2016 / fritz2006 fracAGN", "agn.f5100A (log-uniform)",
     "fracAGN as a share of the observed flux density at rest 5100 A, before polar dust; the disc slope is "
     "fixed at the Vanden Berk et al. 2001 composite's (alphalam = betalam = -1.56)"),
    ("skirtor2016 / fritz2006 broad_lines = free", "agn.hanorm (log-uniform), agn.sigma = 2000 km/s",
     "broad H-alpha and H-beta (1/2.86) of free strength: before the AGN's dust, a rest EW of 10-3000 A on the "
     "observed 5100 A continuum; off: hanorm = 0"),
    ("skirtor2016 / fritz2006 EBV (polar dust)", "agn_dust.type = SMC, Av = 2.74 x EBV", "same meaning"),
    ("skirtor2016 / fritz2006 torus (t, oa, i, R, Mcl, ...)", "—", "no torus dust emission in bagpipes"),
    ("bhstar (astrorag extension) temperature, f5500_share, balmer_break, halpha_ew",
     "astrorag's own component, added to bagpipes' model photometry in astrorag's likelihood",
     "a dust-free blackbody photosphere (T free) with a Balmer break of free strength and broad H-alpha/H-beta "
     "(decrement 10), scaled as a share of the observed flux density at rest 5500 A (fit/bhstar.py)"),
    ("xray, radio", "—", "not representable"),
    ("redshifting.redshift", "redshift", "fixed at the catalog's value"),
)

#: What the bagpipes translation of dustatt_modified_starburst cannot keep (listed as not represented).
LINE_ATTENUATION_NOTE = ("dustatt_modified_starburst.E_BV_factor: the nebular lines get the stellar continuum's "
                         "attenuation in bagpipes, not E_BV_lines alone")
#: Parameters whose meaning the translation does not keep: a change of them alone is not a model bagpipes can
#: test, so it is not refitted (and so never reaches rule learning).
MEANING_NOT_KEPT = {"E_BV_factor"}


def translation_markdown() -> str:
    """:data:`TRANSLATION` as the markdown table docs/GUIDE.md prints (a test keeps the two equal).

    >>> translation_markdown().splitlines()[0]
    '| CIGALE (the rules) | bagpipes | note |'
    """
    rows = ["| CIGALE (the rules) | bagpipes | note |", "| --- | --- | --- |"]
    rows += [f"| {cigale} | {pipes} | {note} |" for cigale, pipes, note in TRANSLATION]
    return "\n".join(rows)


#: Times whose prior edges are judged in log: a 50 Myr starburst is not "at the floor" of a 10 Myr-1 Gyr prior.
_LOG_EDGES = {"delayed:age", "delayed:tau", "burst:age", "agn:hanorm", "agn:f5100A", "bhstar:f5500_share",
              "bhstar:halpha_ew"}
_SUPPORTED = {"sfhdelayed", "bc03", "nebular", "dustatt_modified_starburst", "dustatt_modified_CF00", "dl2014",
              "skirtor2016", "fritz2006", "bhstar"}
_AGN_DEFAULT_NOTE = ("AGN torus dust emission (SKIRTOR/Fritz) is not representable in bagpipes: its agn component is "
                     "a disc power law; mid-IR torus constraints are lost")


def _scaled(value, factor: float):
    if isinstance(value, tuple):
        return tuple(sorted((value[0] * factor, value[1] * factor)))
    return value * factor


def _inverse(value):
    if isinstance(value, tuple):
        return (1.0 / value[1], 1.0 / value[0])
    return 1.0 / value


def to_bagpipes(spec: ModelSpec) -> tuple[dict, list[str]]:
    """Bagpipes fit instructions for ``spec`` and the parts it cannot represent (see :data:`TRANSLATION`).

    Examples
    --------
    >>> from astrorag.fit.spec import baseline
    >>> instructions, lost = to_bagpipes(baseline(5.43))
    >>> instructions["dust"]["type"], instructions["dust"]["Av"]
    ('Calzetti', (0.0, 0.891))
    >>> instructions["dust"]["eta"]    # young and old stars: one continuum attenuation, as in CIGALE
    1.0
    >>> [note.split(":")[0] for note in lost]
    ['bc03.imf = chabrier', 'dustatt_modified_starburst.E_BV_factor']
    """
    lost: list[str] = []
    out: dict = {"redshift": spec.redshift}
    for module in spec.modules:
        if module not in _SUPPORTED:
            lost.append(f"{module}: not representable in bagpipes")
    ssp = spec.module("bc03") if spec.has("bc03") else {}
    metallicity = _scaled(ssp.get("metallicity", Z_SUN), 1 / Z_SUN)
    if ssp.get("imf") not in (None, "kroupa"):
        lost.append(f"bc03.imf = {ssp.get('imf')}: bagpipes' BC03 grid uses a Kroupa IMF (masses differ by ~0.03 dex)")
    if not spec.has("sfhdelayed"):
        raise InputError("bagpipes needs a star-formation history: the model has no sfhdelayed module")
    sfh = spec.module("sfhdelayed")
    out["delayed"] = {"age": _scaled(sfh["age_main"], 1e-3), "tau": _scaled(sfh["tau_main"], 1e-3),
                      "massformed": (4.0, 13.0), "metallicity": metallicity}
    if "f_burst" in sfh:
        out["burst"] = {"age": _scaled(sfh.get("age_burst", (10.0, 50.0)), 1e-3), "massformed": (4.0, 13.0),
                        "metallicity": metallicity}
        lost.append("sfhdelayed.f_burst: bagpipes fits the burst's mass freely, not as a fraction of the total")
    if spec.has("nebular"):
        neb = spec.module("nebular")
        if neb.get("emission", True) not in (False, "False", 0):
            out["nebular"] = {"logU": neb.get("logU", -2.0)}
            if "zgas" in neb:
                out["nebular"]["metallicity"] = _scaled(neb["zgas"], 1 / Z_SUN)
        for name in ("f_esc", "ne", "lines_width"):
            if name in neb and neb[name] not in (0.0, 0):
                lost.append(f"nebular.{name}: not representable in bagpipes")
    if spec.has("dustatt_modified_starburst"):
        dust = spec.module("dustatt_modified_starburst")
        factor = dust.get("E_BV_factor", 0.44)
        if isinstance(factor, tuple):
            lost.append("E_BV_factor as a range: bagpipes gets its middle value")
            factor = sum(factor) / 2
        av = _scaled(dust.get("E_BV_lines", 0.0), R_V_CALZETTI * factor)
        av = tuple(round(v, 4) for v in av) if isinstance(av, tuple) else round(av, 4)
        slope, bump = dust.get("powerlaw_slope", 0.0), dust.get("uv_bump_amplitude", 0.0)
        salim = isinstance(slope, tuple) or slope != 0.0 or isinstance(bump, tuple) or bump != 0.0
        # eta = 1: CIGALE's modified starburst gives young and old stars one continuum E(B-V). bagpipes' eta
        # would also attenuate the lines apart, but only together with the young stars' continuum.
        out["dust"] = {"type": "Salim" if salim else "Calzetti", "Av": av, "eta": 1.0}
        lost.append(LINE_ATTENUATION_NOTE)
        if salim:
            out["dust"].update({"delta": slope, "B": bump})
    elif spec.has("dustatt_modified_CF00"):
        dust = spec.module("dustatt_modified_CF00")
        out["dust"] = {"type": "CF00", "Av": dust.get("Av_ISM", 0.5), "eta": _inverse(dust.get("mu", 0.44)),
                       "n": _scaled(dust.get("slope_ISM", -0.7), -1.0)}
        if dust.get("slope_BC", -1.3) != -1.3:
            lost.append("dustatt_modified_CF00.slope_BC: bagpipes' CF00 uses one slope")
    if spec.has("dl2014"):
        de = spec.module("dl2014")
        out.setdefault("dust", {"type": "Calzetti", "Av": 0.0})
        for name in ("qpah", "umin", "gamma"):
            if name in de:
                out["dust"][name] = de[name]
    agn = spec.member("agn")
    if agn:
        params = spec.module(agn)
        share = params.get("fracAGN", (0.0, 0.9))
        share = share if isinstance(share, tuple) else (share, share)
        # The disc has the Vanden Berk et al. 2001 composite's slope (f_nu ~ nu^-0.44, f_lambda ~ lambda^-1.56);
        # f5100A is set per source in fit() from fracAGN, read as a share of the light at rest 5100 A.
        out["agn"] = {"alphalam": -1.56, "betalam": -1.56, "f5100A": (max(share[0], 0.01), max(share[1], 0.02)),
                      "f5100A_prior": "log_10", "sigma": BROAD_LINE_SIGMA_KMS, "hanorm": 0.0}
        if params.get("broad_lines") == "free":
            # Broad H-alpha (and H-beta at 1/2.86) of free strength: a rest equivalent width on the 5100 A
            # continuum, log-uniform; scaled to the source in fit(). The width stays fixed: broad bands
            # cannot measure it.
            out["agn"].update(hanorm=BROAD_HALPHA_EW_AA, hanorm_prior="log_10")
        ebv = params.get("EBV", 0.0)
        if isinstance(ebv, tuple) or ebv > 0:
            out["agn_dust"] = {"type": "SMC", "Av": _scaled(ebv, R_V_SMC)}
        lost.append(_AGN_DEFAULT_NOTE)
        lost.append(f"{agn}.fracAGN: bagpipes has no AGN fraction; its disc flux at rest 5100 A (before polar dust) "
                    f"is given a log-uniform prior of {share[0]:g}-{share[1]:g} of the observed flux density there "
                    "(the lambda_fracAGN = 0.4/0.7 reading)")
    if spec.has("bhstar"):
        values = spec.module("bhstar")
        out["bhstar"] = {name: values.get(name, bhstar.PRIORS[name][:2]) for name in bhstar.NAMES}
    for name in ("xray", "radio"):
        if spec.has(name):
            lost.append(f"{name}: not representable in bagpipes")
    return out, lost


def _module_value(spec: ModelSpec, parameter: str):
    """The value of ``parameter`` in whichever module of ``spec`` holds it (None when none does)."""
    return next((dict(values)[parameter] for _, values in spec.params if parameter in dict(values)), None)


def _flambda_at_rest_5100(phot: Photometry) -> float:
    """Observed f_lambda (erg/s/cm2/A) in the detected band nearest rest 5100 A."""
    return _flambda_at_rest(phot, 0.51)


def _flambda_to_ujy(flam: np.ndarray, wave_aa: np.ndarray) -> np.ndarray:
    return flam * wave_aa ** 2 / C_ANGSTROM_S * 1e29


#: What to install when the fitter's packages are missing.
FITTER_MISSING = 'the bagpipes fitter is not installed: pip install -e ".[fit]" (bagpipes and nautilus-sampler)'


def import_bagpipes(missing: str = FITTER_MISSING):
    """bagpipes, imported without the banner it prints and the warnings it raises; ``missing`` is the
    FitError's message when it is not installed (each caller names the extra it needs)."""
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            import bagpipes as pipes
    except ImportError as exc:
        raise FitError(missing) from exc
    return pipes


class BagpipesFitter(Fitter):
    """Fits with bagpipes and nautilus; log-evidence from nautilus, model fluxes at the best-fit sample."""

    name = "bagpipes"
    gives_evidence = True
    #: the likelihood's version: fits kept in the cache under another are not read (fit/cache.py)
    version = "mismatch-2"
    #: nautilus trains this many neural networks per bound; one keeps small fits fast on a laptop
    n_networks = 1

    def not_representable(self, spec: ModelSpec) -> list[str]:
        return to_bagpipes(spec)[1]

    def translate(self, spec: ModelSpec) -> dict:
        return to_bagpipes(spec)[0]

    def unkept_change(self, old: ModelSpec, new: ModelSpec) -> str:
        for parameter in sorted(MEANING_NOT_KEPT):
            before, after = (_module_value(s, parameter) for s in (old, new))
            if before != after:
                return LINE_ATTENUATION_NOTE
        return ""

    def edge_symptoms(self, result: FitResult) -> list[str]:
        """Every sampled parameter with a prior edge that a rule can move, judged in the prior's own measure
        (log for ages and the broad-line strength, :func:`~astrorag.fit.base.prior_edge`).

        The sampled ranges are read from the fit itself (``result.priors``): the AGN's are scaled to the
        source there.
        """
        instructions = to_bagpipes(result.spec)[0]
        found = []

        def edge(name: str) -> str:
            if name not in result.priors:
                return ""
            lo, hi, scale = result.priors[name]
            return prior_edge(result.posterior.get(name), lo, hi, "log" if name in _LOG_EDGES else scale)

        if edge("dust:Av") == "upper":
            found.append("attenuation_at_limit")
        age = instructions["delayed"]["age"]
        near_cosmic = isinstance(age, tuple) and age[1] >= 0.9e-3 * age_cap_myr(result.spec.redshift)
        if near_cosmic and edge("delayed:age") == "upper":
            found.append("age_at_limit")
        if isinstance(age, tuple) and age[0] > 0.0011 and edge("delayed:age") == "lower":
            found.append("age_at_floor")   # a floor above 1 Myr that the posterior piles against
        if edge("burst:age") == "lower" and result.priors["burst:age"][0] > 0.0011:
            found.append("age_at_floor")
        if edge("agn_dust:Av") == "upper":
            found.append("agn_attenuation_at_limit")
        if edge("nebular:logU") == "upper":
            found.append("logu_at_limit")
        if edge("agn:hanorm") == "upper":
            found.append("broad_lines_at_limit")
        return list(dict.fromkeys(found))

    def fit(self, phot: Photometry, spec: ModelSpec, workdir: str | None = None,
            replicate: int = 0) -> FitResult:
        pipes = import_bagpipes()
        try:
            from nautilus import Sampler
        except ImportError as exc:
            raise FitError(FITTER_MISSING) from exc
        if phot.redshift > pipes.config.max_redshift:
            raise FitError(f"z = {phot.redshift} is above bagpipes' grid limit ({pipes.config.max_redshift})")
        instructions, lost = to_bagpipes(spec)
        bh_priors = instructions.pop("bhstar", None)
        scale = math.nan
        if "agn" in instructions:
            scale = _flambda_at_rest_5100(phot) * (1 + phot.redshift)
            if not scale > 0:
                raise FitError(f"source {phot.source_id}: no detected band near rest 5100 A to scale the AGN disc")
            lo, hi = instructions["agn"]["f5100A"]
            boost = 10 ** (0.4 * 1.2 * np.max(instructions.get("agn_dust", {}).get("Av", 0.0)))  # A_5100/A_V ~ 1.2 (SMC)
            instructions["agn"]["f5100A"] = (lo * scale, hi * scale * boost)
            if isinstance(instructions["agn"]["hanorm"], tuple):
                # Broad H-alpha flux as a rest-frame equivalent width on the observed 5100 A continuum.
                ew_lo, ew_hi = instructions["agn"]["hanorm"]
                instructions["agn"]["hanorm"] = (ew_lo * scale, ew_hi * scale)
        measured, errors, all_curves = phot.flux[0], phot.fit_err[0], phot.curves
        use = [i for i, (f, e) in enumerate(zip(measured, errors))
               if math.isfinite(f) and math.isfinite(e) and e > 0 and all_curves[i]]
        if phot.n_detected < 3 or len(use) < 4:
            raise FitError(f"source {phot.source_id}: {phot.n_detected} detected band(s) with curves; a fit needs "
                           "at least 3 detections (S/N > 2) among 4 usable bands")
        upper = phot.upper[0].astype(bool)
        flux = np.array([0.0 if upper[i] else measured[i] for i in use])
        err = np.array([measured[i] / 2 if upper[i] else errors[i] for i in use])
        curves = [all_curves[i] for i in use]
        component = None
        if bh_priors is not None:
            # The observed f_lambda (erg/s/cm2/A, bagpipes' unit) at rest 5500 A that the BH*'s share refers to.
            bh_scale = _flambda_at_rest(phot, 0.55)
            if not bh_scale > 0:
                raise FitError(f"source {phot.source_id}: no detected band near rest 5500 A to scale the BH* continuum")
            component = (bhstar.BlackHoleStar(phot.redshift, bhstar.load_bands(curves)), bh_scale,
                         {name: (*as_range(value), bhstar.PRIORS[name][2]) for name, value in bh_priors.items()})
        table = np.column_stack([flux, err])
        seed = fit_seed(self.options.seed, phot.source_id, spec, replicate)
        # CPU seconds of this fit (its process), so that the figure holds however loaded the machine is.
        start = time.process_time()
        here = os.getcwd()
        # bagpipes' own files (pipes/) are not read back: without a workdir they go to a folder removed after
        # the fit, and on Ctrl-C, SIGTERM or the parent's death (fit/scratch.py).
        scratch = contextlib.nullcontext(workdir) if workdir else scratch_dir()
        folder = scratch.__enter__()
        try:
            # bagpipes builds its model grids in the working directory it saw at import time: point it at ours.
            os.chdir(folder)
            pipes.utils.working_dir = folder
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                galaxy = pipes.galaxy(phot.source_id.replace("/", "_").replace(":", "_"), lambda _id: table,
                                      spectrum_exists=False, filt_list=curves, phot_units="mujy")
                model = pipes.fitting.fitted_model(galaxy, instructions)
                prior, like, n_extra = _with_inflation(model, component)
                # nautilus is run here, not through bagpipes' fit(), which builds the sampler without a seed.
                sampler = Sampler(prior, like, n_dim=model.ndim + n_extra, n_live=self.n_live,
                                  n_networks=self.n_networks, pool=None, seed=seed)
                converged = bool(sampler.run(verbose=False, n_eff=self.options.n_eff,
                                             discard_exploration=self.options.discard_exploration,
                                             n_like_max=self.options.max_likelihood_calls))
                points, log_w, log_l = sampler.posterior()
                log_z, n_eff = float(sampler.log_z), float(sampler.n_eff)
                # The model fluxes at the best fit of the model itself (the inflation does not change them).
                best = points[int(np.argmax(log_l))]
                model.lnlike(best[:model.ndim])
                flam = np.asarray(model.model_galaxy.photometry, dtype=float)
                if component is not None:
                    flam = flam + component[0].band_fluxes(best[model.ndim:model.ndim + 4], component[1])
                eff = np.asarray(galaxy.filter_set.eff_wavs, dtype=float)
        except Exception as exc:  # bagpipes and nautilus raise bare exceptions on bad input
            raise FitError(f"bagpipes failed on source {phot.source_id}: {type(exc).__name__}: {exc}") from exc
        finally:
            os.chdir(here)
            scratch.__exit__(None, None, None)
        model_ujy = np.full(len(phot.bands), np.nan)
        model_ujy[use] = _flambda_to_ujy(flam, eff)
        chi2, n = chi2_of(phot, model_ujy)
        weights = np.exp(log_w - np.max(log_w))
        posterior = {name: _quantiles(points[:, j], weights) for j, name in enumerate(model.params)}
        inflation = _quantiles(points[:, -1], weights)
        posterior[INFLATION_NAME] = inflation
        if component is not None:
            posterior.update(_bhstar_posterior(phot, component, points[:, model.ndim:model.ndim + 4], weights))
        priors = {name: (float(lo), float(hi), "log" if str(pdf).startswith("log") or name in _LOG_EDGES
                         else "linear") for name, (lo, hi), pdf in zip(model.params, model.limits, model.pdfs)}
        priors[INFLATION_NAME] = (*LIKELIHOOD.prior, "log")
        if component is not None:
            priors.update({f"bhstar:{name}": component[2][name] for name in bhstar.NAMES})
        if "agn:f5100A" in posterior and scale > 0:
            # The disc's share of the observed flux density at rest 5100 A: readable where 1e-19 cgs is not.
            posterior["agn:f5100A_share"] = {q: significant(v / scale) for q, v in posterior["agn:f5100A"].items()}
        if "agn:hanorm" in posterior and scale > 0:
            # Broad H-alpha before the AGN's own dust, over the observed continuum at rest 5100 A (A, rest frame).
            posterior["agn:broad_halpha_ew_intrinsic_aa"] = {q: significant(v / scale)
                                                             for q, v in posterior["agn:hanorm"].items()}
        # nautilus' error of ln Z is statistical only: 1 / sqrt(n_eff) (what bagpipes itself reports).
        err_lnz = 1.0 / math.sqrt(n_eff) if n_eff > 0 else None
        return FitResult(self.name, spec, model_ujy.tolist(), chi2, n, int(model.ndim), log_z,
                         time.process_time() - start, posterior, lost, log_evidence_err=err_lnz, priors=priors,
                         seed=seed, converged=converged, inflation=inflation)


def _with_inflation(model, component=None) -> tuple:
    """The sampler's prior transform, likelihood and extra dimensions: bagpipes' model parameters, then the BH*
    component's four when the model has one, then the error-inflation factor, under astrorag's likelihood
    (fit/likelihood.py) rather than bagpipes' own.

    bagpipes keeps the photometry and the model in its own units (erg/s/cm2/A); the BH* is computed in them.
    """
    observed, errors = model.galaxy.photometry[:, 1], model.galaxy.photometry[:, 2]
    n = model.ndim
    n_bh = 0 if component is None else len(bhstar.NAMES)

    def prior(cube):
        cube = np.asarray(cube, dtype=float)
        parts = [model.prior.transform(np.array(cube[:n]))]
        if component is not None:
            parts.append(bhstar.from_unit(cube[n:n + n_bh], component[2]))
        parts.append([LIKELIHOOD.inflation_from_unit(cube[-1])])
        return np.concatenate(parts)

    def like(x):
        bagpipes_ln_l = model.lnlike(x[:n])
        if bagpipes_ln_l <= -9e99:   # an unphysical history (older than the Universe) or a broken model
            return -9.99e99
        flux = np.asarray(model.model_galaxy.photometry, dtype=float)
        if component is not None:
            flux = flux + component[0].band_fluxes(x[n:n + n_bh], component[1])
        return LIKELIHOOD.log_likelihood(observed, errors, flux, x[-1])

    return prior, like, n_bh + 1


def _flambda_at_rest(phot: Photometry, rest_micron: float) -> float:
    """Observed f_lambda (erg/s/cm2/A) in the detected band nearest ``rest_micron``."""
    target = rest_micron * (1 + phot.redshift)
    best, flam = math.inf, math.nan
    for f, e, pivot in zip(phot.flux[0], phot.fit_err[0], phot.pivots):
        if math.isfinite(f) and math.isfinite(e) and f > 2 * e and abs(math.log(pivot / target)) < best:
            best, flam = abs(math.log(pivot / target)), f * 1e-29 * C_ANGSTROM_S / (pivot * 1e4) ** 2
    return flam


def _bhstar_posterior(phot: Photometry, component, samples: np.ndarray, weights: np.ndarray) -> dict:
    """The BH*'s posterior in readable units: T_eff (K), its share of the observed flux density at rest 5500 A
    and at rest 1500 A (the UV), the Balmer break's depth, the broad H-alpha EW and L_bol (L_sun)."""
    model_bh, scale, _ = component
    out = {f"bhstar:{name}": _quantiles(samples[:, i], weights) for i, name in enumerate(bhstar.NAMES)}
    keep = weights > weights.max() * 1e-4     # the samples that carry the posterior
    samples, w = samples[keep], weights[keep]
    uv_scale = _flambda_at_rest(phot, 0.15)
    if uv_scale > 0:
        uv = np.array([p[1] * model_bh.share_at(p, 1500.0) * scale / uv_scale for p in samples])
        out["bhstar:uv_share"] = _quantiles(uv, w)
    lum = np.array([model_bh.luminosity_lsun(p, scale) for p in samples])
    out["bhstar:log_L_bol_lsun"] = _quantiles(np.log10(lum), w)
    return out


def _quantiles(values: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """Weighted 2.5th, 16th, 50th, 84th and 97.5th percentiles (the 68 % and 95 % intervals), to 4 significant
    figures."""
    order = np.argsort(values)
    cdf = np.cumsum(weights[order])
    cdf /= cdf[-1]
    return {name: significant(float(np.interp(q, cdf, values[order])), 4)
            for name, q in (("p2.5", 0.025), ("p16", 0.16), ("p50", 0.5), ("p84", 0.84), ("p97.5", 0.975))}
