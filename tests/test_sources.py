import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from replay_server import Replay

from astrorag.errors import SourceError
from astrorag.index.store import Index
from astrorag.index.types import Document
from astrorag.ingest.ads_source import ingest_ads
from astrorag.ingest.arxiv_source import ingest_arxiv
from astrorag.ingest.fulltext import pdf_to_body
from astrorag.ingest.pipeline import ingest_documents

TOKEN = "test-token-not-a-secret-1234"


def _settings(settings, replay, **kw):
    return settings.replace(ads_url=replay.url + "/v1", arxiv_url=replay.url + "/api/query", http_backoff_s=0.0,
                            arxiv_delay_s=0.0, **kw)


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv("ADS_API_TOKEN", TOKEN)
    monkeypatch.delenv("ADS_DEV_KEY", raising=False)


def test_ads_pages_with_cursor_and_stores_all_28(settings, embedder, token):
    with Replay() as replay:
        s = _settings(settings, replay, ads_page_size=10)
        index = Index.open(s, create=True)
        report = ingest_ads('first_author:"Sudilovsky"', index, embedder, s, rows=100)
        assert index.count_documents() == 28 and report.fetched == 28 and report.pages == 3
        cursors = [p["cursorMark"] for path, p, _ in replay.requests]
        assert cursors == ["*", "c10", "c20"]
        fl = replay.requests[0][1]["fl"].split(",")
        assert {"bibcode", "title", "author", "abstract", "year", "pub", "doi", "identifier", "citation_count",
                "keyword"} <= set(fl)
        assert replay.requests[0][2]["Authorization"] == f"Bearer {TOKEN}"
        assert report.remaining == 4997
        again = ingest_ads('first_author:"Sudilovsky"', index, embedder, s, rows=100)
        assert index.count_documents() == 28 and again.ingest.added == 0 and again.ingest.unchanged == 28
        index.close()


def test_ads_retries_429_then_succeeds(settings, embedder, token):
    with Replay(fail_with=[429, 503]) as replay:
        s = _settings(settings, replay)
        index = Index.open(s, create=True)
        report = ingest_ads("q", index, embedder, s, rows=5)
        assert report.retries == 2 and report.fetched == 5 and index.count_documents() == 5
        index.close()
    with Replay(fail_with=[429] * 10) as replay:
        s = _settings(settings.replace(index_name="other"), replay, http_retries=2)
        index = Index.open(s, create=True)
        with pytest.raises(SourceError, match="HTTP 429.*rate limit"):
            ingest_ads("q", index, embedder, s, rows=5)
        index.close()


def test_ads_stops_before_the_daily_limit(settings, embedder, token):
    with Replay(rate_limit=13) as replay:
        s = _settings(settings, replay, ads_page_size=5, ads_min_remaining=10)
        index = Index.open(s, create=True)
        report = ingest_ads("q", index, embedder, s, rows=28)
        assert report.pages == 3 and report.remaining == 10 and "only 10 ADS requests remain" in report.stopped_early
        assert index.count_documents() == 15
        replay.remaining = 5000
        resumed = ingest_ads("q", index, embedder, s, rows=28)   # continues from the checkpointed cursor
        assert replay.requests[3][1]["cursorMark"] == "c15" and index.count_documents() == 28
        assert resumed.fetched == 28
        index.close()


