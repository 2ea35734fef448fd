"""Read photometry tables into arrays: fluxes in micro-Jansky, errors, upper limits, redshifts, models.

Formats: CSV (read in blocks with pyarrow; a malformed row is reported by line and skipped), ECSV and
FITS tables (astropy), Parquet, and CIGALE observation files (whitespace text, fluxes in mJy).

Column conventions, case-insensitive, per band (band = any name :func:`get_filter` knows):
``<band>_flux`` + ``<band>_fluxerr`` (Kokorev et al. 2024 style, uJy), ``f_<band>`` + ``e_<band>`` (EAZY,
uJy), ``mag_<band>`` + ``magerr_<band>`` (AB magnitudes) and ``<band>`` + ``<band>_err`` (CIGALE, mJy).
Missing values: -99, -99.9, NaN, empty or a non-positive error. A CIGALE-style negative error marks an
upper limit at the flux value. Model fluxes from a fit use the same band names (CIGALE's
``best.<band>`` columns are understood too).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..types import Problem
from .filters import Filter, get_filter
from .units import MAG_PER_LN, ab_to_ujy, parse_flux_unit, to_ujy_scale

ID_COLUMNS = ("id", "objid", "source_id", "object_id", "name")
Z_COLUMNS = ("redshift", "z_spec", "zspec", "z", "z_phot", "zphot", "z_best", "photo_z")
MISSING = (-99.0, -99.9, -999.0, 99.0)
DETECTION_SNR = 2.0
#: Far beyond the most distant galaxies known (z ~ 14); photometric-redshift codes search up to about 20.
MAX_REDSHIFT = 20.0


@dataclass
class BandColumns:
    band: Filter
    flux: str
    err: str | None
    kind: str  # "flux" or "mag"
    unit: str  # the unit as given (astropy spelling, or "abmag"); see astrorag.sed.units.parse_flux_unit
    alternates: list[tuple[str, str | None]] = field(default_factory=list)  # other columns of the same band


@dataclass
class Photometry:
    """Photometry of N sources in B bands, as arrays (the vectorised diagnostics work on these)."""

    ids: np.ndarray
    z: np.ndarray
    bands: list[Filter]
    flux: np.ndarray          # (N, B) uJy, NaN where missing
    err: np.ndarray           # (N, B) uJy, NaN where missing
    upper: np.ndarray         # (N, B) bool: flux is an upper limit, not a measurement
    lines: np.ndarray         # (N,) line (CSV) or row number the source came from
    model: np.ndarray | None = None  # (N, B) model fluxes in uJy from a fit, NaN where absent
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    #: the fraction of the flux added in quadrature to each error in a fit (see :meth:`source`)
    error_floor: float = 0.0

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def pivots(self) -> np.ndarray:
        return np.array([b.pivot_um for b in self.bands])

    def band_index(self, short: str) -> int | None:
        for i, b in enumerate(self.bands):
            if b.short == short.lower():
                return i
        return None

    def select(self, mask: np.ndarray) -> Photometry:
        return Photometry(self.ids[mask], self.z[mask], self.bands, self.flux[mask], self.err[mask],
                          self.upper[mask], self.lines[mask], None if self.model is None else self.model[mask],
                          {k: v[mask] for k, v in self.extras.items()}, self.problems, self.error_floor)

    # One source: a table of one row is what the advisor reports and the fitters fit.

    def source(self, i: int, error_floor: float | None = None) -> Photometry:
        """Source ``i`` alone, as a one-row table (small enough to send to a fit worker).

        ``error_floor`` is the fraction of the flux added in quadrature to each error where the source is
        fitted (:attr:`fit_err`); the diagnostics read the errors as measured.

        >>> from astrorag.sed.synthetic import population
        >>> one = population("lrd", 3, seed=1).source(2, error_floor=0.05)
        >>> measured = np.isfinite(one.err[0])
        >>> len(one), one.source_id, bool(np.all(one.fit_err[0][measured] > one.err[0][measured]))
        (1, 'lrd-2', True)
        """
        mask = np.arange(len(self)) == i
        if not mask.any():
            raise IndexError(f"source {i} of a table of {len(self)}")
        one = self.select(mask)
        one.problems = []
        if error_floor is not None:
            one.error_floor = float(error_floor)
        return one

    def _one(self) -> None:
        if len(self) != 1:
            raise ValueError(f"a table of {len(self)} sources, not one source: take one with .source(i)")

    @property
    def source_id(self) -> str:
        """The id of a one-source table."""
        self._one()
        return str(self.ids[0])

    @property
    def redshift(self) -> float:
        """The redshift of a one-source table (NaN when unknown)."""
        self._one()
        return float(self.z[0])

    @property
    def fit_err(self) -> np.ndarray:
        """Errors as a fit uses them: ``error_floor`` times the flux added in quadrature (uJy, NaN where missing)."""
        return np.sqrt(self.err.astype(float) ** 2 + (self.error_floor * np.abs(self.flux.astype(float))) ** 2)

    @property
    def curves(self) -> list[str]:
        """Each band's transmission-curve file ("" for a band known only by its pivot; fits leave it out)."""
        from .filters import curve_file

        return [str(curve_file(b) or "") for b in self.bands]

    @property
    def n_detected(self) -> int:
        """Bands of a one-source table measured above ``DETECTION_SNR`` sigma (fit errors)."""
        self._one()
        f, e = self.flux[0], self.fit_err[0]
        return int(np.sum(np.isfinite(f) & np.isfinite(e) & (e > 0) & (f > DETECTION_SNR * e)))

    def to_dict(self) -> dict:
        """A one-source table as JSON: bands, pivot wavelengths (um), fluxes, errors, limits, model (uJy)."""
        self._one()

        def clean(values) -> list[float | None]:
            return [float(v) if np.isfinite(v) else None for v in values]

        z = self.redshift
        return {"source_id": self.source_id, "redshift": z if np.isfinite(z) else None,
                "bands": [b.short for b in self.bands], "wavelength_um": [round(b.pivot_um, 4) for b in self.bands],
                "flux_ujy": clean(self.flux[0]), "error_ujy": clean(self.err[0]),
                "upper_limit": [bool(u) for u in self.upper[0]],
                "model_ujy": None if self.model is None else clean(self.model[0])}


