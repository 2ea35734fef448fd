"""Rest-frame wavelength regions (micron) in which residuals and symptoms are read: part of the rule
vocabulary (``resid_uv``, ``mir_underestimated``), which the SED diagnostics measure against.

The boundaries follow the usual split of galaxy SEDs: the UV up to the Balmer/4000 A break region,
the optical to 1 micron, the near-IR stellar bump to 3 micron, hot-dust mid-IR to 30 micron, cold-dust
far-IR beyond.
"""

from __future__ import annotations

REGIONS: dict[str, tuple[float, float]] = {
    "uv": (0.0912, 0.40), "optical": (0.40, 1.0), "nir": (1.0, 3.0), "mir": (3.0, 30.0), "fir": (30.0, 1000.0),
}
