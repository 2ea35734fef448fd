"""What CIGALE accepts in ``pcigale.ini``: each module's parameters with their validation types and defaults,
the modules' kinds (which set CIGALE's order), and the top-level and analysis keys.

Transcribed by hand from the parameter declarations of CIGALE's module sources (CIGALE 2022+; Boquien et al.
2019, arXiv:1811.03094). The type strings are CIGALE's own validation grammar, which ``pcigale.ini.spec``
carries: ``cigale_list(dtype=..., minvalue=..., maxvalue=..., options=a & b & ...)``, ``cigale_string_list()``
and configobj's ``float()``, ``integer()``, ``boolean()``, ``string()``, ``option(...)``.
"""

from __future__ import annotations

import re

#: Module kinds in CIGALE's order: a model is built SFH first and redshifted last; an AGN module after the
#: attenuation keeps the energy balance (the attenuation's absorbed light feeds the dust emission).
KIND_ORDER = ("SFH", "SSP", "nebular", "dust attenuation", "dust emission", "AGN", "X-ray", "radio",
              "restframe", "redshifting")

_LOGU = " & ".join(f"{v / 10:.1f}" for v in range(-40, -9))
_ZGAS = ("0.0001 & 0.0004 & 0.001 & 0.002 & 0.0025 & 0.003 & 0.004 & 0.005 & 0.006 & 0.007 & 0.008 & 0.009 & "
         "0.011 & 0.012 & 0.014 & 0.016 & 0.019 & 0.020 & 0.022 & 0.025 & 0.03 & 0.033 & 0.037 & 0.041 & 0.046 & "
         "0.051")
_UMIN = ("0.10 & 0.12 & 0.15 & 0.17 & 0.20 & 0.25 & 0.30 & 0.35 & 0.40 & 0.50 & 0.60 & 0.70 & 0.80 & 1.00 & "
         "1.20 & 1.50 & 1.70 & 2.00 & 2.50 & 3.00 & 3.50 & 4.00 & 5.00 & 6.00 & 7.00 & 8.00 & 10.00 & 12.00 & "
         "15.00 & 17.00 & 20.00 & 25.00 & 30.00 & 35.00 & 40.00 & 50.00")
_DL_ALPHA = " & ".join(f"{v / 10:.1f}" for v in range(10, 31))
_POLAR_DUST = {
    "law": ("cigale_list(dtype=int, options=0 & 1 & 2)", "0"),
    "EBV": ("cigale_list(minvalue=0.)", "0.03"),
    "temperature": ("cigale_list(minvalue=0.)", "100.0"),
    "emissivity": ("cigale_list(minvalue=0.)", "1.6"),
}

