"""A llama-index retriever over an astrorag index: fused dense + BM25 retrieval, filters, rules as nodes.

Plug it into any llama-index query engine::

    from llama_index.core.query_engine import RetrieverQueryEngine
    from astrorag.integrations.llama_index import AstroragRetriever

    retriever = AstroragRetriever(Settings(), k=6, year_min=2024)
    engine = RetrieverQueryEngine.from_args(retriever, llm=your_llm)
    print(engine.query("What powers little red dots?"))

Each passage is a ``TextNode`` whose id is astrorag's content-hash chunk id and whose metadata carry the
paper's arXiv id, bibcode, title, year and URL; each matching SED-fitting rule is a node too (``kind`` =
"rule", with its papers for and against). Scores are astrorag's fused scores.
"""

from __future__ import annotations

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from ..index.types import Evidence, Filters, QueryParams
from ..settings import Settings


def evidence_to_node(evidence: Evidence) -> NodeWithScore:
    """One piece of astrorag evidence as a llama-index node with its score."""
    if evidence.kind == "rule":
        metadata = {"kind": "rule", "rule_id": evidence.rule_id, "title": evidence.title,
                    "papers": list(evidence.papers), "papers_against": list(evidence.papers_against),
                    "dissent": evidence.dissent}
        node_id = f"rule:{evidence.rule_id}"
    else:
        metadata = {"kind": "passage", "doc_id": evidence.doc_id, "arxiv_id": evidence.arxiv_id,
                    "bibcode": evidence.bibcode, "title": evidence.title, "year": evidence.year,
                    "url": evidence.url, "authors": list(evidence.authors)[:5]}
        node_id = evidence.chunk_id or evidence.doc_id or evidence.key
    # Keep identifiers out of the text the LLM sees twice: llama-index prints metadata with the text by default.
    node = TextNode(id_=node_id, text=evidence.text, metadata={k: v for k, v in metadata.items() if v not in (None, [])},
                    excluded_embed_metadata_keys=["authors", "url", "papers_against", "dissent"],
                    excluded_llm_metadata_keys=["authors", "url"])
    return NodeWithScore(node=node, score=float(evidence.fused_score))


class AstroragRetriever(BaseRetriever):
    """A llama-index ``BaseRetriever`` backed by an astrorag index.

    Parameters
    ----------
    settings : Settings
        Which index to open (``index_dir``, ``index_name``) and the retrieval defaults.
    k : int, optional
        Passages per query (default: the setting).
    mode : str, optional
        ``fused`` (default), ``dense`` or ``bm25``.
    year_min, year_max : int, optional
        Publication-year filter.
    category : str, optional
        arXiv category (``astro-ph.GA``) or archive (``astro-ph``).
    rules : int, optional
        How many matching SED-fitting rules to add as nodes (0: none; default: the setting).

    Examples
    --------
    >>> retriever = AstroragRetriever(Settings(), k=3)  # doctest: +SKIP
    >>> [n.node.metadata["arxiv_id"] for n in retriever.retrieve("Balmer break")]  # doctest: +SKIP
    """

    def __init__(self, settings: Settings, k: int | None = None, mode: str | None = None,
                 year_min: int | None = None, year_max: int | None = None, category: str | None = None,
                 rules: int | None = None):
        from ..assistant import Assistant

        super().__init__()
        filters = Filters(year_min, year_max, category) if (year_min or year_max or category) else None
        self.params = QueryParams(k=k, mode=mode, filters=filters, graph_rules=rules)
        # The extractive backend: retrieval needs no language model, and none is probed.
        self._assistant = Assistant(settings, backend="extractive")

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        evidence = self._assistant.retrieve(query_bundle.query_str, self.params)
        return [evidence_to_node(e) for e in evidence]

    def close(self) -> None:
        self._assistant.close()
