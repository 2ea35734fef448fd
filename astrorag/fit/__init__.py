"""SED fitting: a fitter interface, a model specification in the rule vocabulary, and the refit loop.

Fitters are looked up by name with :func:`get_fitter`; :func:`fitter_names` lists them.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigError
from .base import FitError, FitResult, Fitter, SamplerOptions
from .spec import ModelSpec, NotAModelChange, apply_action, baseline


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


__all__ = ["FitError", "FitResult", "Fitter", "ModelSpec", "NotAModelChange", "SamplerOptions",
           "apply_action", "baseline", "fitter_names", "get_fitter"]
