"""One Document per paper: merge records of the same paper from ADS, arXiv and files."""

from __future__ import annotations

from ..index.types import Document


def merge_documents(old: Document, new: Document) -> Document:
    """Merge two records of one paper, keeping the arXiv id, the bibcode and ADS's citation count.

    Text fields keep the longer version (a full text beats an abstract); authors keep the longer list;
    the year comes from ADS (publication) when it has one; categories are united.

    >>> arx = Document.create(title="Little red dots", abstract="Long arXiv abstract.", arxiv_id="2401.09981",
    ...                       year=2024, categories=("astro-ph.GA",), source="arxiv")
    >>> ads = Document.create(title="Little red dots", abstract="Short.", bibcode="2024ApJ...968...38K",
    ...                       arxiv_id="2401.09981", citation_count=250, year=2024, source="ads")
    >>> m = merge_documents(arx, ads)
    >>> m.doc_id, m.bibcode, m.citation_count, m.abstract, m.source
    ('2401.09981', '2024ApJ...968...38K', 250, 'Long arXiv abstract.', 'ads+arxiv')
    """
    ads_side = new if new.source == "ads" else old if old.source == "ads" else None

    def longer(x: str, y: str) -> str:
        return y if len(y or "") > len(x or "") else x

    counts = [c for c in (old.citation_count, new.citation_count) if c is not None]
    sources = sorted(set(old.source.split("+")) | set(new.source.split("+")))
    return Document.create(
        title=longer(old.title, new.title), abstract=longer(old.abstract, new.abstract),
        body=longer(old.body, new.body),
        authors=old.authors if len(old.authors) >= len(new.authors) else new.authors,
        year=(ads_side.year if ads_side and ads_side.year else old.year or new.year),
        arxiv_id=old.arxiv_id or new.arxiv_id, bibcode=old.bibcode or new.bibcode, doi=old.doi or new.doi,
        categories=tuple(dict.fromkeys((*old.categories, *new.categories))), source="+".join(sources),
        citation_count=(ads_side.citation_count if ads_side and ads_side.citation_count is not None
                        else (max(counts) if counts else None)),
        published=old.published or new.published,
        url=None,
    )
