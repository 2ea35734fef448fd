"""The fixed vocabulary of the rule graph: CIGALE modules and parameters, symptoms, interpretations.

Names follow CIGALE (Boquien et al. 2019, arXiv:1811.03094; Yang et al. 2020, arXiv:2001.08263).
Anything an extractor proposes must map onto these names, or it is rejected: small models
invent parameter names otherwise.
"""

from __future__ import annotations

import difflib
import re

from ..errors import InputError
from .regions import REGIONS

#: CIGALE modules and their real parameter names.
MODULES: dict[str, tuple[str, ...]] = {
    "sfh2exp": ("tau_main", "tau_burst", "f_burst", "age", "burst_age", "sfr_0"),
    "sfhdelayed": ("tau_main", "age_main", "tau_burst", "age_burst", "f_burst", "sfr_A"),
    "sfhdelayedbq": ("tau_main", "age_main", "age_bq", "r_sfr", "sfr_A"),
    "sfhperiodic": ("type_bursts", "delta_bursts", "tau_bursts", "age", "sfr_A"),
    "bc03": ("imf", "metallicity", "separation_age"),
    "m2005": ("imf", "metallicity", "separation_age"),
    "nebular": ("logU", "zgas", "ne", "f_esc", "f_dust", "lines_width", "emission"),
    "dustatt_modified_starburst": ("E_BV_lines", "E_BV_factor", "uv_bump_wavelength", "uv_bump_width",
                                   "uv_bump_amplitude", "powerlaw_slope", "Ext_law_emission_lines",
                                   "Rv_emission_lines"),
    "dustatt_modified_CF00": ("Av_ISM", "mu", "slope_ISM", "slope_BC"),
    "dl2014": ("qpah", "umin", "alpha", "gamma"),
    "dl2007": ("qpah", "umin", "umax", "gamma"),
    "dale2014": ("fracAGN", "alpha"),
    "casey2012": ("temperature", "beta", "alpha"),
    "themis": ("qhac", "umin", "alpha", "gamma"),
    "skirtor2016": ("t", "pl", "q", "oa", "R", "Mcl", "i", "disk_type", "delta", "fracAGN", "lambda_fracAGN",
                    "law", "EBV", "temperature", "emissivity"),
    "fritz2006": ("r_ratio", "tau", "beta", "gamma", "opening_angle", "psy", "disk_type", "delta", "fracAGN",
                  "lambda_fracAGN", "law", "EBV", "temperature", "emissivity"),
    "xray": ("gam", "alpha_ox", "max_dev_alpha_ox", "det_lmxb", "det_hmxb"),
    "radio": ("qir_sf", "alpha_sf", "R_agn", "alpha_agn"),
    "redshifting": ("redshift",),
    # astrorag's extension, not a CIGALE module (EXTENSION_MODULES): a black-hole-star continuum (fit/bhstar.py)
    "bhstar": ("temperature", "f5500_share", "balmer_break", "halpha_ew"),
}
#: Modules astrorag's own fitters add to the model that CIGALE has no counterpart for (the CIGALE writer
#: refuses them with the reason).
EXTENSION_MODULES = {"bhstar": "a black-hole-star continuum: dense, dust-free gas around an accreting black hole "
                               "(a blackbody photosphere with a gas Balmer break and broad Balmer lines)"}

