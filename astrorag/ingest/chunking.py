"""Split documents into chunks with llama-index's sentence splitter; ids are content hashes."""

from __future__ import annotations

from functools import lru_cache

from ..index.types import Chunk, Document

# Changing how text is split? Bump CHUNKER_VERSION in astrorag.index.fingerprint, so old indexes are refused.


@lru_cache(maxsize=8)
def _splitter(chunk_size: int, chunk_overlap: int):
    from llama_index.core.node_parser import SentenceSplitter

    return SentenceSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)


def chunk_document(doc: Document, chunk_size: int = 256, chunk_overlap: int = 32) -> list[Chunk]:
    """Split a document's abstract and body into overlapping, sentence-aligned chunks.

    The abstract and each body section are split separately so that a chunk never straddles a
    section heading; the section name travels with the chunk.

    Examples
    --------
    >>> d = Document.create(title="T", abstract="One sentence. " * 400, arxiv_id="2401.09981")
    >>> chunks = chunk_document(d, chunk_size=128, chunk_overlap=16)
    >>> len(chunks) > 1 and all(c.doc_id == "2401.09981" for c in chunks)
    True
    """
    splitter = _splitter(chunk_size, chunk_overlap)
    parts: list[tuple[str, str]] = []
    if doc.abstract:
        parts.append(("abstract", doc.abstract))
    if doc.body:
        parts.extend(_sections(doc.body))
    if not parts:  # a title-only record (a GCN circular, say) is still findable by its title
        parts.append(("title", doc.title))
    chunks: list[Chunk] = []
    for section, text in parts:
        for piece in splitter.split_text(text):
            if piece.strip():
                chunks.append(Chunk.create(doc.doc_id, len(chunks), piece.strip(), section))
    return chunks


def _sections(body: str) -> list[tuple[str, str]]:
    """Split a body on lines of the form ``## Heading`` (how full-text ingest writes sections)."""
    sections: list[tuple[str, str]] = []
    name, lines = "body", []
    for line in body.splitlines():
        if line.startswith("## "):
            if any(l.strip() for l in lines):
                sections.append((name, "\n".join(lines)))
            name, lines = line[3:].strip() or "body", []
        else:
            lines.append(line)
    if any(l.strip() for l in lines):
        sections.append((name, "\n".join(lines)))
    return sections


def embedding_text(title: str, chunk: Chunk) -> str:
    """What is embedded and keyword-indexed for a chunk: its paper's title, then its text."""
    return f"{title}\n{chunk.text}"
