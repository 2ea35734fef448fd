"""BibTeX of cited papers, keyed and shaped as NASA ADS writes them, for pasting into a paper.

A paper with a journal bibcode becomes ``@ARTICLE{<bibcode>, ...}`` with journal, volume and page read from
the bibcode; an arXiv-only paper becomes ``@MISC{<year>arXiv<yymmnnnnn><initial>, ...}`` with eprint,
archivePrefix and primaryClass, as ADS keys e-prints.

The records come from services and files astrorag does not control, so nothing reaches the .bib unchecked:
identifiers (DOI, bibcode, arXiv id, category, URL) must match their grammars or are left out with a note;
text is LaTeX-escaped, with braces written as ``\\textbraceleft{}`` (BibTeX counts ``\\{`` as a brace, so an
escaped brace could still close a field); inline math (``$...$``) is kept only when it uses math macros
from :data:`MATH_MACROS`, so ``$\\input{/etc/passwd}$`` is written as text, not run by LaTeX.
"""

from __future__ import annotations

import re

from .index.types import Document
from .types import bibcode_parts

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "{": r"\textbraceleft{}",
            "}": r"\textbraceright{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "$": r"\$"}
#: Control sequences inline math may use in a title; any other (``\input``, ``\write18``, ``\def``...) makes
#: the math plain text.
MATH_MACROS = frozenset(["alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega", "sim", "lesssim", "gtrsim", "approx", "simeq", "propto", "times", "cdot", "pm", "mp", "leq", "geq", "le", "ge", "lt", "gt", "neq", "ll", "gg", "odot", "oplus", "star", "prime", "rm", "mathrm", "text", "textrm", "it", "mathit", "bf", "mathbf", "sf", "cal", "mathcal", "log", "ln", "exp", "sqrt", "frac", "over", "left", "right", "mathring", "AA", "infty", "partial", "nabla", "int", "sum", "rightarrow", "leftarrow", "to", "ell", "hbar", "circ", "deg", "dot", "ddot", "bar", "hat", "tilde", "vec", "overline", "textit", "textbf", "mbox", "hbox", ",", ";", ":", "!", "quad", "qquad"])

DOI = re.compile(r"10\.\d{4,9}/[^\s{}\"\\%#,]+")
BIBCODE = re.compile(r"\d{4}[A-Za-z&.]{5}[A-Za-z0-9&.]{9}[A-Z.]")
ARXIV_ID = re.compile(r"\d{4}\.\d{4,5}(?:v\d+)?|[a-z-]+(?:\.[A-Z]{2})?/\d{7}(?:v\d+)?")
CATEGORY = re.compile(r"[a-z-]+(?:\.[A-Za-z-]+)?")
URL = re.compile(r"https?://[^\s{}\"\\%#]+")
_MATH = re.compile(r"(\$[^$]*\$)")
_MACRO = re.compile(r"\\([A-Za-z]+|.)")


# Control characters (NUL, ESC, DEL, C1) never reach the .bib; a record's newlines and tabs become spaces.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _escape_text(text: str) -> str:
    return "".join(_SPECIAL.get(ch, ch) for ch in _CONTROL.sub(" ", text))