def _band_of(name: str) -> Filter | None:
    try:
        return get_filter(name)
    except InputError:
        return None


def detect_columns(names: Sequence[str], flux_unit: str | None = None) -> tuple[list[BandColumns], list[str]]:
    """Map table columns to bands. Returns the band columns and the names that look like bands but are unknown."""
    lower = {n.lower(): n for n in names}
    found: dict[str, BandColumns] = {}
    unknown: list[str] = []

    def add(band_name: str, flux: str, err: str | None, kind: str, unit: str) -> None:
        band = _band_of(band_name)
        if band is None:
            unknown.append(flux)
        elif band.name not in found:
            found[band.name] = BandColumns(band, flux, err, kind, unit)
        elif kind == found[band.name].kind:
            found[band.name].alternates.append((flux, err))  # e.g. f606w and f606wu: fill gaps from either

    default_unit = flux_unit or "uJy"
    for low, orig in lower.items():
        if m := re.fullmatch(r"(.+)_flux", low):
            err = next((lower[c] for c in (f"{m[1]}_fluxerr", f"{m[1]}_flux_err", f"{m[1]}_err", f"{m[1]}_eflux")
                        if c in lower), None)
            add(m[1], orig, err, "flux", default_unit)
        elif m := re.fullmatch(r"f_(.+)", low):
            add(m[1], orig, lower.get(f"e_{m[1]}"), "flux", default_unit)
        elif m := re.fullmatch(r"mag_(.+)|(.+)_mag", low):
            b = m[1] or m[2]
            err = next((lower[c] for c in (f"magerr_{b}", f"{b}_magerr", f"emag_{b}", f"{b}_mag_err")
                        if c in lower), None)
            add(b, orig, err, "mag", "abmag")
    if not found:
        # CIGALE observation files: bare filter names in mJy with <filter>_err beside them.
        for low, orig in lower.items():
            if low.endswith("_err") or low in ID_COLUMNS or low in Z_COLUMNS:
                continue
            band = _band_of(orig)
            if band is not None and band.name not in found:
                found[band.name] = BandColumns(band, orig, lower.get(f"{low}_err"), "flux",
                                               flux_unit or "mJy")
    if flux_unit:
        parse_flux_unit(flux_unit)  # refuses an unknown unit with a message
    cols = sorted(found.values(), key=lambda c: c.band.pivot_um)
    return cols, unknown