#: Parameter -> what it means, and the words people use for it.
PARAMETER_ALIASES: dict[str, tuple[str, ...]] = {
    "E_BV_lines": ("dust attenuation", "attenuation", "reddening", "colour excess", "color excess", "e(b-v)",
                   "ebv of the nebular lines", "e_bv"),
    "E_BV_factor": ("stellar to nebular attenuation ratio", "continuum reddening factor", "e_bv_factor"),
    "powerlaw_slope": ("attenuation curve slope", "slope of the attenuation curve", "steeper attenuation",
                       "attenuation law slope", "delta"),
    "uv_bump_amplitude": ("uv bump", "2175 bump", "2175 a bump", "bump amplitude"),
    "Av_ISM": ("v-band attenuation", "av", "a_v"),
    "mu": ("ism to birth cloud ratio",),
    "slope_ISM": ("ism attenuation slope",),
    "slope_BC": ("birth cloud attenuation slope",),
    "tau_main": ("e-folding time", "star formation timescale", "tau"),
    "age_main": ("stellar age", "age of the main population", "population age"),
    "age": ("age",),
    "f_burst": ("burst fraction", "burst mass fraction"),
    "age_burst": ("burst age",),
    "tau_burst": ("burst timescale",),
    "metallicity": ("stellar metallicity", "metallicity"),
    "imf": ("initial mass function", "imf"),
    "logU": ("ionisation parameter", "ionization parameter", "log u"),
    "zgas": ("gas metallicity", "gas-phase metallicity"),
    "f_esc": ("escape fraction", "lyman continuum escape"),
    "lines_width": ("line width", "broad lines", "line broadening"),
    "emission": ("nebular emission", "emission lines"),
    "fracAGN": ("agn fraction", "agn contribution", "fraction of agn", "fracagn"),
    "EBV": ("polar dust", "agn extinction", "agn reddening", "polar-dust reddening"),
    "i": ("inclination", "viewing angle"),
    "t": ("torus optical depth", "9.7 micron optical depth"),
    "oa": ("opening angle", "torus opening angle"),
    "disk_type": ("accretion disc sed", "accretion disk sed", "disc type", "disk type"),
    "delta": ("disc slope",),
    "law": ("polar dust extinction law",),
    "temperature": ("dust temperature", "hot dust temperature"),
    "qpah": ("pah fraction", "pah", "qpah"),
    "umin": ("radiation field", "minimum radiation field", "umin"),
    "alpha": ("radiation field slope",),
    "gamma": ("photodissociation fraction",),
    "redshift": ("redshift", "photometric redshift", "photo-z"),
    "alpha_ox": ("alpha_ox", "x-ray to optical slope"),
    "f5500_share": ("black hole star share", "bh* share", "share of the optical light from the black hole star"),
    "balmer_break": ("gas balmer break", "balmer break strength", "balmer absorption strength"),
    "halpha_ew": ("broad h-alpha equivalent width",),
}

#: Rest-frame regions (microns) used by symptoms and diagnostics.
REGION_WORDS: dict[str, tuple[str, ...]] = {
    "uv": ("uv", "ultraviolet", "ultra-violet", "rest-uv", "rest uv", "blue side"),
    "optical": ("optical", "rest-optical", "rest optical", "visible"),
    "nir": ("near-ir", "near-infrared", "near infrared", "nir", "near ir"),
    "mir": ("mid-ir", "mid-infrared", "mid infrared", "mir", "miri", "mid ir", "hot dust"),
    "fir": ("far-ir", "far-infrared", "far infrared", "fir", "submm", "sub-mm", "alma", "herschel"),
}

