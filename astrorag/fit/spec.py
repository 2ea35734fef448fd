"""A typed model specification in the rule vocabulary's terms, and actions applied to it as pure functions.

A :class:`ModelSpec` names CIGALE modules and their parameter ranges (CIGALE's names and units: Myr for
ages, E(B-V) in mag, metallicity as the mass fraction Z). Fitters translate it into their own
configuration (``bagpipes_fitter.TRANSLATION``, ``cigale.write_ini``) and report what they cannot represent.

An action from the rule graph is applied with :func:`apply_action`: it returns a new specification and a
note of what changed; the old one is untouched. Actions that are checks, not model changes, raise
:class:`NotAModelChange`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from ..errors import InputError
from ..graph import vocabulary as vocab
from ..graph.types import Action, RankedAction

#: A parameter is a fixed value, a (low, high) range the fitter samples, or a CIGALE string option.
Value = float | tuple[float, float] | str

#: Modules that play the same role: ``switch_module`` replaces one member of a family by another.
FAMILIES: dict[str, tuple[str, ...]] = {
    "sfh": ("sfhdelayed", "sfh2exp", "sfhdelayedbq", "sfhperiodic"),
    "ssp": ("bc03", "m2005"),
    "attenuation": ("dustatt_modified_starburst", "dustatt_modified_CF00"),
    "dust_emission": ("dl2014", "dl2007", "dale2014", "casey2012", "themis"),
    "agn": ("skirtor2016", "fritz2006"),
    "nebular": ("nebular",),
    "xray": ("xray",),
    "radio": ("radio",),
    "bhstar": ("bhstar",),
}

#: Parameters a module gets when an action adds it (CIGALE's names and units). The AGN defaults follow the
#: rule graph: fracAGN as a share of the rest-optical light (lambda_fracAGN = 0.4/0.7), a type-1 view.
MODULE_DEFAULTS: dict[str, dict[str, Value]] = {
    "sfhdelayed": {"tau_main": (100.0, 5000.0), "age_main": (10.0, 1000.0)},
    "bc03": {"imf": "chabrier", "metallicity": (0.002, 0.03)},
    "nebular": {"logU": -3.0, "zgas": 0.008},
    "dustatt_modified_starburst": {"E_BV_lines": (0.0, 0.5), "E_BV_factor": 0.44, "powerlaw_slope": 0.0},
    "dustatt_modified_CF00": {"Av_ISM": (0.0, 1.5), "mu": 0.44, "slope_ISM": -0.7, "slope_BC": -1.3},
    "dl2014": {"qpah": 2.5, "umin": 1.0, "alpha": 2.0, "gamma": 0.1},
    "skirtor2016": {"fracAGN": (0.0, 0.9), "lambda_fracAGN": "0.4/0.7", "i": 30.0, "EBV": 0.0},
    # Fritz's psy is the angle from the equator (psy 90 = type 1): 60.1 is SKIRTOR's i = 30 view.
    "fritz2006": {"fracAGN": (0.0, 0.9), "lambda_fracAGN": "0.4/0.7", "psy": 60.1, "EBV": 0.0},
    "xray": {"alpha_ox": (-1.9, -1.1), "max_dev_alpha_ox": 0.2},
    # The BH*'s priors (fit/bhstar.py says where each range comes from).
    "bhstar": {"temperature": (2000.0, 9000.0), "f5500_share": (0.01, 1.5), "balmer_break": (0.0, 0.95),
               "halpha_ew": (10.0, 2000.0)},
}

#: Physical bounds, so that a rule's range never leaves what the models allow.
BOUNDS: dict[str, tuple[float, float]] = {
    "E_BV_lines": (0.0, 5.0), "E_BV_factor": (0.1, 1.0), "powerlaw_slope": (-1.0, 1.0), "Av_ISM": (0.0, 10.0),
    "fracAGN": (0.0, 0.999), "EBV": (0.0, 3.0), "f_burst": (0.0, 0.9), "age_burst": (1.0, 500.0),
    "tau_main": (1.0, 20000.0), "age_main": (1.0, 13800.0), "metallicity": (0.0001, 0.05),
    "logU": (-4.0, -1.0), "zgas": (0.0001, 0.05), "uv_bump_amplitude": (0.0, 5.0), "umin": (0.1, 50.0),
    "qpah": (0.47, 7.32), "gamma": (0.0, 1.0), "i": (0.0, 90.0),
    "f5500_share": (0.001, 2.0), "balmer_break": (0.0, 0.99), "halpha_ew": (1.0, 5000.0),
}

#: Parameters CIGALE reads as one value, never a grid (xray's max_dev_alpha_ox is a float): a rule's number sets them.
SCALAR_PARAMETERS = {"max_dev_alpha_ox"}

_PAIR = re.compile(r"([-+]?\d*\.?\d+)\s*(?:-|\.\.|to)\s*([-+]?\d*\.?\d+)")
_NUMBER = re.compile(r"[-+]?\d*\.?\d+")


class NotAModelChange(InputError):
    """The action is a check or a data change, not something a refit can test."""


def age_cap_myr(z: float) -> float:
    """The oldest stellar age a fit allows at redshift ``z``: 98 % of the cosmic age, in Myr (0.1 Myr steps)."""
    return round(0.98 * cosmic_age_myr(z), 1)


def cosmic_age_myr(z: float) -> float:
    """Age of the Universe at redshift ``z`` in Myr (Planck 2018).

    >>> round(cosmic_age_myr(5.43))
    1055
    """
    from astropy.cosmology import Planck18

    return float(Planck18.age(z).to_value("Myr"))


@dataclass(frozen=True)
class ModelSpec:
    """Modules and parameter values in CIGALE's vocabulary, for one source at a fixed redshift.

    Examples
    --------
    >>> spec = baseline(5.43)
    >>> spec.modules
    ('sfhdelayed', 'bc03', 'nebular', 'dustatt_modified_starburst')
    >>> spec.value("dustatt_modified_starburst", "E_BV_lines")
    (0.0, 0.5)
    """

    redshift: float
    params: tuple[tuple[str, tuple[tuple[str, Value], ...]], ...]
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(m for m, _ in self.params)

    def module(self, name: str) -> dict[str, Value]:
        for m, values in self.params:
            if m == name:
                return dict(values)
        raise KeyError(name)

    def has(self, name: str) -> bool:
        return name in self.modules

    def value(self, module: str, parameter: str) -> Value:
        return self.module(module)[parameter]

    def member(self, family: str) -> str | None:
        """The module this specification uses for a family (``"agn"``, ``"attenuation"``, ...), if any."""
        return next((m for m in self.modules if m in FAMILIES[family]), None)

    def with_module(self, name: str, values: dict[str, Value] | None = None) -> ModelSpec:
        values = dict(MODULE_DEFAULTS.get(name, {}) if values is None else values)
        if self.has(name):
            return self._set(name, values)
        return replace(self, params=self.params + ((name, tuple(values.items())),))

    def without(self, name: str) -> ModelSpec:
        return replace(self, params=tuple((m, v) for m, v in self.params if m != name))

    def with_value(self, module: str, parameter: str, value: Value) -> ModelSpec:
        values = self.module(module)
        values[parameter] = value
        return self._set(module, values)

    def _set(self, name: str, values: dict[str, Value]) -> ModelSpec:
        return replace(self, params=tuple((m, tuple(values.items()) if m == name else v) for m, v in self.params))

    def to_dict(self) -> dict:
        return {"redshift": self.redshift,
                "modules": {m: {p: list(v) if isinstance(v, tuple) else v for p, v in values}
                            for m, values in self.params}}

    def describe(self) -> str:
        parts = []
        for m, values in self.params:
            shown = ", ".join(f"{p}={_show(v)}" for p, v in values)
            parts.append(f"{m}({shown})")
        return " + ".join(parts)


def as_range(value: Value) -> tuple[float, float]:
    """A parameter's value as a (low, high) range: a fixed value is a range of one point.

    >>> as_range((0.1, 0.5)), as_range(0.3)
    ((0.1, 0.5), (0.3, 0.3))
    """
    return (float(value[0]), float(value[1])) if isinstance(value, tuple) else (float(value), float(value))


def _show(value: Value) -> str:
    if isinstance(value, tuple):
        return f"{value[0]:g}-{value[1]:g}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def baseline(z: float) -> ModelSpec:
    """The usual first fit: a delayed SFH, BC03, nebular emission and a Calzetti-like attenuation.

    The attenuation prior (E_BV_lines 0-0.5, continuum E(B-V) up to 0.22, A_V up to 0.9) is what a survey
    fit of ordinary galaxies uses; the rule graph's job is to say when a source needs more.
    """
    if not (z >= 0 and math.isfinite(z)):
        raise InputError(f"a fit needs a redshift, got {z!r}: give --z or a redshift column")
    age = MODULE_DEFAULTS["sfhdelayed"]["age_main"]
    sfh = dict(MODULE_DEFAULTS["sfhdelayed"], age_main=(age[0], age_cap_myr(z)))
    return ModelSpec(redshift=float(z), params=(
        ("sfhdelayed", tuple(sfh.items())),
        ("bc03", tuple(MODULE_DEFAULTS["bc03"].items())),
        ("nebular", tuple(MODULE_DEFAULTS["nebular"].items())),
        ("dustatt_modified_starburst", tuple(MODULE_DEFAULTS["dustatt_modified_starburst"].items())),
    ))


def parse_range(text: str) -> tuple[float, float] | float | None:
    """The first numeric range (``"0.3 - 1.5 mag"``) or single number in a rule's range text.

    >>> parse_range("0.3 - 1.5 mag (E(B-V) of the nebular lines)")
    (0.3, 1.5)
    >>> parse_range("-0.5 - -0.2 (steeper than Calzetti)")
    (-0.5, -0.2)
    >>> parse_range("up to the cosmic age at z") is None
    True
    >>> parse_range("0.3 mag (e.g. from 0.5), while E_BV_factor rises from 0.44 to 0.73")
    0.3

    Only the leading clause counts (up to a parenthesis, comma, colon or "while"): what follows describes
    other parameters.
    """
    text = re.split(r"[(,:;]|\bwhile\b|\bwith\b", text or "", maxsplit=1)[0]
    pair = _PAIR.search(text)
    if pair:
        lo, hi = sorted((float(pair.group(1)), float(pair.group(2))))
        return (lo, hi)
    single = _NUMBER.search(text or "")
    return float(single.group(0)) if single else None


def _clip(parameter: str, value: Value, spec: ModelSpec) -> Value:
    lo, hi = BOUNDS.get(parameter, (-math.inf, math.inf))
    if parameter in ("age_main", "age_burst"):
        hi = min(hi, age_cap_myr(spec.redshift))
    if isinstance(value, tuple):
        a, b = max(lo, value[0]), min(hi, value[1])
        return (round(a, 6), round(b, 6)) if a < b else round(b, 6)
    return min(max(value, lo), hi) if isinstance(value, float) else value


def _module_for(action: Action | RankedAction, spec: ModelSpec) -> str:
    """The module an action's parameter lives in: the one named, else the one in the spec, else the first."""
    if action.module:
        return action.module
    owners = vocab.modules_of(action.parameter)
    present = [m for m in owners if spec.has(m)]
    if present:
        return present[0]
    if not owners:
        raise NotAModelChange(f"{action.parameter!r} is no module's parameter")
    return owners[0]


