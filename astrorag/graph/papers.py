"""Who wrote a cited paper and when: the seed rules' papers by arXiv id (astrorag/data/papers.toml).

>>> paper_label("2503.16596")
'Naidu et al. 2025'
>>> paper_label("2999.00001")
'2999.00001'
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def papers() -> dict[str, dict]:
    """arXiv id -> {"authors": ..., "year": ...} for every paper the seed rules cite."""
    return tomllib.loads((resources.files("astrorag") / "data" / "papers.toml").read_text())


def paper_year(arxiv_id: str) -> int | None:
    entry = papers().get(arxiv_id)
    return int(entry["year"]) if entry else None


def paper_label(arxiv_id: str) -> str:
    """"Authors year" for a known paper, else the id itself (a distilled rule may cite any paper)."""
    entry = papers().get(arxiv_id)
    return f"{entry['authors']} {entry['year']}" if entry else arxiv_id


def cite(ids) -> str:
    """Ids with their authors and years: "2503.16596 (Naidu et al. 2025), ..."."""
    return ", ".join(f"{i} ({paper_label(i)})" if paper_label(i) != i else i for i in ids)
