import json

import pytest
from conftest import DATA

from astrorag.errors import InputError
from astrorag.ingest.records import read_files


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


def test_one_bad_record_never_stops_a_file_and_each_says_its_line(tmp_path):
    """The malformed records a careless or hostile file holds: each is one problem naming file:line, the good
    records beside them are kept, and an over-long field is cut with a note."""
    import json

    from astrorag.ingest.records import MAX_FIELD_CHARS

    good = {"id": "2401.09981", "title": "Little red dots", "abstract": "Compact red sources."}
    lines = [json.dumps(good),
             '{"id": "2401.00001", "title": "Overflow", "citation_count": 1e999}',
             json.dumps({"id": "2401.00002", "title": "DOI object", "doi": {"value": "10.1/x"}}),
             json.dumps({"id": "2401.00003", "title": "Huge", "abstract": "dust " * 200_000}),
             json.dumps({"id": "2401.00004", "title": "Also good", "abstract": "Fine."})]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = read_files([path])
    assert [d.doc_id for d in result.documents] == ["2401.09981", "2401.00003", "2401.00004"]
    problems = [str(p) for p in result.problems]
    assert problems[0].startswith(f"{path}:2: citation_count") and "is not a count" in problems[0]
    assert problems[1].startswith(f"{path}:3: doi must be a string, got dict")
    assert MAX_FIELD_CHARS["abstract"] - 1 <= len(result.documents[1].abstract) <= MAX_FIELD_CHARS["abstract"]
    assert any(note.startswith(f"{path}:4: abstract cut from 1,000,000 to 100,000") for note in result.notes)
    # An ADS-shaped response whose response is not a table of docs.
    ads = tmp_path / "ads.json"
    ads.write_text('{"response": 5}')
    assert str(read_files([ads]).problems[0]).endswith(":1: an ADS response must hold response.docs, a list of "
                                                         "records")
    # A CSV field beyond Python's default 128 KiB is read; one beyond the bound is that row's problem only.
    table = tmp_path / "papers.csv"
    table.write_text("id,title,abstract\n2401.00005,Long,\"" + "x" * 200_000 + "\"\n"
                     "2401.00006,Too long,\"" + "y" * 4_100_000 + "\"\n2401.00007,After,fine\n")
    read = read_files([table])
    assert [d.doc_id for d in read.documents] == ["2401.00005", "2401.00007"]
    assert str(read.problems[0]).startswith(f"{table}:3: unreadable row") and "4,000,000" in str(read.problems[0])
