"""PDF to text with pypdf, split into sections where headings allow (written as ``## Heading`` lines)."""

from __future__ import annotations

import io
import re

from ..errors import InputError

#: "1 Introduction", "2. Methods", "3.1 Data", "INTRODUCTION", "Acknowledgements"...
HEADING = re.compile(r"^\s*(?:(\d{1,2}(?:\.\d{1,2})*)\.?\s+([A-Z][A-Za-z ,:&/()-]{2,60})|"
                     r"([A-Z][A-Z ]{3,40})|(Acknowledg(?:e)?ments?|References|Appendix(?: [A-Z])?))\s*$")
STOP = re.compile(r"^\s*(References|REFERENCES|Bibliography)\s*$")


def pdf_to_body(data: bytes) -> str:
    """Extract the text of a PDF and mark section headings; the reference list is dropped."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError) as exc:
        raise InputError(f"not a readable PDF ({exc})") from exc
    text = "\n".join(pages)
    if len(text.strip()) < 200:
        raise InputError("the PDF holds almost no extractable text (a scan?)")
    return split_sections(text)


def split_sections(text: str) -> str:
    """Mark lines that look like numbered or upper-case headings as ``## Heading``; stop at References.

    >>> print(split_sections("Title\\n1 Introduction\\nWe study LRDs.\\n2. Data\\nJWST.\\nReferences\\nA. B. 2024"))
    Title
    ## Introduction
    We study LRDs.
    ## Data
    JWST.
    """
    out = []
    for line in text.splitlines():
        if STOP.match(line):
            break
        m = HEADING.match(line)
        if m and len(line.split()) <= 8:
            name = (m.group(2) or m.group(3) or m.group(4)).strip()
            out.append(f"## {name.title() if name.isupper() else name}")
        else:
            out.append(line)
    return "\n".join(out)