def _safe_math(math: str) -> bool:
    """Math a title may keep: balanced braces and only the macros of :data:`MATH_MACROS`; no ``^^`` (TeX's
    character-code notation: ``^^5c`` is a backslash), no ``%`` (a comment), no ``#`` and no control character.

    >>> _safe_math("z^2"), _safe_math("^^5cinput^^7b/etc/passwd^^7d"), _safe_math("a % b")
    (True, False, False)
    """
    if "^^" in math or "%" in math or "#" in math or _CONTROL.search(math):
        return False
    depth = 0
    for ch in math:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0 and all(m in MATH_MACROS for m in _MACRO.findall(math))


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters, keeping inline math that uses only math macros.

    >>> latex_escape("M_* & SFR at $z\\\\sim 4$: 50% done")
    'M\\\\_* \\\\& SFR at $z\\\\sim 4$: 50\\\\% done'
    >>> latex_escape("$\\\\input{/etc/passwd}$ and }")
    '\\\\$\\\\textbackslash{}input\\\\textbraceleft{}/etc/passwd\\\\textbraceright{}\\\\$ and \\\\textbraceright{}'
    """
    parts = _MATH.split(" ".join(text.split()))
    return "".join(p if len(p) > 1 and p.startswith("$") and p.endswith("$") and _safe_math(p[1:-1]) else
                   _escape_text(p) for p in parts)


def _valid(pattern: re.Pattern, value: str | None) -> str | None:
    return value if value and pattern.fullmatch(value) else None


def citation_key(doc: Document) -> str:
    """The key ADS would give the paper: its bibcode, or the e-print bibcode of an arXiv-only paper.

    A paper without authors gets ``X`` for the initial (ADS writes ``.``, which some tools cut off).
    """
    bibcode = _valid(BIBCODE, doc.bibcode)
    if bibcode:
        return bibcode
    arxiv_id = _valid(ARXIV_ID, doc.arxiv_id)
    if arxiv_id and re.fullmatch(r"\d{4}\.\d{4,5}(?:v\d+)?", arxiv_id):
        base = arxiv_id.split("v")[0]
        number = base.replace(".", "").ljust(9, ".")
        initial = next((ch for ch in (doc.authors[0] if doc.authors else "") if ch.isalpha()), "X").upper()
        year = doc.year or 2000 + int(base[:2])
        return f"{year}arXiv{number}{initial}"
    return re.sub(r"[^A-Za-z0-9:._-]", "", doc.doc_id) or "paper"


def bibtex_entry(doc: Document) -> str:
    """One entry; identifiers that fail their grammar are left out and named in a ``note``.

    >>> d = Document.create(title="Little red dots at $z>4$", authors=("Kokorev, Vasily", "Labbe, Ivo"),
    ...                     year=2024, arxiv_id="2401.09981", categories=("astro-ph.GA",))
    >>> print(bibtex_entry(d))
    @MISC{2024arXiv240109981K,
           author = {{Kokorev}, Vasily and {Labbe}, Ivo},
            title = "{Little red dots at $z>4$}",
             year = 2024,
    archivePrefix = {arXiv},
           eprint = {2401.09981},
     primaryClass = {astro-ph.GA},
              url = {https://arxiv.org/abs/2401.09981}
    }
    """
    fields: list[tuple[str, str]] = []
    notes: list[str] = []
    if doc.authors:
        names = []
        for name in doc.authors:
            last, _, first = name.partition(",")
            names.append(f"{{{latex_escape(last.strip())}}}, {latex_escape(first.strip())}" if first
                         else f"{{{latex_escape(name.strip())}}}")
        fields.append(("author", "{" + " and ".join(names) + "}"))
    else:
        notes.append("the record astrorag ingested names no authors; take them from the paper")
    fields.append(("title", '"{' + latex_escape(doc.title) + '}"'))
    bibcode = _valid(BIBCODE, doc.bibcode)
    parts = bibcode_parts(bibcode or "")
    if parts:
        fields.append(("journal", "{" + _escape_text(parts[0]) + "}"))
    if isinstance(doc.year, int) and 1000 <= doc.year <= 9999:
        fields.append(("year", str(doc.year)))
    if parts:
        fields += [("volume", "{" + _escape_text(parts[1]) + "}")] if parts[1] else []
        fields += [("pages", "{" + _escape_text(parts[2]) + "}")] if parts[2] else []
    for label, value, pattern in (("DOI", doc.doi, DOI), ("bibcode", doc.bibcode, BIBCODE),
                                  ("arXiv id", doc.arxiv_id, ARXIV_ID)):
        if value and not _valid(pattern, value):
            notes.append(f"its {label} is not well formed and was left out")
    if _valid(DOI, doc.doi):
        fields.append(("doi", "{" + doc.doi + "}"))
    arxiv_id = _valid(ARXIV_ID, doc.arxiv_id)
    if arxiv_id:
        fields += [("archivePrefix", "{arXiv}"), ("eprint", "{" + arxiv_id + "}")]
        category = _valid(CATEGORY, doc.categories[0] if doc.categories else None)
        if category:
            fields.append(("primaryClass", "{" + category + "}"))
    if bibcode:
        fields.append(("adsurl", "{https://ui.adsabs.harvard.edu/abs/" + bibcode + "}"))
    elif url := _valid(URL, doc.url):
        fields.append(("url", "{" + url + "}"))
    if notes:
        fields.append(("note", "{astrorag: " + "; ".join(notes) + "}"))
    kind = "ARTICLE" if parts else "MISC"
    body = ",\n".join(f"{name:>13} = {value}" for name, value in fields)
    return f"@{kind}{{{citation_key(doc)},\n{body}\n}}"


def bibtex(docs: list[Document]) -> str:
    """Entries for several papers, each once, in the order given."""
    seen: set[str] = set()
    entries = []
    for doc in docs:
        if doc.doc_id not in seen:
            seen.add(doc.doc_id)
            entries.append(bibtex_entry(doc))
    return "\n\n".join(entries) + ("\n" if entries else "")
