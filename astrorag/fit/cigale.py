"""The CIGALE fitter: writes a complete, commented ``pcigale.ini`` and data file; runs ``pcigale`` if installed.

The file follows CIGALE's own configuration format (configobj: top-level keys, ``[sed_modules_params]``
with one ``[[module]]`` section per module in order, ``[analysis_params]``); fluxes are in mJy with
``<band>_err`` columns, as CIGALE reads them. Every module and range carries the rule and papers behind it.
CIGALE explores a grid, so a range becomes a few grid values (log-spaced for times, linear otherwise).
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..sed.photometry import Photometry
from . import cigale_modules as cm
from .base import FitError, FitResult, Fitter, chi2_of
from .spec import ModelSpec, Value

#: CIGALE's integer codes for string options.
IMF_CODE = {"salpeter": "0", "chabrier": "1"}
#: Grid points per range: CIGALE's cost is the product over parameters.
GRID_POINTS = 5
_LOG_SPACED = {"tau_main", "age_main", "age_burst", "tau_burst", "metallicity", "zgas"}
#: Why each module is in the model (rule graph vocabulary and papers); printed above its section.
MODULE_WHY = {
    "sfhdelayed": "delayed SFH, SFR ~ t exp(-t/tau) (Boquien et al. 2019, arXiv:1811.03094)",
    "bc03": "Bruzual & Charlot 2003 stellar populations; imf 1 = Chabrier",
    "nebular": "nebular lines and continuum (Inoue 2011 templates in CIGALE)",
    "dustatt_modified_starburst": "Calzetti et al. 2000 attenuation, modified; continuum E(B-V) = E_BV_factor x E_BV_lines",
    "dustatt_modified_CF00": "Charlot & Fall 2000 two-component attenuation",
    "dl2014": "Draine et al. 2014 dust emission",
    "skirtor2016": "SKIRTOR clumpy torus + disc (Stalevski et al. 2016; Yang et al. 2020, arXiv:2001.08263)",
    "fritz2006": "Fritz et al. 2006 smooth torus + disc",
    "xray": "X-ray emission of the AGN and binaries (Yang et al. 2020, arXiv:2001.08263)",
    "redshifting": "redshift and IGM absorption (Meiksin 2006); the redshift comes from the data file",
}


def _number(v: float) -> str:
    return f"{float(v):.6g}"


def grid(parameter: str, value: Value, module: str | None = None) -> tuple[str, str]:
    """A spec value as CIGALE grid text for ``module``, snapped to what the module accepts, and a note of
    what was snapped or clipped ("" when nothing was).

    A range becomes up to ``GRID_POINTS`` values: the module's allowed values inside it where it has a list
    of them, else values spaced evenly (log-spaced for times and metallicities); integer parameters are
    rounded. A single value outside a module's list moves to the nearest allowed one.

    >>> grid("E_BV_lines", (0.0, 0.5), "dustatt_modified_starburst")
    ('0, 0.125, 0.25, 0.375, 0.5', '')
    >>> grid("metallicity", (0.002, 0.03), "bc03")
    ('0.004, 0.008, 0.02', 'bc03.metallicity 0.002-0.03 snapped to its grid values 0.004, 0.008, 0.02')
    >>> grid("age_main", (10.0, 1000.0), "sfhdelayed")
    ('10, 32, 100, 316, 1000', '')
    >>> grid("imf", "chabrier", "bc03")
    ('1', '')
    """
    kind = cm.MODULES.get(module or "", ("", {}))[1].get(parameter, ("", ""))[0]
    rules = cm.constraints(kind)
    if isinstance(value, str):
        return (IMF_CODE.get(value, value) if parameter == "imf" else value), ""
    if isinstance(value, bool):
        return str(value), ""
    options = sorted(rules.get("options", []))
    lo_ok, hi_ok = rules.get("minvalue", -math.inf), rules.get("maxvalue", math.inf)
    asked = value if isinstance(value, tuple) else (float(value),)
    if isinstance(value, tuple):
        lo, hi = value
        if options:
            values = [o for o in options if lo - 1e-9 <= o <= hi + 1e-9] or \
                [min(options, key=lambda o: _distance(parameter, o, (lo + hi) / 2))]
            if len(values) > GRID_POINTS:
                picks = np.linspace(0, len(values) - 1, GRID_POINTS).round().astype(int)
                values = [values[i] for i in sorted(set(picks))]
        elif parameter in _LOG_SPACED and lo > 0:
            values = list(np.geomspace(lo, hi, GRID_POINTS))
        else:
            values = list(np.linspace(lo, hi, GRID_POINTS))
    else:
        values = [min(options, key=lambda o: _distance(parameter, o, float(value)))] if options else [float(value)]
    if rules.get("dtype") == "int":
        values = [float(round(v)) for v in values]
    values = sorted({round(min(max(v, lo_ok), hi_ok), 6) for v in values})
    text = ", ".join(_number(v) for v in values)
    # A note when a value the spec asked for (a range's ends, or the single value) is not written as asked.
    wanted = [float(round(a)) if rules.get("dtype") == "int" else a for a in asked]
    moved = not all(any(abs(a - v) <= 1e-6 * max(1.0, abs(a)) for v in values) for a in wanted)
    if not moved:
        return text, ""
    shown = f"{value[0]:g}-{value[1]:g}" if isinstance(value, tuple) else f"{value:g}"
    return text, f"{module}.{parameter} {shown} snapped to its grid values {text}"


def _distance(parameter: str, a: float, b: float) -> float:
    if parameter in _LOG_SPACED and a > 0 and b > 0:
        return abs(math.log(a / b))
    return abs(a - b)


def _line_bands(phot: Photometry) -> set[str]:
    """Bands whose half-maximum passband holds H-alpha, H-beta or [OIII] at the source's redshift."""
    from ..errors import AstroRagError
    from ..sed.diagnostics import holds_strong_line
    from ..sed.filters import get_filter

    held = set()
    for band in (b.short for b in phot.bands):
        try:
            name = get_filter(band).name
        except AstroRagError:   # a band astrorag does not know holds no line it can place
            continue
        if holds_strong_line(name, phot.redshift)[0]:
            held.add(band)
    return held


