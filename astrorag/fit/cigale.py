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
from .base import FitError, FitResult, Fitter, SourcePhotometry, chi2_of
from .spec import ModelSpec, Value

#: Parameters every module must state in pcigale.ini, with CIGALE's defaults (the spec gives the rest).
MODULE_FIXED: dict[str, dict[str, str]] = {
    "sfhdelayed": {"tau_burst": "50.0", "age_burst": "20", "f_burst": "0.0", "sfr_A": "1.0", "normalise": "True"},
    "bc03": {"separation_age": "10"},
    "nebular": {"ne": "100", "f_esc": "0.0", "f_dust": "0.0", "lines_width": "300.0", "emission": "True"},
    "dustatt_modified_starburst": {"uv_bump_wavelength": "217.5", "uv_bump_width": "35.0",
                                   "uv_bump_amplitude": "0.0", "Ext_law_emission_lines": "1", "Rv": "3.1",
                                   "filters": "B_B90 & V_B90 & FUV"},
    "dustatt_modified_CF00": {"filters": "V_B90 & FUV"},
    "dl2014": {},
    "skirtor2016": {"t": "7", "pl": "1.0", "q": "1.0", "oa": "40", "R": "20", "Mcl": "0.97", "disk_type": "1",
                    "delta": "-0.36", "law": "0", "temperature": "100.0", "emissivity": "1.6"},
    "fritz2006": {"r_ratio": "60.0", "tau": "1.0", "beta": "-0.5", "gamma": "0.0", "opening_angle": "100.0",
                  "disk_type": "1", "delta": "-0.36", "law": "0", "temperature": "100.0", "emissivity": "1.6"},
    "xray": {"gam": "1.8", "det_lmxb": "0.0", "det_hmxb": "0.0"},
}
#: CIGALE's integer codes for string options.
IMF_CODE = {"salpeter": "0", "chabrier": "1"}
LAMBDA_FRAC_AGN_DEFAULT = "0/0"
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
}


def grid(parameter: str, value: Value) -> str:
    """A spec value as CIGALE grid text: a range becomes ``GRID_POINTS`` values.

    >>> grid("E_BV_lines", (0.0, 0.5))
    '0.0, 0.125, 0.25, 0.375, 0.5'
    >>> grid("age_main", (10.0, 1000.0))
    '10.0, 31.6228, 100.0, 316.2278, 1000.0'
    >>> grid("imf", "chabrier")
    '1'
    """
    if isinstance(value, tuple):
        lo, hi = value
        if parameter in _LOG_SPACED and lo > 0:
            values = np.geomspace(lo, hi, GRID_POINTS)
        else:
            values = np.linspace(lo, hi, GRID_POINTS)
        return ", ".join(f"{round(float(v), 4):g}" if abs(v) >= 1e4 else str(round(float(v), 4)) for v in values)
    if parameter == "imf":
        return IMF_CODE.get(str(value), str(value))
    return str(value)