def test_ads_without_token_names_both_variables(settings, embedder, monkeypatch, tmp_path):
    monkeypatch.delenv("ADS_API_TOKEN", raising=False)
    monkeypatch.delenv("ADS_DEV_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    index = Index.open(settings, create=True)
    with pytest.raises(SourceError, match="ADS_API_TOKEN.*ADS_DEV_KEY"):
        ingest_ads("q", index, embedder, settings)
    index.close()


def test_cli_ads_must_show_and_token_never_printed(tmp_path):
    with Replay() as replay:
        env = dict(os.environ, ASTRORAG_ADS_URL=replay.url + "/v1", ASTRORAG_INDEX_DIR=str(tmp_path),
                   ADS_API_TOKEN=TOKEN)
        cmd = [sys.executable, "-m", "astrorag", "ingest", "ads", "--query", 'first_author:"Sudilovsky"']
        counts = []
        for _ in range(2):
            run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
            assert run.returncode == 0, run.stderr
            assert TOKEN not in run.stdout + run.stderr
            info = subprocess.run([sys.executable, "-m", "astrorag", "index", "info", "--json"], env=env,
                                  capture_output=True, text=True, timeout=300)
            counts.append(json.loads(info.stdout)["documents"])
        assert counts == [28, 28]


def test_killed_ads_ingest_resumes_without_duplicates(tmp_path):
    with Replay(delay_s=0.4) as replay:
        env = dict(os.environ, ASTRORAG_ADS_URL=replay.url + "/v1", ASTRORAG_INDEX_DIR=str(tmp_path),
                   ADS_API_TOKEN=TOKEN, ASTRORAG_ADS_PAGE_SIZE="4", ASTRORAG_PROGRESS="false")
        cmd = [sys.executable, "-m", "astrorag", "ingest", "ads", "--query", "q", "--rows", "28"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ledger, stored, deadline = tmp_path / "default" / "ledger.sqlite", 0, time.time() + 120
        while time.time() < deadline and proc.poll() is None and stored < 8:
            if ledger.exists():
                try:
                    with sqlite3.connect(ledger, timeout=1) as db:
                        stored = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
                except sqlite3.OperationalError:
                    pass
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert 8 <= stored < 28
        first_run_requests = len(replay.requests)
        replay.delay_s = 0.0
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        resumed_from = replay.requests[first_run_requests][1]["cursorMark"]
        assert resumed_from != "*"                      # it continued from the checkpoint
        from astrorag.settings import Settings
        index = Index.open(Settings(index_dir=tmp_path))
        assert index.count_documents() == 28 and index.collection.count() == index.count_chunks()
        index.close()


def test_arxiv_pages_at_most_once_per_delay(settings, embedder):
    with Replay() as replay:
        s = _settings(settings, replay, arxiv_page_size=10).replace(arxiv_delay_s=0.2)
        index = Index.open(s, create=True)
        t0 = time.perf_counter()
        report = ingest_arxiv("testing", index, embedder, s, max_results=30)
        elapsed = time.perf_counter() - t0
        starts = [p["start"] for path, p, _ in replay.requests]
        assert starts == ["0", "10", "20"] and report.fetched == 30 and index.count_documents() == 30
        assert elapsed >= 0.4   # three requests, the client waited the delay between them
        index.close()


def test_arxiv_ids_empty_result_and_error_feed(settings, embedder):
    with Replay() as replay:
        s = _settings(settings, replay)
        index = Index.open(s, create=True)
        ingest_arxiv("", index, embedder, s, id_list=["astro-ph/0601001"])
        doc = index.documents()["astro-ph/0601001"]
        assert doc.source == "arxiv" and doc.authors and "astro-ph" in doc.categories[0]
        empty = ingest_arxiv("", index, embedder, s, id_list=["0808.05394"])
        assert empty.fetched == 0
        with pytest.raises(SourceError, match="HTTP 400.*malformed"):
            ingest_arxiv("", index, embedder, s.replace(http_retries=0), id_list=["abc"])
        index.close()


def test_ads_and_arxiv_records_merge_into_one(settings, embedder):
    ads_rec = Document.create(title="Intervening Metal Systems in GRB and QSO Sight Lines",
                              abstract="Short ADS abstract.", bibcode="2007ApJ...669..741S", arxiv_id="0705.0706",
                              doi="10.1086/521525", citation_count=42, year=2007, source="ads")
    arxiv_rec = Document.create(title="Intervening Metal Systems in GRB and QSO Sight Lines",
                                abstract="A longer abstract as posted on arXiv, with more detail.",
                                arxiv_id="0705.0706v2", year=2007, categories=("astro-ph",), source="arxiv")
    doi_only = Document.create(title="Dusty Mg II absorbers", abstract="ADS only, no arXiv identifier.",
                               bibcode="2009ApJ...699...56S", doi="10.1088/0004-637X/699/1/56", source="ads")
    doi_arxiv = Document.create(title="Dusty Mg II absorbers", abstract="The arXiv version of the paper text.",
                                arxiv_id="0904.3227", doi="10.1088/0004-637X/699/1/56", source="arxiv")
    index = Index.open(settings, create=True)
    ingest_documents(index, [ads_rec, doi_only], embedder, settings)
    ingest_documents(index, [arxiv_rec, doi_arxiv], embedder, settings)
    docs = index.documents()
    assert sorted(docs) == ["0705.0706", "0904.3227"]       # the bibcode-keyed record moved to its arXiv id
    merged = docs["0705.0706"]
    assert (merged.bibcode, merged.citation_count, merged.source) == ("2007ApJ...669..741S", 42, "ads+arxiv")
    assert merged.abstract.startswith("A longer abstract") and merged.categories == ("astro-ph",)
    assert docs["0904.3227"].bibcode == "2009ApJ...699...56S"
    again = ingest_documents(index, [ads_rec, arxiv_rec, doi_only, doi_arxiv], embedder, settings)
    assert again.added == 0 and again.chunks_written == 0 and index.count_documents() == 2
    assert index.collection.count() == index.count_chunks()
    index.close()


def _pdf(text_lines):
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(8.5, 11))
    for i, line in enumerate(text_lines):
        fig.text(0.05, 0.95 - i * 0.03, line, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="pdf")
    plt.close(fig)
    return buf.getvalue()


def test_fulltext_sections_and_bad_pdf(settings, embedder):
    lines = ["Little red dots in JWST surveys", "1 Introduction",
             *["Compact red sources at high redshift show V-shaped spectral energy distributions."] * 3,
             "2 Methods", *["We fit the photometry with CIGALE including an AGN torus component."] * 3,
             "References", "A. Author 2024, ApJ"]
    body = pdf_to_body(_pdf(lines))
    assert "## Introduction" in body and "## Methods" in body and "A. Author" not in body
    with Replay() as replay:
        s = _settings(settings, replay, arxiv_page_size=10)
        index = Index.open(s, create=True)
        calls = []

        def fetch(url):
            calls.append(url)
            return _pdf(lines) if len(calls) == 1 else b"%PDF-1.4 broken"

        report = ingest_arxiv("testing", index, embedder, s, max_results=10, fulltext=True, fetch_pdf=fetch)
        assert len(calls) == 10 and index.count_documents() == 10
        assert len(report.ingest.problems) == 9 and "full text skipped" in report.ingest.problems[0].reason
        sections = {c.section for c in index.chunks(index.chunk_ids()).values()}
        assert {"abstract", "Introduction", "Methods"} <= sections
        index.close()


@pytest.mark.live
def test_live_arxiv_lookup(settings, embedder):
    """Fetches one real record from export.arxiv.org (run with --live)."""
    index = Index.open(settings, create=True)
    ingest_arxiv("", index, embedder, settings, id_list=["2401.09981"])
    assert "2401.09981" in index.documents()
    index.close()


def test_citation_and_recency_weighting_reorders(settings, embedder):
    old_famous = Document.create(title="Little red dots are AGN", abstract="Little red dots host accreting black holes.",
                                 bibcode="2015ApJ...000..001A", year=2015, citation_count=900, source="ads")
    new_quiet = Document.create(title="Little red dots are AGN too", abstract="Little red dots host accreting black holes.",
                                bibcode="2025ApJ...000..002B", year=2025, citation_count=0, source="ads")
    index = Index.open(settings, create=True)
    ingest_documents(index, [old_famous, new_quiet], embedder, settings)
    index.close()
    from astrorag.index.retrieve import Retriever

    def top(s):
        r = Retriever(Index.open(s), embedder, s)
        return r.search("little red dots accreting black holes", k=2)[0].doc_id

    assert top(settings.replace(weight_citations=2.0)) == "2015ApJ...000..001A"
    assert top(settings.replace(weight_recency=2.0)) == "2025ApJ...000..002B"


def test_ads_token_never_in_messages_and_never_over_plain_http(settings, embedder, token):
    with Replay(echo_auth=400) as replay:
        index = Index.open(settings, create=True)
        with pytest.raises(SourceError) as err:
            ingest_ads("abs:x", index, embedder, _settings(settings, replay, http_retries=0), rows=5)
        index.close()
    assert "HTTP 400" in str(err.value) and TOKEN not in str(err.value) and "Bearer ***" in str(err.value)
    index = Index.open(settings, create=True)
    with pytest.raises(SourceError, match="refusing to send the ADS token to http://ads.example.org"):
        ingest_ads("abs:x", index, embedder, settings.replace(ads_url="http://ads.example.org/v1"), rows=5)
    index.close()