def _owner_default(parameter: str) -> str:
    """The module whose defaults hold ``parameter`` (for a rule's widening factor)."""
    return next((m for m, values in MODULE_DEFAULTS.items() if parameter in values), "")


def _family(module: str) -> str:
    family = next((f for f, members in FAMILIES.items() if module in members), None)
    if family is None:
        raise NotAModelChange(f"{module} is not a module a refit can add or change")
    return family


def _new_value(action, current: Value | None, spec: ModelSpec, fresh: bool = False) -> Value:
    parameter, direction = action.parameter, action.direction
    stated = parse_range(action.range)
    if parameter in ("age_main",) and direction in ("increase", "widen", "fix") and stated is None:
        stated = (current[0] if isinstance(current, tuple) else 1.0, cosmic_age_myr(spec.redshift))
    lo, hi = (current if isinstance(current, tuple) else (current, current)) if isinstance(current, (tuple, float)) \
        else (None, None)
    if direction in ("increase", "decrease") and isinstance(stated, tuple) and hi is not None:
        # A stated range that moves both ends the wrong way is a misread; fall back to the direction.
        if direction == "decrease":
            wrong = stated[0] > lo and stated[1] > hi
        else:
            wrong = stated[0] < lo and stated[1] < hi
        stated = None if wrong else stated
    if parameter in SCALAR_PARAMETERS:
        if isinstance(stated, float):
            return stated
        raise NotAModelChange(f"{parameter} takes one value in CIGALE and the rule states none")
    if direction in ("increase", "decrease"):
        if isinstance(stated, tuple):
            return stated
        if isinstance(stated, float):
            # One number: the new upper (decrease) or lower (increase) end of the range.
            if direction == "decrease":
                return (min(lo, stated), stated) if lo is not None else stated
            return (stated, max(hi, stated) * 2 if hi is not None else 2 * stated)
        if hi is None:
            raise NotAModelChange(f"the rule gives no range for {parameter} and the model has none to move")
        span = (hi - lo) or abs(hi) or 1.0
        return (hi, hi + span) if direction == "increase" else (lo - span, lo)
    if direction == "widen":
        if isinstance(stated, tuple):
            if lo is None or fresh:
                return stated   # a module the action adds gets the rule's range as stated
            if stated[0] >= lo and stated[1] <= hi:
                # Already as wide as the rule says: widen again by the rule's own factor (its range over the
                # module default's), so that a parameter still piled at its edge can widen repeatedly.
                default = MODULE_DEFAULTS.get(_owner_default(parameter), {}).get(parameter)
                factor = ((stated[1] - stated[0]) / (default[1] - default[0])
                          if isinstance(default, tuple) and default[1] > default[0] else 2.0)
                span = (hi - lo) * max(factor, 1.5)
                floor = BOUNDS.get(parameter, (-math.inf, math.inf))[0]
                # The lower end stays where it sits at a physical bound (E(B-V) = 0); else both ends move.
                if lo <= floor:
                    return (lo, lo + span)
                middle = (lo + hi) / 2
                return (middle - span / 2, middle + span / 2)
            return (min(stated[0], lo), max(stated[1], hi))
        if hi is None:
            raise NotAModelChange(f"the rule gives no range to widen {parameter} to")
        span = (hi - lo) or abs(hi) or 1.0
        return (lo - span / 2, hi + span / 2)
    if direction == "narrow":
        if isinstance(stated, tuple):
            return stated
        raise NotAModelChange(f"the rule gives no range to narrow {parameter} to")
    if direction == "fix":
        if isinstance(stated, tuple) and parameter in ("age_main",):
            # "fix the grid below the cosmic age": keep a range, capped.
            return (lo if lo is not None else stated[0], min(stated[1], hi if hi is not None else stated[1]))
        if isinstance(stated, float):
            return stated
        if isinstance(stated, tuple):
            return stated
        raise NotAModelChange(f"the rule gives no value to fix {parameter} at")
    raise NotAModelChange(f"direction {direction!r} does not change {parameter}")


