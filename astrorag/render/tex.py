"""Turning the TeX that abstracts and titles carry into text a terminal shows (the JSON keeps the TeX)."""

from __future__ import annotations

import re

#: TeX macros common in astro-ph titles and abstracts, and what a terminal shows for them.
_MACROS = {
    "sim": "~", "lesssim": "≲", "gtrsim": "≳", "approx": "≈", "simeq": "≃", "times": "×", "pm": "±",
    "leq": "≤", "geq": "≥", "le": "≤", "ge": "≥", "odot": "⊙", "AA": "Å", "infty": "∞", "propto": "∝",
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "lambda": "λ", "mu": "μ", "nu": "ν",
    "sigma": "σ", "tau": "τ", "chi": "χ", "Omega": "Ω", "Delta": "Δ", "Lambda": "Λ", "star": "★", "rm": "",
    "mathrm": "", "text": "", "textrm": "", "mathit": "", "it": "", "bf": "", "mathbf": "", "cal": "",
}
_SUPERSCRIPT = str.maketrans("0123456789+-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻")
_SUBSCRIPT = str.maketrans("0123456789+-", "₀₁₂₃₄₅₆₇₈₉₊₋")


def _math(body: str) -> str:
    body = body.replace("--", "–")
    body = re.sub(r"_\\([A-Za-z]+)", r"\\\1", body)  # a subscripted symbol (M_\odot) is the symbol
    # a macro's trailing space goes when a word or number follows (\sim 4 -> ~4), stays before an operator
    body = re.sub(r"\\([A-Za-z]+)(\s+(?=[A-Za-z0-9]))?", lambda m: _MACROS.get(m.group(1), m.group(1)), body)
    body = re.sub(r"\^\{([0-9+-]+)\}|\^([0-9+-])", lambda m: (m.group(1) or m.group(2)).translate(_SUPERSCRIPT), body)
    body = re.sub(r"_\{([0-9+-]+)\}|_([0-9+-])", lambda m: (m.group(1) or m.group(2)).translate(_SUBSCRIPT), body)
    return body.replace("{", "").replace("}", "").replace("\\,", " ").replace("\\", "")


def plain_tex(text: str) -> str:
    """Inline TeX math as plain Unicode text.

    >>> plain_tex(r"red objects ($z\\sim 4\\text{--}7$) with broad H$\\alpha$ and $M_\\star > 10^{10}$ M$_\\odot$")
    'red objects (z~4–7) with broad Hα and M★ > 10¹⁰ M⊙'
    """
    return re.sub(r"\$([^$]+)\$", lambda m: _math(m.group(1)), text)