def module_values(spec: ModelSpec, module: str) -> tuple[dict[str, str], list[str]]:
    """Every parameter CIGALE's ``module`` takes, as grid text: the spec's values snapped to the module's grid,
    CIGALE's defaults for the rest; and the notes of what was snapped or translated."""
    given = dict(spec.module(module)) if spec.has(module) else {}
    notes = []
    if module == "fritz2006" and "i" in given:
        # SKIRTOR's i is measured from the AGN axis, Fritz's psy from the equator (psy 90 = type 1).
        i = given.pop("i")
        given["psy"] = (90.0 - i[1], 90.0 - i[0]) if isinstance(i, tuple) else 90.0 - i
        notes.append("fritz2006.psy = 90 - i (SKIRTOR's inclination read as Fritz's angle from the equator)")
    if "broad_lines" in given:
        given.pop("broad_lines")
    values = {}
    for parameter, (_, default) in cm.MODULES[module][1].items():
        if parameter in given:
            values[parameter], note = grid(parameter, given.pop(parameter), module)
            if note:
                notes.append(note)
        else:
            values[parameter] = default
    for parameter in given:
        notes.append(f"{module}.{parameter}: not a parameter of CIGALE's {module}; left out")
    return values, notes


def unwritable_modules(spec: ModelSpec) -> list[str]:
    """The modules of ``spec`` that the vocabulary accepts but this writer does not write, each with why.

    The writer writes a module only with every parameter CIGALE declares for it (the ``.spec`` must validate),
    and those declarations are transcribed module by module (fit/cigale_modules.py).

    >>> from astrorag.fit.spec import baseline
    >>> unwritable_modules(baseline(5.0).with_module("dale2014", {}))
    ["dale2014: its parameter declarations are not transcribed in astrorag's CIGALE writer (use dl2014)"]
    """
    alternative = {"dale2014": "dl2014", "dl2007": "dl2014", "casey2012": "dl2014", "themis": "dl2014",
                   "sfh2exp": "sfhdelayed", "sfhdelayedbq": "sfhdelayed", "sfhperiodic": "sfhdelayed",
                   "m2005": "bc03"}
    from ..graph.vocabulary import EXTENSION_MODULES

    return [f"{m}: CIGALE has no such module ({EXTENSION_MODULES[m]}, an astrorag extension fitted with bagpipes)"
            if m in EXTENSION_MODULES else
            f"{m}: its parameter declarations are not transcribed in astrorag's CIGALE writer"
            + (f" (use {alternative[m]})" if m in alternative else "")
            for m in spec.modules if m not in cm.MODULES]