def write_ini(spec: ModelSpec, phot: SourcePhotometry, folder: str | Path, rationale: dict[str, str] | None = None,
              cores: int = 1) -> tuple[Path, Path]:
    """Write ``pcigale.ini`` and ``data.txt`` for one source into ``folder``; return both paths.

    ``rationale`` maps a module or ``module.parameter`` to the rule and papers that set it; each appears as a
    comment above what it explains.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rationale = rationale or {}
    bands = [b for b, c in zip(phot.bands, phot.curves) if c]
    names = {b: _cigale_band(b, c) for b, c in zip(phot.bands, phot.curves) if c}
    data = folder / "data.txt"
    header = ["id", "redshift", *[x for b in bands for x in (names[b], f"{names[b]}_err")]]
    row = [phot.source_id.replace(" ", "_"), f"{phot.redshift:.4f}"]
    for b in bands:
        i = phot.bands.index(b)
        f, e = phot.flux_ujy[i], phot.error_ujy[i]
        ok = math.isfinite(f) and math.isfinite(e) and e > 0
        # CIGALE reads mJy; a missing band is -9999 (ignored); an upper limit is a negative error.
        upper = bool(phot.upper_limit and phot.upper_limit[i])
        row += [f"{f / 1000:.6g}" if ok else "-9999", (f"{-e / 1000:.6g}" if upper else f"{e / 1000:.6g}") if ok else "-9999"]
    data.write_text("# " + " ".join(header) + "\n" + " ".join(row) + "\n")
    modules = [m for m in spec.modules] + ["redshifting"]
    lines = [
        "# pcigale.ini written by astrorag for source " + phot.source_id,
        "# Model: " + spec.describe(),
        "# Run with: pcigale run   (then pcigale-plots sed). Check the band names against `pcigale-filters list`.",
        "",
        "# File containing the input data: id, redshift, fluxes in mJy and <band>_err.",
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
        "# Bands to fit (as in the data file).",
        f"bands = {', '.join(names[b] for b in bands)}",
        "",
        "# Properties to fit (none: photometry only).",
        "properties = ",
        "",
        "# Relative error added in quadrature to the flux uncertainties (astrorag's fits use 0.05).",
        "additionalerror = 0.05",
        "",
        "# Configuration of the SED creation modules.",
        "[sed_modules_params]",
    ]
    for module in spec.modules:
        lines += ["", f"  # {MODULE_WHY.get(module, module)}"]
        if module in rationale:
            lines.append(f"  # astrorag: {rationale[module]}")
        lines.append(f"  [[{module}]]")
        values = {**MODULE_FIXED.get(module, {}), **{p: grid(p, v) for p, v in spec.module(module).items()}}
        if module in ("skirtor2016", "fritz2006"):
            values.setdefault("lambda_fracAGN", LAMBDA_FRAC_AGN_DEFAULT)
            values.setdefault("EBV", "0.0")
            if module == "fritz2006" and "i" in values:
                values["psy"] = values.pop("i")
        for parameter, text in values.items():
            why = rationale.get(f"{module}.{parameter}")
            if why:
                lines.append(f"    # astrorag: {why}")
            lines.append(f"    {parameter} = {text}")
    lines += ["", "  # The redshift comes from the data file.", "  [[redshifting]]", "    redshift = ", "",
              "# Configuration of the statistical analysis method.", "[analysis_params]",
              "  variables = stellar.m_star, sfh.sfr, attenuation.E_BV_lines" +
              (", agn.fracAGN" if spec.member("agn") else ""),
              "  bands = ", "  save_best_sed = True", "  save_chi2 = none", "  lim_flag = noscaling",
              "  mock_flag = False", "  redshift_decimals = 2", "  blocks = 1", ""]
    ini = folder / "pcigale.ini"
    ini.write_text("\n".join(lines))
    return ini, data


def _cigale_band(short: str, curve: str) -> str:
    """CIGALE's filter name: the curve file's first comment line when it has one (NIRCam/MIRI files here are
    CIGALE's own), else instrument.band."""
    try:
        first = Path(curve).read_text().splitlines()[0]
    except (OSError, IndexError):
        first = ""
    return first[1:].strip() if first.startswith("#") else short


class CigaleFitter(Fitter):
    """Writes the CIGALE files; runs ``pcigale`` when it is on PATH and reads ``out/results.fits``."""

    name = "cigale"
    gives_evidence = False

    def not_representable(self, spec: ModelSpec) -> list[str]:
        return []

    def fit(self, phot: SourcePhotometry, spec: ModelSpec, workdir: str | None = None) -> FitResult:
        folder = Path(workdir or Path.cwd() / f"cigale-{phot.source_id.replace('/', '_')}")
        ini, _ = write_ini(spec, phot, folder)
        pcigale = shutil.which("pcigale")
        if pcigale is None:
            raise FitError(f"pcigale is not installed here: the files are in {folder} (pcigale.ini, data.txt); "
                           "install CIGALE (https://cigale.lam.fr) and run `pcigale run` there")
        start = time.perf_counter()
        run = subprocess.run([pcigale, "run"], cwd=folder, capture_output=True, text=True)
        if run.returncode != 0:
            raise FitError(f"pcigale failed in {folder}: {run.stderr.strip()[-500:]}")
        from astropy.table import Table

        results = Table.read(folder / "out" / "results.fits")
        model = []
        for b in phot.bands:
            col = next((c for c in results.colnames if c.lower() == f"best.{b}" or c.lower().endswith("." + b)), None)
            model.append(float(results[col][0]) * 1000 if col else math.nan)  # mJy -> uJy
        chi2, n = chi2_of(phot, np.asarray(model))
        n_free = sum(isinstance(v, tuple) for _, values in spec.params for _, v in values) + 1
        if "best.reduced_chi_square" not in results.colnames:
            raise InputError(f"{folder}/out/results.fits has no best.reduced_chi_square: not a CIGALE output")
        return FitResult(self.name, spec, model, chi2, n, n_free, None, time.perf_counter() - start)