#: Symptom -> (description, aliases). Residual symptoms are <region>_<over|under>estimated.
SYMPTOMS: dict[str, tuple[str, tuple[str, ...]]] = {
    **{f"{r}_{d}estimated": (f"the fit {d}estimates the rest-frame {r.upper() if r in ('uv', 'nir', 'mir', 'fir') else r}",
                             ()) for r in REGIONS for d in ("over", "under")},
    "v_shaped_sed": ("blue rest-UV and red rest-optical continuum: a V-shaped SED",
                     ("v-shape", "v-shaped", "v shape", "v shaped")),
    "red_optical_continuum": ("red rest-optical continuum (beta_opt > 0)", ("red optical", "red continuum",
                                                                            "red rest-optical")),
    "blue_uv_slope": ("blue rest-UV slope (beta_UV < -2)", ("blue uv", "blue slope")),
    "red_uv_slope": ("red rest-UV slope (beta_UV > -1)", ("red uv slope", "red uv")),
    "strong_balmer_break": ("strong Balmer break", ("balmer break", "strong break", "balmer jump")),
    "broad_balmer_lines": ("broad H-alpha / H-beta emission", ("broad lines", "broad h-alpha", "broad halpha",
                                                               "broad-line", "broad line")),
    "emission_line_excess": ("photometric excess in bands holding strong lines",
                             ("emission line excess", "line contamination", "medium band excess", "[oiii]",
                              "h-alpha excess")),
    "emission_line_deficit": ("bands holding strong lines overpredicted beyond their line-free neighbours: the "
                              "model's lines are too strong for its continuum",
                              ("line deficit", "weak lines", "weak h-alpha", "lines overpredicted",
                               "low equivalent width")),
    "compact_source": ("unresolved, point-like morphology", ("compact", "point source", "point-like", "unresolved")),
    "flat_mid_ir": ("flat or falling mid-infrared SED (no hot-dust rise)", ("flat mid-ir", "flat miri",
                                                                            "no hot dust", "faint in miri")),
    "stellar_mass_too_high": ("stellar mass implausibly high for the redshift",
                              ("too massive", "stellar mass too high", "mass too high", "overly massive")),
    "age_at_limit": ("best-fit age at the age of the Universe", ("age limit", "age of the universe")),
    "age_at_floor": ("the fit's stellar age piles against the youngest age its prior allows",
                     ("age at the floor", "age at the lower limit", "youngest age", "age pegged low")),
    "attenuation_at_limit": ("the fit's continuum attenuation piles against the top of its prior range",
                             ("attenuation at the limit", "av at the prior edge", "e(b-v) at the upper limit",
                              "attenuation pegged")),
    "agn_attenuation_at_limit": ("the fit's AGN (polar-dust) attenuation piles against the top of its prior range",
                                 ("agn dust at the limit", "polar dust at the limit", "agn av at the prior edge",
                                  "agn reddening pegged")),
    "logu_at_limit": ("the fit's ionisation parameter piles against the top of its prior range (log U -1): the "
                      "lines are stronger than stars photoionise",
                      ("log u at the limit", "ionisation parameter at the limit", "ionization parameter pegged")),
    "broad_lines_at_limit": ("the fit's broad H-alpha strength piles against the top of its prior range",
                             ("broad lines at the limit", "broad-line strength pegged", "hanorm at the limit")),
    "xray_weak": ("X-ray weak for its AGN luminosity", ("x-ray weak", "no x-ray", "xray weak")),
    "uv_bump_residual": ("residual around rest 2175 A", ("2175", "uv bump residual")),
    "high_chi2": ("reduced chi-square high across the SED", ("bad fit", "high chi", "poor fit", "chi-square",
                                                             "chi2")),
    "photoz_outlier": ("photometric redshift solution uncertain or degenerate",
                       ("redshift degeneracy", "wrong redshift", "photo-z outlier", "balmer/lyman confusion")),
    "brown_dwarf_colours": ("point source with colours of a cool brown dwarf",
                            ("brown dwarf", "brown dwarf contamination")),
    "sed_turnover_balmer_limit": ("V-shape turns over near the Balmer limit (rest 0.3645 micron)",
                                  ("turnover", "balmer limit", "inflection")),
}

INTERPRETATIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "dust_reddened_agn": ("a dust-reddened AGN dominates the rest-optical", ("reddened agn", "obscured agn",
                                                                              "dusty agn", "red agn")),
    "compact_dusty_starburst": ("a compact, dusty starburst", ("dusty starburst", "compact starburst",
                                                               "dusty star-forming")),
    "dense_gas_balmer_break": ("a Balmer break from dense gas around an accreting black hole",
                               ("dense gas", "black hole star", "gas envelope", "dense-gas", "envelope")),
    "evolved_massive_galaxy": ("an evolved, massive stellar population", ("evolved population", "old stars",
                                                                          "massive galaxy")),
    "agn_scattered_light": ("scattered AGN light or a host in the rest-UV", ("scattered light", "host galaxy uv")),
    "brown_dwarf_interloper": ("a Milky Way brown dwarf, not a galaxy", ("brown dwarf",)),
    "strong_line_emitter": ("strong nebular emission lines boost broad-band fluxes", ("line emitter",
                                                                                      "strong lines")),
}

DIRECTIONS = ("increase", "decrease", "widen", "narrow", "add_module", "switch_module", "remove_module", "fix",
              "free", "check")


#: Parameters astrorag's fitters understand beyond CIGALE's own, with the modules they belong to. CIGALE has no
#: AGN broad lines: ``broad_lines = "free"`` gives bagpipes' AGN component broad H-alpha/H-beta of free strength,
#: and makes the CIGALE writer leave the bands holding those lines out of the fit instead.
EXTENSIONS: dict[str, tuple[str, ...]] = {"broad_lines": ("skirtor2016", "fritz2006")}


def parameter_names() -> set[str]:
    return {p for params in MODULES.values() for p in params} | set(EXTENSIONS)


def modules_of(parameter: str) -> list[str]:
    return sorted({m for m, params in MODULES.items() if parameter in params} | set(EXTENSIONS.get(parameter, ())))