def write_ini(spec: ModelSpec, phot: Photometry, folder: str | Path, rationale: dict[str, str] | None = None,
              cores: int = 1) -> tuple[Path, Path]:
    """Write ``pcigale.ini``, its ``pcigale.ini.spec`` and ``data.txt`` for one source; return the .ini and data.

    The files are what CIGALE's ``pcigale init`` and ``genconf`` would make for this model: every parameter of
    every module with its validation type in the spec, values snapped to each module's grid (each snap said in
    a comment), modules in CIGALE's order, ``_err`` columns listed in ``bands``. ``rationale`` maps a module or
    ``module.parameter`` to the rule and papers that set it; each appears as a comment above what it explains.
    When the AGN makes broad lines (``broad_lines = free``), which no CIGALE module can, the bands holding
    H-alpha, H-beta or [OIII] are left out of the fit instead.
    """
    unwritten = unwritable_modules(spec)
    if unwritten:
        raise InputError("the CIGALE writer cannot write " + "; ".join(unwritten))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rationale = rationale or {}
    shorts = [b.short for b in phot.bands]
    names = {b: _cigale_band(b, c) for b, c in zip(shorts, phot.curves) if c}
    agn = spec.member("agn")
    masked = _line_bands(phot) if agn and spec.module(agn).get("broad_lines") == "free" else set()
    fitted = [b for b in names if b not in masked]
    data = folder / "data.txt"
    header = ["id", "redshift", *[x for b in names for x in (names[b], f"{names[b]}_err")]]
    row = [phot.source_id.replace(" ", "_"), f"{phot.redshift:.4f}"]
    for b in names:
        i = shorts.index(b)
        f, e = float(phot.flux[0, i]), float(phot.fit_err[0, i])
        ok = math.isfinite(f) and math.isfinite(e) and e > 0
        # CIGALE reads mJy; a missing flux is NaN; an upper limit has a negative error.
        upper = bool(phot.upper[0, i])
        row += [f"{f / 1000:.6g}" if ok else "nan", (f"{-e / 1000:.6g}" if upper else f"{e / 1000:.6g}") if ok else "nan"]
    data.write_text("# " + " ".join(header) + "\n" + " ".join(row) + "\n")
    modules = cm.in_cigale_order([*spec.modules, "redshifting"])
    bands = ", ".join(x for b in fitted for x in (names[b], f"{names[b]}_err"))
    lines = [
        "# pcigale.ini written by astrorag for source " + phot.source_id + " (with pcigale.ini.spec beside it)",
        "# Model: " + spec.describe(),
        "# Run with: pcigale run   (then pcigale-plots sed). Check the band names against `pcigale-filters list`.",
        "",
        "# File containing the input data: id, redshift, fluxes in mJy and <band>_err (negative: an upper limit).",
        f"data_file = {data.name}",
        "",
        "# Optional file with the list of physical parameters (none: the grid below is used).",
        "parameters_file = ",
        "",
        "# Modules, in CIGALE's order: SFH, SSP, nebular, attenuation, dust emission, AGN, X-ray, redshifting.",
        f"sed_modules = {', '.join(modules)}",
        "",
        "# Method used for statistical analysis.",
        "analysis_method = pdf_analysis",
        "",
        "# Number of CPU cores available.",
        f"cores = {cores}",
        "",
        "# Bands to fit, each with its _err column so that CIGALE uses the catalog's errors.",
    ]
    if masked:
        lines.append("# Left out: " + ", ".join(names[b] for b in names if b in masked) + " hold H-alpha, H-beta or "
                     "[OIII] at this redshift, and the model's AGN needs broad lines no CIGALE module makes "
                     "(astrorag's broad_lines = free).")
    lines += [
        f"bands = {bands}",
        "",
        "# Properties to fit (none: photometry only).",
        "properties = ",
        "",
        "# Relative error added in quadrature: 0, since astrorag's 5 % error floor is already in the _err columns.",
        "additionalerror = 0.0",
        "",
        "# Configuration of the SED creation modules.",
        "[sed_modules_params]",
    ]
    spec_lines = [f"{key} = {kind}" for key, kind in cm.TOP_LEVEL.items()] + ["[sed_modules_params]"]
    for module in modules:
        values, notes = module_values(spec, module)
        lines += ["", f"  # {MODULE_WHY.get(module, module)}"]
        if module in rationale:
            lines.append(f"  # astrorag: {rationale[module]}")
        lines += [f"  # astrorag: {note}" for note in notes]
        lines.append(f"  [[{module}]]")
        spec_lines.append(f"  [[{module}]]")
        for parameter, text in values.items():
            why = rationale.get(f"{module}.{parameter}")
            if why:
                lines.append(f"    # astrorag: {why}")
            lines.append(f"    {parameter} = {text}")
            spec_lines.append(f"    {parameter} = {cm.MODULES[module][1][parameter][0]}")
    variables = ["stellar.m_star", "sfh.sfr", "attenuation.E_BV_lines" if spec.has("dustatt_modified_starburst")
                 else "attenuation.Av_ISM"] + (["agn.fracAGN"] if agn else [])
    analysis = {"variables": ", ".join(variables), "bands": ", ".join(names[b] for b in fitted),
                "save_best_sed": "True", "save_chi2": "none", "lim_flag": "noscaling", "mock_flag": "False",
                "redshift_decimals": "2", "blocks": "1"}
    lines += ["", "# Configuration of the statistical analysis method.", "[analysis_params]"]
    lines += [f"  {key} = {value}" for key, value in analysis.items()] + [""]
    spec_lines += ["[analysis_params]"] + [f"  {key} = {kind}" for key, kind in cm.PDF_ANALYSIS.items()] + [""]
    ini = folder / "pcigale.ini"
    ini.write_text("\n".join(lines))
    (folder / "pcigale.ini.spec").write_text("\n".join(spec_lines))
    return ini, data


