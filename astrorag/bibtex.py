"""BibTeX of cited papers, keyed and shaped as NASA ADS writes them, for pasting into a paper.

A paper with a journal bibcode becomes ``@ARTICLE{<bibcode>, ...}`` with journal, volume and page read from
the bibcode; an arXiv-only paper becomes ``@MISC{<year>arXiv<yymmnnnnn><initial>, ...}`` with eprint,
archivePrefix and primaryClass, as ADS keys e-prints. Text is LaTeX-escaped outside ``$...$`` math.
"""

from __future__ import annotations

import re

from .types import Document

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
            "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters, leaving inline math (``$...$``) as written.

    >>> latex_escape("M_* & SFR at $z\\\\sim 4$: 50% done")
    'M\\\\_* \\\\& SFR at $z\\\\sim 4$: 50\\\\% done'
    """
    parts = re.split(r"(\$[^$]*\$)", " ".join(text.split()))
    return "".join(p if p.startswith("$") and p.endswith("$") and len(p) > 1 else
                   "".join(_SPECIAL.get(ch, ch) for ch in p) for p in parts)


def bibcode_parts(bibcode: str) -> tuple[str, str, str] | None:
    """(journal, volume, page) of a journal bibcode such as 2024ApJ...968...38K; None for e-prints."""
    if len(bibcode) != 19 or "arXiv" in bibcode:
        return None
    journal, volume, page = bibcode[4:9].strip("."), bibcode[9:13].strip("."), bibcode[14:18].strip(".")
    return (journal, volume, page) if journal else None


def citation_key(doc: Document) -> str:
    """The key ADS would give the paper: its bibcode, or the e-print bibcode of an arXiv-only paper."""
    if doc.bibcode:
        return doc.bibcode
    if doc.arxiv_id and re.fullmatch(r"\d{4}\.\d{4,5}", doc.arxiv_id):
        number = doc.arxiv_id.replace(".", "").ljust(9, ".")
        initial = (doc.authors[0].strip()[:1] if doc.authors else ".").upper()
        year = doc.year or 2000 + int(doc.arxiv_id[:2])
        return f"{year}arXiv{number}{initial}"
    return re.sub(r"[^A-Za-z0-9:._-]", "", doc.doc_id) or "paper"


def bibtex_entry(doc: Document) -> str:
    """One entry.

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
    if doc.authors:
        names = []
        for name in doc.authors:
            last, _, first = name.partition(",")
            names.append(f"{{{latex_escape(last.strip())}}}, {latex_escape(first.strip())}" if first
                         else f"{{{latex_escape(name.strip())}}}")
        fields.append(("author", "{" + " and ".join(names) + "}"))
    fields.append(("title", '"{' + latex_escape(doc.title) + '}"'))
    parts = bibcode_parts(doc.bibcode or "")
    if parts:
        fields.append(("journal", "{" + parts[0] + "}"))
    if doc.year:
        fields.append(("year", str(doc.year)))
    if parts:
        fields += [("volume", "{" + parts[1] + "}")] if parts[1] else []
        fields += [("pages", "{" + parts[2] + "}")] if parts[2] else []
    if doc.doi:
        fields.append(("doi", "{" + doc.doi + "}"))
    if doc.arxiv_id:
        fields += [("archivePrefix", "{arXiv}"), ("eprint", "{" + doc.arxiv_id + "}")]
        if doc.categories:
            fields.append(("primaryClass", "{" + doc.categories[0] + "}"))
    if doc.bibcode:
        fields.append(("adsurl", "{https://ui.adsabs.harvard.edu/abs/" + doc.bibcode + "}"))
    elif doc.url:
        fields.append(("url", "{" + doc.url + "}"))
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
