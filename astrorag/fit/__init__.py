"""SED fitting: a fitter interface, a model specification in the rule vocabulary, and the refit loop.

Fitters are looked up by name with :func:`get_fitter`; :func:`fitter_names` lists them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import ConfigError
from ..sed.filters import curve_file
from ..sed.photometry import Photometry
from .base import FitError, FitResult, Fitter, SamplerOptions, SourcePhotometry
from .spec import ModelSpec, NotAModelChange, apply_action, baseline

#: Relative error floor added in quadrature: JWST catalogs' errors omit calibration and template
#: mismatch; 5 % is the floor commonly adopted in JWST SED fitting.
ERROR_FLOOR = 0.05


def _bagpipes(options: SamplerOptions) -> Fitter:
    from .bagpipes_fitter import BagpipesFitter

    return BagpipesFitter(options)


def _cigale(options: SamplerOptions) -> Fitter:
    from .cigale import CigaleFitter

    return CigaleFitter(options)


FITTERS: dict[str, Callable[[SamplerOptions], Fitter]] = {"bagpipes": _bagpipes, "cigale": _cigale}


def fitter_names() -> list[str]:
    return sorted(FITTERS)


def get_fitter(name: str, options: SamplerOptions | None = None, **fields) -> Fitter:
    """The fitter called ``name``, with ``options`` (or :class:`SamplerOptions` built from ``fields``).

    Examples
    --------
    >>> get_fitter("bagpipes", n_live=50).name
    'bagpipes'
    >>> get_fitter("prospector")
    Traceback (most recent call last):
    ...
    astrorag.errors.ConfigError: unknown fitter 'prospector'; valid names: bagpipes, cigale
    """
    if name not in FITTERS:
        raise ConfigError(f"unknown fitter {name!r}; valid names: {', '.join(fitter_names())}")
    return FITTERS[name](options or SamplerOptions(**fields))


def source_photometry(phot: Photometry, i: int, error_floor: float = ERROR_FLOOR) -> SourcePhotometry:
    """Source ``i`` of a table, with the error floor applied and the curve file of each band.

    Bands with no shipped curve (a few HST bands known only by their handbook pivot) have curve "" and are
    left out of fits; the fitter says so in its result.
    """
    flux = phot.flux[i].astype(float)
    err = np.sqrt(phot.err[i].astype(float) ** 2 + (error_floor * np.abs(flux)) ** 2)
    return SourcePhotometry(source_id=str(phot.ids[i]), redshift=float(phot.z[i]),
                            bands=tuple(b.short for b in phot.bands),
                            curves=tuple(str(curve_file(b) or "") for b in phot.bands),
                            pivots_um=tuple(float(b.pivot_um) for b in phot.bands),
                            flux_ujy=tuple(float(v) for v in flux), error_ujy=tuple(float(v) for v in err),
                            upper_limit=tuple(bool(u) for u in phot.upper[i]))


__all__ = ["FitError", "FitResult", "Fitter", "ModelSpec", "NotAModelChange", "SamplerOptions", "SourcePhotometry", "apply_action",
           "baseline", "fitter_names", "get_fitter", "source_photometry"]
