"""Flux-density and magnitude units: the one place the AB zero point lives (taken from astropy's ABmag)."""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np

#: AB magnitude of 1 uJy: 2.5 log10(3631 Jy / 1 uJy) = 23.9, taken from astropy's ABmag definition.
AB_ZEROPOINT_UJY = 2.5 * math.log10((0 * u.ABmag).to_value(u.uJy))
#: d(mag) / d(ln flux): turns a relative flux error into a magnitude error.
MAG_PER_LN = 2.5 / math.log(10)


def ujy_to_ab(flux: np.ndarray | float) -> np.ndarray:
    """AB magnitude of fluxes in uJy (NaN where not positive).

    >>> round(float(ujy_to_ab(1.0)), 4), round(float(ab_to_ujy(0.0)) / 1e9, 4)   # AB zero: 3631 Jy
    (23.9, 3.6308)
    """
    flux = np.asarray(flux, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, AB_ZEROPOINT_UJY - 2.5 * np.log10(flux), np.nan)


def ab_to_ujy(mag: np.ndarray | float) -> np.ndarray:
    """Flux in uJy of AB magnitudes.

    >>> float(ab_to_ujy(23.9))
    1.0
    """
    return 10 ** (-0.4 * (np.asarray(mag, dtype=float) - AB_ZEROPOINT_UJY))


_MAG_NAMES = {"abmag", "mag", "mag(ab)", "ab", "magab", "ab mag"}
# Case-insensitive spellings people type for --flux-unit (astropy itself is case-sensitive: mJy vs MJy).
_COMMON = {"ujy": "uJy", "microjy": "uJy", "njy": "nJy", "mjy": "mJy", "jy": "Jy"}


def parse_flux_unit(text, column: str = "") -> u.UnitBase:
    """A column's unit: a spectral flux density (any astropy spelling) or an AB magnitude.

    Magnitude columns of catalogs often say just ``mag``; they are read as AB.

    Raises
    ------
    InputError
        When the unit is neither a flux density nor a magnitude (a wavelength, say), naming the column.

    Examples
    --------
    >>> parse_flux_unit("erg / (s cm2 Hz)").to(u.uJy)
    1e+29
    >>> parse_flux_unit("mag") == u.ABmag
    True
    >>> parse_flux_unit("m", "f444w_flux")
    Traceback (most recent call last):
    ...
    astrorag.errors.InputError: column f444w_flux: unit 'm' is not a flux density or magnitude; use uJy, nJy, mJy, Jy, erg/s/cm2/Hz or ABmag
    """
    from ..errors import InputError

    if isinstance(text, (u.UnitBase, u.FunctionUnitBase)):
        unit = text
    else:
        raw = str(text).strip()
        if raw.replace(" ", "").lower() in _MAG_NAMES:
            return u.ABmag
        raw = _COMMON.get(raw.replace("µ", "u").replace("μ", "u").lower(), raw)
        try:
            unit = u.Unit(raw.replace("µ", "u").replace("μ", "u").replace("microJy", "uJy"), parse_strict="raise")
        except (ValueError, TypeError):
            unit = None
    where = f"column {column}: " if column else ""
    if unit is not None and unit == u.ABmag:
        return u.ABmag
    if unit is None or not isinstance(unit, u.UnitBase) or not unit.is_equivalent(u.uJy):
        raise InputError(f"{where}unit {str(text)!r} is not a flux density or magnitude; use uJy, nJy, mJy, Jy, "
                         f"erg/s/cm2/Hz or ABmag")
    return unit


def to_ujy_scale(unit: u.UnitBase) -> float:
    """Factor from a flux-density unit to uJy.

    >>> to_ujy_scale(u.mJy)
    1000.0
    """
    return float(unit.to(u.uJy))