def _suggest(name: str, valid) -> str:
    close = difflib.get_close_matches(name, sorted(valid), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def validate_parameter(name: str, module: str | None = None) -> str:
    """Return the canonical parameter name, resolving aliases; raise InputError with close names otherwise.

    >>> validate_parameter("AGN fraction")
    'fracAGN'
    >>> validate_parameter("E_BV_lines", "dustatt_modified_starburst")
    'E_BV_lines'
    """
    valid = parameter_names()
    if name not in valid:
        lowered = name.strip().lower()
        hits = [p for p, aliases in PARAMETER_ALIASES.items() if lowered == p.lower() or lowered in aliases]
        if len(hits) != 1:
            raise InputError(f"unknown CIGALE parameter {name!r}{_suggest(name, valid)}")
        name = hits[0]
    if module is not None:
        validate_module(module)
        if name not in MODULES[module] and module not in EXTENSIONS.get(name, ()):
            raise InputError(f"parameter {name!r} is not in module {module!r}; it is in "
                             f"{', '.join(modules_of(name)) or 'no module'}")
    return name


def validate_module(name: str) -> str:
    if name not in MODULES:
        raise InputError(f"unknown CIGALE module {name!r}{_suggest(name, MODULES)}")
    return name


def validate_symptom(name: str) -> str:
    if name not in SYMPTOMS:
        lowered = name.strip().lower()
        hits = [s for s, (_, aliases) in SYMPTOMS.items() if lowered in aliases]
        if len(hits) != 1:
            raise InputError(f"unknown symptom {name!r}{_suggest(name, SYMPTOMS)}")
        name = hits[0]
    return name


def validate_interpretation(name: str) -> str:
    if name not in INTERPRETATIONS:
        raise InputError(f"unknown interpretation {name!r}{_suggest(name, INTERPRETATIONS)}")
    return name


_OVER = re.compile(r"\b(overestimat\w*|over-estimat\w*|overpredict\w*|over-predict\w*|too bright|too high|"
                   r"too much|overshoot\w*|exceed\w*|above the data)\b")
_UNDER = re.compile(r"\b(underestimat\w*|under-estimat\w*|underpredict\w*|under-predict\w*|too faint|too low|"
                    r"too little|miss(es|ing)?|fall(s)? short|deficit|below the data|undershoot\w*)\b")


def _has_word(text: str, phrase: str) -> bool:
    return re.search(r"(?<![\w-])" + re.escape(phrase) + r"(?![\w-])", text) is not None


def link_text(text: str) -> dict[str, set[str]]:
    """Find vocabulary nodes a piece of text talks about: symptoms, parameters, modules, interpretations.

    Residual symptoms come from a direction word (overestimates, too faint, ...) and region words
    (UV, optical, mid-IR, ...) in the same clause, so "overestimates the UV and optical bands"
    links both ``uv_overestimated`` and ``optical_overestimated``.

    >>> sorted(link_text("My CIGALE fit overestimates the UV and optical bands")["symptoms"])
    ['optical_overestimated', 'uv_overestimated']
    >>> sorted(link_text("why would E_BV_lines need to be higher for a little red dot?")["parameters"])
    ['E_BV_lines']
    """
    lowered = text.lower()
    found: dict[str, set[str]] = {"symptoms": set(), "parameters": set(), "modules": set(), "interpretations": set()}
    for clause in re.split(r"[.;!?]|\bbut\b|\bwhile\b|\bwhereas\b", lowered):
        over, under = _OVER.search(clause), _UNDER.search(clause)
        if not (over or under):
            continue
        regions = [r for r, words in REGION_WORDS.items() if any(_has_word(clause, w) for w in words)]
        direction = "over" if over and (not under or over.start() < under.start()) else "under"
        for region in regions:
            found["symptoms"].add(f"{region}_{direction}estimated")
    for name, (_, aliases) in SYMPTOMS.items():
        if any(_has_word(lowered, a) for a in aliases):
            found["symptoms"].add(name)
    if "little red dot" in lowered or re.search(r"\blrds?\b", lowered):
        found["symptoms"].update({"v_shaped_sed", "compact_source"})
    for param in parameter_names():
        if re.search(r"(?<![\w])" + re.escape(param) + r"(?![\w])", text) and (len(param) > 2 or param in ("mu",)):
            found["parameters"].add(param)
    for param, aliases in PARAMETER_ALIASES.items():
        if any(len(a) > 3 and _has_word(lowered, a) for a in aliases):
            found["parameters"].add(param)
    for module in MODULES:
        if _has_word(lowered, module.lower()):
            found["modules"].add(module)
    for name, (_, aliases) in INTERPRETATIONS.items():
        if any(_has_word(lowered, a) for a in aliases):
            found["interpretations"].add(name)
    return found