def to_ujy(values: np.ndarray, errors: np.ndarray | None, kind: str, unit: str,
           column: str = "") -> tuple[np.ndarray, ...]:
    """Convert a band's values to uJy with astropy units; returns (flux, err, upper-limit mask)."""
    import astropy.units as u

    v = np.asarray(values, dtype=float)
    e = np.full_like(v, np.nan) if errors is None else np.asarray(errors, dtype=float)
    missing = ~np.isfinite(v) | np.isin(v, MISSING)
    parsed = parse_flux_unit(unit, column)
    if kind == "mag" or parsed == u.ABmag:  # a magnitude column, or one the table or --flux-unit says is AB
        flux = ab_to_ujy(v)
        err = flux * e / MAG_PER_LN
        missing |= v > 50
    else:
        scale = to_ujy_scale(parsed)
        flux, err = v * scale, e * scale
    upper = (err < 0) & (flux > 0) & ~missing  # CIGALE: a negative error marks an upper limit
    err = np.where(upper, np.nan, err)
    bad_err = ~np.isfinite(err) | (err <= 0) | np.isin(e, MISSING)
    flux = np.where(missing, np.nan, flux)
    err = np.where(missing | bad_err, np.nan, err)
    flux = np.where(~upper & ~missing & bad_err & (errors is not None), np.nan, flux)
    return flux, err, upper


def build(columns: dict[str, np.ndarray], lines: np.ndarray, flux_unit: str | None = None,
          z: float | None = None, problems: list[Problem] | None = None, strict_bands: bool = True,
          extras: Sequence[str] = ("compactness", "r_eff_50_phys"),
          units: dict[str, str] | None = None, source: str = "") -> Photometry:
    """Turn column arrays into a :class:`Photometry`.

    ``units`` are the columns' own units (ECSV/FITS); each band column is converted with its own unit, and
    ``flux_unit`` applies to columns that declare none.
    """
    units = units or {}
    names = list(columns)
    band_cols, unknown = detect_columns(names, flux_unit)
    unknown = [u for u in unknown if np.isfinite(_numeric(columns[u])).any() and
               not np.all(np.isin(_numeric(columns[u]), MISSING) | ~np.isfinite(_numeric(columns[u])))]
    if unknown and strict_bands:
        hints = []
        for u in unknown[:5]:  # a table of thousands of odd columns gets a message, not a megabyte
            try:
                get_filter(re.sub(r"^(f_|mag_)|(_flux|_mag)$", "", u, flags=re.IGNORECASE))
            except InputError as exc:
                hints.append(f"{u}: {exc}")
        more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
        raise InputError(f"{len(unknown)} column(s) name unknown filters: " + "; ".join(hints) + more +
                         ". Rename them to known band names (or drop them).")
    if not band_cols:
        raise InputError(f"no photometry columns found among {', '.join(names[:20])}...; expected "
                         f"<band>_flux/<band>_fluxerr, f_<band>/e_<band>, mag_<band>/magerr_<band> or CIGALE "
                         f"<band>/<band>_err columns with band names such as F444W")
    n = len(lines)
    lower = {c.lower(): c for c in names}
    id_col = next((lower[c] for c in ID_COLUMNS if c in lower), None)
    ids = _ids(columns[id_col]) if id_col else np.array([f"row{l}" for l in lines])
    problems = problems if problems is not None else []
    unphysical = np.zeros(n, dtype=bool)
    if z is not None:
        check_redshift(z)
        zs = np.full(n, float(z))
    else:
        z_col = next((lower[c] for c in Z_COLUMNS if c in lower), None)
        zs = _numeric(columns[z_col]) if z_col else np.full(n, np.nan)
        zs = np.where(np.isin(zs, MISSING), np.nan, zs)
        unphysical = np.isfinite(zs) & ((zs < 0) | (zs > MAX_REDSHIFT))
        for i in np.flatnonzero(unphysical):
            problems.append(Problem(source, int(lines[i]), f"redshift {zs[i]:g} is not physical (0 <= z <= "
                                                       f"{MAX_REDSHIFT:g}); row skipped"))
    flux = np.empty((n, len(band_cols)))
    err = np.empty_like(flux)
    upper = np.zeros_like(flux, dtype=bool)
    for j, bc in enumerate(band_cols):
        e = _numeric(columns[bc.err]) if bc.err else None
        _check_error_unit(bc, units)
        flux[:, j], err[:, j], upper[:, j] = to_ujy(_numeric(columns[bc.flux]), e, bc.kind,
                                                    units.get(bc.flux, bc.unit), bc.flux)
        for alt_flux, alt_err in bc.alternates:
            gap = ~np.isfinite(flux[:, j]) & ~upper[:, j]
            if gap.any():
                af, ae, au = to_ujy(_numeric(columns[alt_flux]), _numeric(columns[alt_err]) if alt_err else None,
                                    bc.kind, units.get(alt_flux, bc.unit), alt_flux)
                flux[gap, j], err[gap, j], upper[gap, j] = af[gap], ae[gap], au[gap]
    extra = {k: _numeric(columns[lower[k]]) for k in extras if k in lower}
    phot = Photometry(ids, zs, [bc.band for bc in band_cols], flux, err, upper, np.asarray(lines), None, extra,
                      problems)
    return phot.select(~unphysical) if unphysical.any() else phot


