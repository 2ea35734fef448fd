import json

import pytest

from astrorag.errors import InputError
from astrorag.ingest.records import read_files
from conftest import DATA


def test_arxiv_jsonl_records():
    result = read_files([DATA / "abstracts_small.jsonl"])
    assert len(result.documents) == 40 and not result.problems
    doc = next(d for d in result.documents if d.doc_id == "2505.06965")
    assert doc.title == "Black Hole Envelopes in Little Red Dots"
    assert doc.year == 2025 and doc.url == "https://arxiv.org/abs/2505.06965"
    assert "astro-ph.GA" in doc.categories and doc.source == "arxiv"


def test_ads_response_records_all_28_with_ids():
    result = read_files([DATA / "ads_solr_response.json"])
    assert len(result.documents) == 28 and not result.problems
    by_id = {d.doc_id: d for d in result.documents}
    # ADS records carrying an arXiv identifier are keyed by it, and keep their bibcode.
    mg2 = by_id["0705.0706"]
    assert mg2.bibcode == "2007ApJ...669..741S" and mg2.doi == "10.1086/521525"
    assert mg2.authors[0].startswith("Sudilovsky") and mg2.year == 2007 and mg2.source == "ads"
    gcn = by_id["2012GCN..13229...1S"]  # title only, still kept
    assert gcn.abstract == "" and gcn.title.startswith("GRB120404A")


def test_csv_records(tmp_path):
    path = tmp_path / "papers.csv"
    path.write_text("arxiv_id,title,abstract,published,categories\n"
                    "2401.09981,A census of LRDs,Red compact sources.,2024-01-18,astro-ph.GA;astro-ph.CO\n"
                    "2404.03576,Slopes,Balmer break slopes.,2024,astro-ph.GA\n"
                    "bad,Too,many,fields,here,extra\n")
    result = read_files([path])
    assert [d.doc_id for d in result.documents] == ["2401.09981", "2404.03576"]
    assert result.documents[0].categories == ("astro-ph.GA", "astro-ph.CO")
    assert [(p.line, "more fields" in p.reason) for p in result.problems] == [(4, True)]


def test_bad_lines_are_named_and_good_lines_kept(tmp_path):
    path = tmp_path / "mixed.jsonl"
    good = {"id": "2401.09981", "title": "LRDs", "abstract": "Red dots."}
    path.write_text("\n".join([json.dumps(good), "{not json", json.dumps({"abstract": "no title"}),
                               json.dumps({"id": "x", "title": "t", "abstract": "a", "published": "soon"}),
                               "[1, 2]"]) + "\n")
    result = read_files([path])
    assert [d.doc_id for d in result.documents] == ["2401.09981"]
    reasons = {p.line: p.reason for p in result.problems}
    assert set(reasons) == {2, 3, 4, 5}
    assert "not valid JSON" in reasons[2] and "no title" in reasons[3]
    assert "four-digit year" in reasons[4] and "expected an object" in reasons[5]
    assert str(result.problems[0]).startswith(f"{path}:2:")


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = read_files([empty])
    assert not result.documents and "empty" in result.problems[0].reason
    with pytest.raises(InputError, match="does not exist"):
        read_files([tmp_path / "nope.jsonl"])
    odd = tmp_path / "notes.txt"
    odd.write_text("x")
    with pytest.raises(InputError, match="unsupported file type .txt"):
        read_files([odd])