def apply_action(spec: ModelSpec, action: Action | RankedAction) -> tuple[ModelSpec, str]:
    """Apply a rule's action to a model specification; return the new one and what changed.

    Pure: ``spec`` is not modified. The rule's range text gives the new range where it states one
    (``"0.3 - 1.5 mag"``); otherwise the range moves by its own width in the stated direction. The
    action's ``also`` pairs are applied to the same module when they hold a value.

    Examples
    --------
    >>> s = baseline(5.4)
    >>> new, note = apply_action(s, Action("increase", "E_BV_lines", "dustatt_modified_starburst", "0.3 - 1.5 mag"))
    >>> new.value("dustatt_modified_starburst", "E_BV_lines"), s.value("dustatt_modified_starburst", "E_BV_lines")
    ((0.3, 1.5), (0.0, 0.5))
    >>> apply_action(s, Action("add_module", None, "skirtor2016"))[0].member("agn")
    'skirtor2016'
    """
    direction = action.direction
    if direction in ("check", "free"):
        raise NotAModelChange(f"'{direction}' is advice to look at something, not a model change a refit can test")
    also = [tuple(pair) for pair in (action.also or ())]
    if direction in ("add_module", "switch_module", "remove_module"):
        module = action.module
        if module is None or module not in vocab.MODULES:
            raise NotAModelChange(f"no module named in the action {direction}")
        family = _family(module)
        current = spec.member(family)
        if direction == "remove_module":
            if not spec.has(module):
                raise NotAModelChange(f"{module} is not in the model")
            return replace(spec.without(module), notes=()), f"removed {module}"
        if direction == "add_module" and spec.has(module):
            raise NotAModelChange(f"{module} is already in the model")
        new = spec.without(current) if current else spec
        new = new.with_module(module, _carried(spec, current, module) if current else None)
        new = _apply_also(new, spec, module, also, action)
        verb = f"switched {current} to {module}" if current and current != module else f"added {module}"
        return replace(new, notes=()), verb + _companions(spec, new, module, also)
    if not action.parameter:
        raise NotAModelChange("the action names no parameter")
    module = _module_for(action, spec)
    if module == "redshifting":
        raise NotAModelChange("fits hold the redshift at the catalog's value; choosing another is a data decision")
    new = spec
    if not new.has(module):
        # Changing a parameter of a module the model lacks adds the module (replacing its family's member).
        current = new.member(_family(module))
        new = (new.without(current) if current else new).with_module(module)
    values = new.module(module)
    current_value = values.get(action.parameter)
    if action.parameter == "f_burst" and "age_burst" not in values:
        new = new.with_value(module, "age_burst", (10.0, 50.0))
    value = _clip(action.parameter, _new_value(action, current_value, spec, fresh=not spec.has(module)), spec)
    new = new.with_value(module, action.parameter, value)
    new = _apply_also(new, spec, module, also, action)
    if new == spec:
        raise NotAModelChange(f"the model already has {action.parameter} = {_show(value)}")
    note = f"{action.parameter} ({module}): {_show(current_value) if current_value is not None else 'default'} -> {_show(value)}"
    return replace(new, notes=()), note + _companions(spec, new, module, also)