def check_redshift(z: float) -> float:
    """A redshift given by hand must be physical.

    >>> check_redshift(-1)
    Traceback (most recent call last):
    ...
    astrorag.errors.InputError: redshift -1 is not physical: give 0 <= z <= 20 (or leave it out to use the table's column)
    """
    if not np.isfinite(z) or not 0 <= z <= MAX_REDSHIFT:
        raise InputError(f"redshift {z:g} is not physical: give 0 <= z <= {MAX_REDSHIFT:g} (or leave it out to use "
                         f"the table's column)")
    return float(z)


def _check_error_unit(bc: BandColumns, units: dict[str, str]) -> None:
    """An error column must be in the unit of its flux column (the conversion uses one factor for both)."""
    if bc.err and bc.err in units and bc.flux in units and units[bc.err] != units[bc.flux]:
        a, b = parse_flux_unit(units[bc.flux], bc.flux), parse_flux_unit(units[bc.err], bc.err)
        if a != b:
            raise InputError(f"column {bc.err} is in {units[bc.err]} but {bc.flux} is in {units[bc.flux]}; "
                             f"give a band's flux and error in one unit")


def _ids(values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        arr = arr.astype(np.int64)  # integer ids read as floats by a CSV parser
    return arr.astype(str)


def _numeric(values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "fiub":
        return arr.astype(float)
    out = np.full(arr.shape, np.nan)
    for i, v in enumerate(arr):
        try:
            out[i] = float(v) if v not in (None, "") else np.nan
        except (TypeError, ValueError):
            out[i] = np.nan
    return out


# ---- readers ------------------------------------------------------------------------------------------

def read_csv_block(data: bytes, header: list[str], first_line: int, path: str = "",
                   numeric: Sequence[str] | None = None) -> tuple[dict[str, np.ndarray], np.ndarray, list[Problem]]:
    """Parse CSV bytes (no header line) whose first line is ``first_line`` of the file.

    Rows with the wrong number of fields, or with text where a number belongs, are reported by line and
    dropped; everything else is returned as column arrays.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    problems: list[Problem] = []

    def on_invalid(row) -> str:
        line = first_line + row.number - 1 if row.number is not None else first_line
        problems.append(Problem(path, line, f"expected {row.expected_columns} fields, found {row.actual_columns}"))
        return "skip"

    # Line numbers of the rows pyarrow keeps: all non-blank lines but the invalid ones.
    raw_lines = data.split(b"\n")
    keep_lines = [first_line + i for i, l in enumerate(raw_lines) if l.strip()]
    table = pacsv.read_csv(io.BytesIO(data), read_options=pacsv.ReadOptions(column_names=header, use_threads=False),
                           parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
                           convert_options=pacsv.ConvertOptions(strings_can_be_null=True,
                                                                null_values=["", "nan", "NaN", "null", "--"]))
    bad_lines = {p.line for p in problems}
    lines = np.array([l for l in keep_lines if l not in bad_lines][:table.num_rows])
    cols: dict[str, np.ndarray] = {}
    drop = np.zeros(table.num_rows, dtype=bool)
    numeric = set(numeric) if numeric is not None else None
    for name in header:
        col = table.column(name)
        if pa.types.is_floating(col.type) or pa.types.is_integer(col.type) or pa.types.is_null(col.type):
            cols[name] = col.to_numpy(zero_copy_only=False).astype(float) if not pa.types.is_null(col.type) \
                else np.full(table.num_rows, np.nan)
            continue
        values = np.asarray(col.to_pylist(), dtype=object)
        if numeric is not None and name not in numeric:
            cols[name] = values
            continue
        parsed = _numeric(values)
        nonnum = np.array([v is not None and not np.isfinite(p) and str(v).strip().lower() not in ("nan", "inf")
                           for v, p in zip(values, parsed)])
        if numeric is None and nonnum.mean() > 0.5:
            cols[name] = values  # a text column (ids, field names)
            continue
        for i in np.flatnonzero(nonnum & ~drop):
            problems.append(Problem(path, int(lines[i]), f"column {name}: {values[i]!r} is not a number"))
        drop |= nonnum
        cols[name] = parsed
    if drop.any():
        cols = {k: v[~drop] for k, v in cols.items()}
        lines = lines[~drop]
    problems.sort(key=lambda p: p.line)
    return cols, lines, problems


def read_table(path: str | Path) -> tuple[dict[str, np.ndarray], np.ndarray, list[Problem], dict[str, str]]:
    """Read any supported table into column arrays, row/line numbers, problems and column units."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    suffix = path.suffix.lower()
    units: dict[str, str] = {}
    if suffix == ".csv":
        raw = path.read_bytes()
        if not raw.strip():
            raise InputError(f"{path} is empty")
        head, _, body = raw.partition(b"\n")
        header = next(csv.reader([head.decode("utf-8", "replace")]))
        cols, lines, problems = read_csv_block(body, header, 2, str(path))
        return cols, lines, problems, units
    if suffix in (".txt", ".dat", ".in", ".mag"):
        return (*_read_whitespace(path), units)
    # Everything else through astropy's reader registry, which knows FITS (also .fits.gz), ECSV, Parquet,
    # VOTable and HDF5 by name and content.
    from astropy.table import Table

    try:
        table = Table.read(path)
    except Exception as exc:
        raise InputError(f"{path}: cannot read as a table ({exc}); use .csv, .ecsv, .fits, .parquet, a VOTable "
                         f"or a CIGALE .txt/.dat file") from exc
    cols = {}
    for name in table.colnames:
        col = table[name]
        if getattr(col, "unit", None) is not None:
            units[name] = col.unit.to_string()
        data = col.filled(np.nan) if hasattr(col, "filled") and col.dtype.kind in "fi" else col
        cols[name] = np.asarray(data)
    return cols, np.arange(1, len(table) + 1), [], units


def _read_whitespace(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray, list[Problem]]:
    header: list[str] | None = None
    rows, lines, problems = [], [], []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        if text.startswith("#"):
            if header is None and len(text[1:].split()) > 2:
                header = text[1:].split()
            continue
        if header is None:
            header = text.split()
            continue
        fields = text.split()
        if len(fields) != len(header):
            problems.append(Problem(str(path), number, f"expected {len(header)} fields, found {len(fields)}"))
            continue
        rows.append(fields)
        lines.append(number)
    if header is None:
        raise InputError(f"{path}: no header line (a CIGALE file starts with '# id redshift <filters>...')")
    cols: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        values = np.array([r[j] for r in rows], dtype=object)
        parsed = _numeric(values)
        cols[name] = values if j == 0 or np.isnan(parsed).all() and len(values) else parsed
    return cols, np.array(lines), problems


def read_photometry(path: str | Path, z: float | None = None, flux_unit: str | None = None,
                    ids: Sequence[str] | None = None) -> Photometry:
    """Read a photometry file. ``z`` overrides the redshift column; ``ids`` keeps only those sources.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "phot.csv"
    >>> _ = p.write_text("id,z,f150w_flux,f150w_fluxerr,f444w_flux,f444w_fluxerr\\n"
    ...                  "a,6.5,0.05,0.01,0.9,0.02\\nb,7.1,oops,0.01,1.1,0.02\\n")
    >>> phot = read_photometry(p)
    >>> [str(i) for i in phot.ids], [b.short for b in phot.bands], phot.problems[0].line, phot.problems[0].reason
    (['a'], ['f150w', 'f444w'], 3, "column f150w_flux: 'oops' is not a number")
    """
    cols, lines, problems, units = read_table(path)
    phot = build(cols, lines, flux_unit, z, problems, units=units, source=str(path))
    if ids is not None:
        wanted = set(map(str, ids))
        mask = np.isin(phot.ids, list(wanted))
        missing = wanted - set(phot.ids[mask])
        if missing:
            import difflib

            close = difflib.get_close_matches(min(missing), list(phot.ids), n=3)
            raise InputError(f"no source with id {', '.join(sorted(missing))} in {path}"
                             f"{'; close ids: ' + ', '.join(close) if close else ''}")
        phot = phot.select(mask)
    return phot


def redshift_warnings(phot: Photometry) -> list[str]:
    """What a reader should know about the redshifts given: z = 0 (usually a failed photometric redshift),
    and redshifts below the LRD criteria's range.

    >>> p = Photometry(["a", "b"], np.array([0.0, 1.2]), ["f444w"], np.ones((2, 1)), np.ones((2, 1)),
    ...                np.zeros((2, 1), bool), np.array([2, 3]), None, {}, [])
    >>> print("\\n".join(redshift_warnings(p)))
    warning: source a has z = 0, which is usually a failed photometric redshift: check it (or give --z)
    warning: source(s) a, b are at z < 2, where the LRD criteria do not apply: they are not flagged
    """
    from .criteria import LRD_MIN_REDSHIFT

    z = np.asarray(phot.z, dtype=float)
    ids = [str(i) for i in phot.ids]
    out = [f"warning: source {ids[i]} has z = 0, which is usually a failed photometric redshift: check it (or "
           f"give --z)" for i in np.flatnonzero(z == 0)[:5]]
    low = np.flatnonzero(np.isfinite(z) & (z < LRD_MIN_REDSHIFT))
    if len(low):
        shown = ", ".join(ids[i] for i in low[:5]) + (f" and {len(low) - 5} more" if len(low) > 5 else "")
        out.append(f"warning: source(s) {shown} are at z < {LRD_MIN_REDSHIFT:g}, where the LRD criteria do not "
                   f"apply: they are not flagged")
    return out


def load_source(path: str | Path, source_id: str | None = None, z: float | None = None,
                flux_unit: str | None = None, model_fluxes: str | Path | None = None) -> Photometry:
    """One source for the advisor: ``source_id``, or the first readable row; model fluxes attached if given.

    Returns an empty Photometry (with the read problems) when no row could be read.
    """
    phot = read_photometry(path, z=z, flux_unit=flux_unit, ids=[source_id] if source_id else None)
    if len(phot) == 0:
        return phot
    if not source_id:
        phot = phot.select(np.arange(len(phot)) == 0)
    if model_fluxes:
        phot = attach_model(phot, model_fluxes, flux_unit)
    return phot


def attach_model(phot: Photometry, path: str | Path, flux_unit: str | None = None) -> Photometry:
    """Attach model fluxes from a fit: CIGALE results (``best.<band>`` in mJy) or any per-band table."""
    cols, lines, problems, units = read_table(path)
    renamed = {}
    for name, values in cols.items():
        low = name.lower()
        if low.startswith("best.") and _band_of(name[5:]) is not None:
            renamed[name[5:]] = values  # CIGALE results.fits/txt: best.<filter>, mJy
        else:
            renamed[name] = values
    is_cigale = any(n.lower().startswith("best.") for n in cols)
    units = {(k[5:] if k.lower().startswith("best.") else k): v for k, v in units.items()}
    unit = flux_unit or ("mJy" if is_cigale else None)
    model = build(renamed, lines, unit, z=0.0, problems=problems, strict_bands=False, units=units)
    index = {str(i): k for k, i in enumerate(model.ids)}
    out = np.full_like(phot.flux, np.nan)
    for j, band in enumerate(phot.bands):
        mj = next((k for k, b in enumerate(model.bands) if b.name == band.name), None)
        if mj is None:
            continue
        for i, sid in enumerate(phot.ids):
            k = index.get(str(sid), 0 if len(model.ids) == 1 else None)
            if k is not None:
                out[i, j] = model.flux[k, mj]
    if np.isnan(out).all():
        raise InputError(f"{path}: no model fluxes match the photometry's sources and bands")
    phot.model = out
    return phot