#: module -> (kind, {parameter: (CIGALE type, CIGALE default as text)}), parameters in CIGALE's order.
MODULES: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {
    "sfhdelayed": ("SFH", {
        "tau_main": ("cigale_list()", "2000.0"),
        "age_main": ("cigale_list(dtype=int, minvalue=0.)", "5000"),
        "tau_burst": ("cigale_list()", "50.0"),
        "age_burst": ("cigale_list(dtype=int, minvalue=1.)", "20"),
        "f_burst": ("cigale_list(minvalue=0., maxvalue=0.9999)", "0.0"),
        "sfr_A": ("cigale_list(minvalue=0.)", "1.0"),
        "normalise": ("boolean()", "True"),
    }),
    "bc03": ("SSP", {
        "imf": ("cigale_list(dtype=int, options=0. & 1.)", "0"),
        "metallicity": ("cigale_list(options=0.0001 & 0.0004 & 0.004 & 0.008 & 0.02 & 0.05)", "0.02"),
        "separation_age": ("cigale_list(dtype=int, minvalue=0)", "10"),
    }),
    "nebular": ("nebular", {
        "logU": (f"cigale_list(options={_LOGU})", "-2.0"),
        "zgas": (f"cigale_list(options={_ZGAS})", "0.02"),
        "ne": ("cigale_list(options=10 & 100 & 1000)", "100"),
        "f_esc": ("cigale_list(minvalue=0., maxvalue=1.)", "0.0"),
        "f_dust": ("cigale_list(minvalue=0., maxvalue=1.)", "0.0"),
        "lines_width": ("cigale_list(minvalue=0.)", "300.0"),
        "emission": ("boolean()", "True"),
    }),
    "dustatt_modified_starburst": ("dust attenuation", {
        "E_BV_lines": ("cigale_list(minvalue=0.)", "0.3"),
        "E_BV_factor": ("cigale_list(minvalue=0., maxvalue=1.)", "0.44"),
        "uv_bump_wavelength": ("cigale_list(minvalue=0.)", "217.5"),
        "uv_bump_width": ("cigale_list()", "35.0"),
        "uv_bump_amplitude": ("cigale_list(minvalue=0.)", "0.0"),
        "powerlaw_slope": ("cigale_list()", "0.0"),
        "Ext_law_emission_lines": ("cigale_list(dtype=int, options=1 & 2 & 3)", "1"),
        "Rv": ("cigale_list()", "3.1"),
        "filters": ("string()", "B_B90 & V_B90 & FUV"),
    }),
    "dustatt_modified_CF00": ("dust attenuation", {
        "Av_ISM": ("cigale_list(minvalue=0)", "1.0"),
        "mu": ("cigale_list(minvalue=.0001, maxvalue=1.)", "0.44"),
        "slope_ISM": ("cigale_list()", "-0.7"),
        "slope_BC": ("cigale_list()", "-1.3"),
        "filters": ("string()", "V_B90 & FUV"),
    }),
    "dl2014": ("dust emission", {
        "qpah": ("cigale_list(options=0.47 & 1.12 & 1.77 & 2.50 & 3.19 & 3.90 & 4.58 & 5.26 & 5.95 & 6.63 & 7.32)",
                 "2.5"),
        "umin": (f"cigale_list(options={_UMIN})", "1.0"),
        "alpha": (f"cigale_list(options={_DL_ALPHA})", "2.0"),
        "gamma": ("cigale_list(minvalue=0., maxvalue=1.)", "0.1"),
    }),
    "skirtor2016": ("AGN", {
        "t": ("cigale_list(options=3 & 5 & 7 & 9 & 11)", "7"),
        "pl": ("cigale_list(options=0. & .5 & 1. & 1.5)", "1.0"),
        "q": ("cigale_list(options=0. & .5 & 1. & 1.5)", "1.0"),
        "oa": ("cigale_list(options=10 & 20 & 30 & 40 & 50 & 60 & 70 & 80)", "40"),
        "R": ("cigale_list(options=10 & 20 & 30)", "20"),
        "Mcl": ("cigale_list(options=0.97)", "0.97"),
        "i": ("cigale_list(options=0 & 10 & 20 & 30 & 40 & 50 & 60 & 70 & 80 & 90)", "30"),
        "disk_type": ("integer(min=0, max=1)", "1"),
        "delta": ("cigale_list()", "-0.36"),
        "fracAGN": ("cigale_list(minvalue=0., maxvalue=1.)", "0.1"),
        "lambda_fracAGN": ("string()", "0/0"),
        **_POLAR_DUST,
    }),
    "fritz2006": ("AGN", {
        "r_ratio": ("cigale_list(options=10. & 30. & 60. & 100. & 150.)", "60.0"),
        "tau": ("cigale_list(options=0.1 & 0.3 & 0.6 & 1.0 & 2.0 & 3.0 & 6.0 & 10.0)", "1.0"),
        "beta": ("cigale_list(options=-1.00 & -0.75 & -0.50 & -0.25 & 0.00)", "-0.5"),
        "gamma": ("cigale_list(options=0.0 & 2.0 & 4.0 & 6.0)", "4.0"),
        "opening_angle": ("cigale_list(options=60. & 100. & 140.)", "100.0"),
        "psy": ("cigale_list(options=0.001 & 10.100 & 20.100 & 30.100 & 40.100 & 50.100 & 60.100 & 70.100 & "
                "80.100 & 89.990)", "50.1"),
        "disk_type": ("integer(min=0, max=1)", "1"),
        "delta": ("cigale_list()", "-0.36"),
        "fracAGN": ("cigale_list(minvalue=0., maxvalue=1.)", "0.1"),
        "lambda_fracAGN": ("string()", "0/0"),
        **_POLAR_DUST,
    }),
    "xray": ("X-ray", {
        "gam": ("cigale_list()", "1.8"),
        "E_cut": ("cigale_list()", "300"),
        "alpha_ox": ("cigale_list()", "-1.9, -1.8, -1.7, -1.6, -1.5, -1.4, -1.3, -1.2, -1.1"),
        "max_dev_alpha_ox": ("float()", "0.2"),
        "angle_coef": ("cigale_string_list()", "0.5 & 0"),
        "det_lmxb": ("cigale_list()", "0.0"),
        "det_hmxb": ("cigale_list()", "0.0"),
    }),
    "redshifting": ("redshifting", {
        "redshift": ("cigale_list(minvalue=0.)", ""),
    }),
}

#: Top-level keys of pcigale.ini and their types (``pcigale init`` and ``genconf``).
TOP_LEVEL: dict[str, str] = {
    "data_file": "string()", "parameters_file": "string()", "sed_modules": "cigale_string_list()",
    "analysis_method": "string()", "cores": "integer(min=1)", "bands": "cigale_string_list()",
    "properties": "cigale_string_list()", "additionalerror": "float(min=0.0)",
}

#: The pdf_analysis method's keys and types.
PDF_ANALYSIS: dict[str, str] = {
    "variables": "cigale_string_list()", "bands": "cigale_string_list()", "save_best_sed": "boolean()",
    "save_chi2": "option('all', 'none', 'properties', 'fluxes')", "lim_flag": "option('full', 'noscaling', 'none')",
    "mock_flag": "boolean()", "redshift_decimals": "integer()", "blocks": "integer(min=1)",
}


def kind(module: str) -> str:
    return MODULES[module][0]


def in_cigale_order(modules) -> list[str]:
    """Modules sorted into CIGALE's order by kind (a stable sort: one module per kind keeps its place).

    >>> in_cigale_order(["skirtor2016", "sfhdelayed", "dustatt_modified_starburst", "bc03", "nebular"])
    ['sfhdelayed', 'bc03', 'nebular', 'dustatt_modified_starburst', 'skirtor2016']
    """
    return sorted(modules, key=lambda m: KIND_ORDER.index(kind(m)))


def constraints(type_text: str) -> dict[str, object]:
    """The constraints of a ``cigale_list(...)`` type: dtype, minvalue, maxvalue and options (floats).

    >>> constraints("cigale_list(dtype=int, options=0 & 10 & 20)")
    {'dtype': 'int', 'options': [0.0, 10.0, 20.0]}
    >>> constraints("cigale_list(minvalue=0., maxvalue=1.)")
    {'minvalue': 0.0, 'maxvalue': 1.0}
    """
    match = re.fullmatch(r"cigale_list\((.*)\)", type_text.strip())
    if not match:
        return {}
    found: dict[str, object] = {}
    for part in re.split(r",\s*(?=\w+=)", match.group(1)):
        if "=" not in part:
            continue
        key, value = (s.strip() for s in part.split("=", 1))
        if key == "options":
            found[key] = [float(v) for v in value.split("&")]
        elif key == "dtype":
            found[key] = value
        else:
            found[key] = float(value)
    return found