def _carried(spec: ModelSpec, current: str, module: str) -> dict[str, Value]:
    """The new module's defaults, with every parameter the module it replaces shares with it kept as the model
    had it (a switch of torus geometry keeps fracAGN, its definition, the polar dust and the broad lines).

    >>> s = baseline(5.0).with_module("skirtor2016", {"fracAGN": (0.3, 0.99), "EBV": (0.1, 0.5), "i": 30.0,
    ...                                               "broad_lines": "free"})
    >>> kept = _carried(s, "skirtor2016", "fritz2006")
    >>> kept["fracAGN"], kept["EBV"], kept["broad_lines"], kept["psy"]
    ((0.3, 0.99), (0.1, 0.5), 'free', 60.1)
    """
    values = dict(MODULE_DEFAULTS.get(module, {}))
    shared = set(vocab.MODULES.get(module, ())) | {p for p, owners in vocab.EXTENSIONS.items() if module in owners}
    for parameter, value in spec.module(current).items():
        if parameter in shared:
            values[parameter] = value
    return values


def _companions(before: ModelSpec, after: ModelSpec, module: str, also: list[tuple[str, str]]) -> str:
    """What the action's companion settings changed, for its note ("; with E_BV_factor 0.44 -> 0.733333")."""
    changed = []
    for parameter, _ in also:
        owner = next((m for m in (module, *vocab.modules_of(parameter)) if after.has(m)
                      and parameter in after.module(m)), None)
        if owner is None:
            continue
        old = before.module(owner).get(parameter) if before.has(owner) else None
        new = after.module(owner)[parameter]
        if old != new:
            changed.append(f"{parameter} {_show(old) if old is not None else 'default'} -> {_show(new)}")
    return f"; with {', '.join(changed)}" if changed else ""


