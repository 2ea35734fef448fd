from astrorag.index.embedders import get_embedder
from astrorag.index.retrieve import Filters, Retriever
from astrorag.index.store import Index

LRD_PAPERS = {"2505.06965", "2506.04350", "2503.00998", "2505.09542", "2510.06408"}


def _retriever(settings):
    return Retriever(Index.open(settings), get_embedder(settings), settings)


def test_each_mode_finds_little_red_dot_papers(small_settings):
    r = _retriever(small_settings)
    for mode in ("dense", "bm25", "fused"):
        evidence = r.search("What powers little red dots?", k=5, mode=mode)
        assert len(evidence) == 5
        assert [e.key for e in evidence] == ["1", "2", "3", "4", "5"]
        assert len({e.doc_id for e in evidence} & LRD_PAPERS) >= 3, mode
    fused = r.search("little red dots black hole envelope", k=3, mode="fused")
    top = fused[0]
    assert set(top.ranks) <= {"dense", "bm25"} and top.fused_score > 0
    assert top.title and top.url.startswith("https://arxiv.org/abs/")


def test_title_query_finds_its_paper(small_settings):
    r = _retriever(small_settings)
    docs = r.index.documents()
    hits = 0
    for doc in list(docs.values())[:20]:
        hits += doc.doc_id in {e.doc_id for e in r.search(doc.title, k=5)}
    assert hits >= 19


def test_year_and_category_filters(small_settings):
    r = _retriever(small_settings)
    assert r.search("little red dots", k=5, filters=Filters(year_min=2026)) == []
    assert r.search("little red dots", k=5, filters=Filters(year_max=2024)) == []
    assert len(r.search("little red dots", k=5, filters=Filters(year_min=2025, year_max=2025))) == 5
    docs = r.index.documents()
    for mode in ("dense", "bm25"):
        ev = r.search("galaxies and stars", k=8, mode=mode, filters=Filters(category="astro-ph.SR"))
        assert ev and all("astro-ph.SR" in docs[e.doc_id].categories for e in ev)
        ev = r.search("galaxies", k=8, mode=mode, filters=Filters(category="gr-qc"))
        assert all(any(c == "gr-qc" for c in docs[e.doc_id].categories) for e in ev)


def test_dense_query_cache_matches_chroma(small_settings, embedder):
    """The derived exact cache gives Chroma's ranking (HNSW is exact at this size), filters included."""
    index = Index.open(small_settings)
    assert index.dense is not None and index.dense.usable()
    for query, kw in [("black hole envelopes in little red dots", {}), ("stellar streams", {"year_min": 2025}),
                      ("galaxies", {"category": "astro-ph.GA"})]:
        v = embedder.encode_query(query)
        cached = [h.chunk_id for h in index.dense.search(v, 8, **kw)]
        stored = [h.chunk_id for h in index.vectors.search(v, 8, **kw)]
        assert cached == stored
    index.close()


def test_llama_index_query_engine_runs_on_an_astrorag_retriever(small_settings):
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    from astrorag.integrations.llama_index import AstroragRetriever

    retriever = AstroragRetriever(small_settings, k=4, rules=2)
    try:
        engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM(max_tokens=8))
        response = engine.query("What powers little red dots?")
        nodes = response.source_nodes
        passages = [n for n in nodes if n.node.metadata["kind"] == "passage"]
        rules = [n for n in nodes if n.node.metadata["kind"] == "rule"]
        assert len(passages) >= 4 and 1 <= len(rules) <= 2
        assert all(n.node.metadata["arxiv_id"] and n.node.metadata["title"] and n.node.metadata["year"] for n in passages)
        assert all(n.node.node_id.startswith("rule:") and n.node.metadata["papers"] for n in rules)
        assert passages[0].score >= passages[-1].score > 0
        # The same passages as astrorag's own retrieval, in the same order.
        from astrorag.index.types import QueryParams

        own = retriever._assistant.retrieve("What powers little red dots?", QueryParams(k=4, graph_rules=2))
        assert [n.node.node_id for n in passages] == [e.chunk_id for e in own if e.kind == "chunk"]
        # A year filter reaches the index.
        future = AstroragRetriever(small_settings, k=5, rules=0, year_min=2099)
        assert future.retrieve("little red dots") == []
        future.close()
    finally:
        retriever.close()
