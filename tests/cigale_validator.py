"""A validator for pcigale.ini that encodes CIGALE's rules: configobj reads the file against its
pcigale.ini.spec (CIGALE refuses an .ini without one), with CIGALE's two list checks written here from its
documented behaviour: a ``cigale_list`` is numbers (or ``range``/``eval``), no repeats, within
minvalue/maxvalue, of the allowed options, integers where dtype=int; a ``cigale_string_list`` is a list.
On top: modules in CIGALE's order, every ``bands`` entry has its ``_err`` column, and each module section has
exactly the module's parameters.
"""

from __future__ import annotations

from pathlib import Path

import configobj
import validate

from astrorag.fit import cigale_modules as cm


def _cigale_list(value, dtype="float", minvalue=None, maxvalue=None, options=None):
    convert = (lambda x: int(float(x))) if dtype == "int" else float
    items = value if isinstance(value, list) else [value]
    if len(items) == 1 and isinstance(items[0], str) and items[0].startswith(("range ", "eval ")):
        return items
    try:
        numbers = [float(x) for x in items]
    except (TypeError, ValueError):
        raise validate.VdtValueError(value)
    if dtype == "int" and any(n != int(n) for n in numbers):
        raise validate.VdtValueError(f"{value} (integers only)")
    numbers = [convert(n) for n in numbers]
    if len(set(numbers)) != len(numbers):
        raise validate.VdtValueError(f"{value} (repeated values)")
    if minvalue is not None and any(n < float(minvalue) for n in numbers):
        raise validate.VdtValueTooSmallError(value)
    if maxvalue is not None and any(n > float(maxvalue) for n in numbers):
        raise validate.VdtValueTooBigError(value)
    if options is not None:
        allowed = {float(o) for o in options.split("&")}
        if not all(any(abs(n - a) < 1e-9 for a in allowed) for n in numbers):
            raise validate.VdtValueError(f"{value} (allowed: {options})")
    return numbers


def _cigale_string_list(value):
    if isinstance(value, str):
        return [value] if value else []
    return value


FUNCTIONS = {"cigale_list": _cigale_list, "cigale_string_list": _cigale_string_list}


def problems(folder: str | Path) -> list[str]:
    """Everything CIGALE would refuse in ``folder``/pcigale.ini, in words (empty when it would run)."""
    folder = Path(folder)
    spec_file = folder / "pcigale.ini.spec"
    if not spec_file.is_file():
        return ["no pcigale.ini.spec beside pcigale.ini (CIGALE refuses the file)"]
    spec = configobj.ConfigObj(str(spec_file), list_values=False, _inspec=True, encoding="UTF8")
    config = configobj.ConfigObj(str(folder / "pcigale.ini"), configspec=spec, encoding="UTF8")
    if config["sed_modules_params"].get("redshifting", {}).get("redshift") == "":
        # As CIGALE does before validating: an empty redshift is taken from the data file.
        header, row = (folder / config["data_file"]).read_text().splitlines()[:2]
        columns = header.lstrip("# ").split()
        config["sed_modules_params"]["redshifting"]["redshift"] = row.split()[columns.index("redshift")]
    result = config.validate(validate.Validator(FUNCTIONS), preserve_errors=True)
    found = []
    if result is not True:
        for section, key, error in configobj.flatten_errors(config, result):
            found.append(f"{'/'.join(section)}/{key}: {error}")
    modules = _cigale_string_list(config["sed_modules"])
    if modules != cm.in_cigale_order(modules):
        found.append(f"modules out of CIGALE's order: {modules}")
    bands = _cigale_string_list(config["bands"])
    for band in bands:
        if not band.endswith("_err") and f"{band}_err" not in bands:
            found.append(f"band {band} has no {band}_err: CIGALE would replace its errors by 10 % of the flux")
    for module in modules:
        section = config["sed_modules_params"].get(module)
        if section is None:
            found.append(f"no [[{module}]] section")
            continue
        expected = set(cm.MODULES[module][1])
        if set(section) != expected:
            found.append(f"[[{module}]]: missing {sorted(expected - set(section))}, unknown {sorted(set(section) - expected)}")
    return found