_PRODUCT = re.compile(r"(\w+)\s*x\s*(\w+)[^.]*\b(unchanged|fixed|kept)\b")


def _apply_also(spec: ModelSpec, before: ModelSpec, module: str, also: list[tuple[str, str]],
                action) -> ModelSpec:
    """Apply an action's companion settings exactly as the rule states them, or refuse the whole action.

    A companion is a value or range (``"0.1 - 0.5"``), a CIGALE string option (``lambda_fracAGN``,
    ``broad_lines``), a range to ``extend`` (union with the model's own: ``"extend to -2.5 .. -1.9"``), or a
    coupling that keeps a product fixed (``"raise so that E_BV_factor x E_BV_lines ... is unchanged"``: the
    upper end of the product stays where the model ``before`` the action had it). Anything else raises
    :class:`NotAModelChange`: an action is never half-applied.
    """
    for parameter, text in also:
        owner = module if module in vocab.modules_of(parameter) \
            else next((m for m in vocab.modules_of(parameter) if spec.has(m)), None)
        if owner is None:
            raise NotAModelChange(f"the rule also sets {parameter}, which no module of the model has")
        if parameter in ("lambda_fracAGN", "broad_lines"):
            spec = spec.with_value(owner, parameter, text.strip())
            continue
        product = _PRODUCT.search(text)
        if product and action.parameter in product.groups()[:2] and parameter in product.groups()[:2]:
            spec = spec.with_value(owner, parameter, _keep_product(before, spec, owner, parameter, action))
            continue
        current = spec.module(owner).get(parameter, MODULE_DEFAULTS.get(owner, {}).get(parameter))
        if text.strip().lower().startswith("extend"):
            numbers = [float(n) for n in _NUMBER.findall(text)]
            if not numbers:
                raise NotAModelChange(f"the rule says to extend {parameter} but gives no values")
            lo, hi = (current if isinstance(current, tuple) else (current, current)) \
                if isinstance(current, (tuple, float)) else (min(numbers), max(numbers))
            spec = spec.with_value(owner, parameter, _clip(parameter, (min(lo, *numbers), max(hi, *numbers)), spec))
            continue
        stated = parse_range(text)
        if stated is None:
            raise NotAModelChange(f"the rule's companion setting {parameter} = {text!r} is not a value or range "
                                  "astrorag can apply, so the action is not applied at all")
        spec = spec.with_value(owner, parameter, _clip(parameter, stated, spec))
    return spec