def _cigale_band(short: str, curve: str) -> str:
    """CIGALE's filter name: the curve file's first comment line when it has one (NIRCam/MIRI files here are
    CIGALE's own), else astrorag's canonical name, which follows CIGALE's telescope.instrument.band pattern
    (``hst.wfc3.F160W``)."""
    from ..errors import AstroRagError
    from ..sed.filters import get_filter

    try:
        first = Path(curve).read_text().splitlines()[0]
    except (OSError, IndexError):
        first = ""
    if first.startswith("#"):
        return first[1:].strip()
    try:
        return get_filter(short).name
    except AstroRagError:
        return short


class CigaleFitter(Fitter):
    """Writes the CIGALE files; runs ``pcigale`` when it is on PATH and reads ``out/results.fits``."""

    name = "cigale"
    gives_evidence = False

    def not_representable(self, spec: ModelSpec) -> list[str]:
        return unwritable_modules(spec)

    def translate(self, spec: ModelSpec) -> ModelSpec:
        """The model as the writer writes it: without the modules it cannot write (listed as not represented)."""
        for module in spec.modules:
            if module not in cm.MODULES:
                spec = spec.without(module)
        return spec

    def fit(self, phot: Photometry, spec: ModelSpec, workdir: str | None = None,
            replicate: int = 0) -> FitResult:
        folder = Path(workdir or Path.cwd() / f"cigale-{phot.source_id.replace('/', '_')}")
        unwritten = unwritable_modules(spec)
        if unwritten:
            raise FitError("cannot fit with cigale: " + "; ".join(unwritten))
        _ini, _ = write_ini(spec, phot, folder)
        pcigale = shutil.which("pcigale")
        if pcigale is None:
            raise FitError(f"pcigale is not installed here: the files are in {folder} (pcigale.ini, data.txt); "
                           "install CIGALE (https://cigale.lam.fr) and run `pcigale run` there")
        start = time.perf_counter()
        run = subprocess.run([pcigale, "run"], cwd=folder, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise FitError(f"pcigale failed in {folder}: {run.stderr.strip()[-500:]}")
        from astropy.table import Table

        results = Table.read(folder / "out" / "results.fits")
        model = []
        for b in (band.short for band in phot.bands):
            col = next((c for c in results.colnames if c.lower() == f"best.{b}" or c.lower().endswith("." + b)), None)
            model.append(float(results[col][0]) * 1000 if col else math.nan)  # mJy -> uJy
        chi2, n = chi2_of(phot, np.asarray(model))
        n_free = sum(isinstance(v, tuple) for _, values in spec.params for _, v in values) + 1
        if "best.reduced_chi_square" not in results.colnames:
            raise InputError(f"{folder}/out/results.fits has no best.reduced_chi_square: not a CIGALE output")
        return FitResult(self.name, spec, model, chi2, n, n_free, None, time.perf_counter() - start)