def _keep_product(before: ModelSpec, after: ModelSpec, module: str, parameter: str, action) -> Value:
    """The value of ``parameter`` that keeps ``parameter x action.parameter`` (upper ends) as ``before`` had it.

    >>> s = baseline(5.0)
    >>> new, _ = apply_action(s, Action("decrease", "E_BV_lines", "dustatt_modified_starburst", "0.3 mag",
    ...                                 also=(("E_BV_factor", "raise so that E_BV_factor x E_BV_lines is unchanged"),)))
    >>> new.value("dustatt_modified_starburst", "E_BV_factor")
    0.733333
    """
    def top(value) -> float:
        return value[1] if isinstance(value, tuple) else float(value)

    if not before.has(module):
        raise NotAModelChange(f"cannot keep {parameter} x {action.parameter} fixed: the model had no {module}")
    old_partner, new_partner = before.module(module).get(action.parameter), after.module(module).get(action.parameter)
    old_value = before.module(module).get(parameter, MODULE_DEFAULTS.get(module, {}).get(parameter))
    if old_partner is None or new_partner is None or old_value is None or top(new_partner) <= 0:
        raise NotAModelChange(f"cannot keep {parameter} x {action.parameter} fixed: the model lacks one of them")
    ratio = top(old_partner) / top(new_partner)
    value = tuple(round(v * ratio, 6) for v in old_value) if isinstance(old_value, tuple) \
        else round(float(old_value) * ratio, 6)
    lo, hi = BOUNDS.get(parameter, (-math.inf, math.inf))
    if not all(lo <= v <= hi for v in (value if isinstance(value, tuple) else (value,))):
        raise NotAModelChange(f"keeping {parameter} x {action.parameter} fixed needs {parameter} = {_show(value)}, "
                              f"outside its physical range {lo:g}-{hi:g}")
    return value
