import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA
from fake_ollama import FakeOllama

from astrorag.errors import InputError
from astrorag.graph import vocabulary as vocab
from astrorag.graph.distill import distill, rule_schema
from astrorag.graph.learn import learn, read_fitlog
from astrorag.graph.model import RuleGraph, graph_path, load_graph, load_seed_rules
from astrorag.graph.retrieve import graph_search
from astrorag.index.types import Chunk, Document
from astrorag.llm.base import LLMBackend
from astrorag.llm.ollama_backend import OllamaBackend

ATTENUATION = {"E_BV_lines", "E_BV_factor", "powerlaw_slope", "Av_ISM", "uv_bump_amplitude", "EBV"}


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "astrorag", *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, **(env or {})))


def test_rules_list_json_has_40_cited_in_vocabulary_seed_rules(tmp_path):
    run = _cli("rules", "list", "--json", env={"ASTRORAG_INDEX_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr
    rules = json.loads(run.stdout)
    seeds = [r for r in rules if r["origin"] == "seed"]
    assert len(seeds) >= 40
    for r in seeds:
        assert {"rule_id", "condition", "action", "confidence", "origin", "citations"} <= set(r)
        assert r["citations"], r["rule_id"]
        assert all(s in vocab.SYMPTOMS for s in r["condition"])
        p, m = r["action"]["parameter"], r["action"]["module"]
        assert p is None or p in vocab.parameter_names()
        assert m is None or m in vocab.MODULES
        if p and m:
            assert p in vocab.MODULES[m] or m in vocab.EXTENSIONS.get(p, ()), r["rule_id"]
    # The seed file covers the topics the project promises.
    params = {r["action"]["parameter"] for r in seeds}
    assert {"E_BV_lines", "powerlaw_slope", "fracAGN", "logU", "age_main", "umin", "redshift"} <= params
    interps = {i for r in seeds for i in r["supports"]}
    assert {"dust_reddened_agn", "compact_dusty_starburst", "dense_gas_balmer_break"} <= interps


def test_seed_citations_are_only_verified_references():
    verified = set((Path(__file__).parent / "data" / "verified_arxiv_ids.txt").read_text().split())
    for rule in load_seed_rules():
        assert set(rule.citations) | set(rule.contradicted_by) <= verified, rule.rule_id


def test_validation_rejects_unknown_names_with_suggestions():
    with pytest.raises(InputError, match="did you mean fracAGN"):
        vocab.validate_parameter("fracAGNN")
    with pytest.raises(InputError, match="not in module 'dl2014'.*dustatt_modified_starburst"):
        vocab.validate_parameter("E_BV_lines", "dl2014")
    assert vocab.validate_symptom("Balmer break") == "strong_balmer_break"
    assert vocab.validate_parameter("AGN fraction") == "fracAGN"


def test_save_is_deterministic_and_round_trips(tmp_path):
    a, b = RuleGraph.from_seeds(), RuleGraph.from_seeds()
    a.save(tmp_path / "a.json")
    b.save(tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    loaded = RuleGraph.load(tmp_path / "a.json")
    assert loaded.to_json() == a.to_json()
    assert [r.to_dict() for r in loaded.rules()] == [r.to_dict() for r in a.rules()]
    counts = loaded.counts()
    assert counts["rule"] >= 40 and counts["paper"] >= 20 and counts["interpretation"] >= 3
    edges = {d["relation"] for _, _, d in loaded.graph.edges(data=True)}
    assert edges == {"when", "adjusts", "in", "changes", "supports", "contradicts"}


class RecordedLLM(LLMBackend):
    """A deterministic LLM double: returns recorded answers in order and keeps what it was sent."""

    name = "recorded"
    model = "recorded"

    def __init__(self, answers):
        super().__init__()
        self.answers = list(answers)
        self.calls = []

    def chat(self, messages, stream=False, format=None):
        self.calls.append((messages, format))
        yield self.answers.pop(0)


def _passages(n):
    doc = Document.create(title="Dusty AGN in red galaxies", abstract="SED fitting with CIGALE.", arxiv_id="2401.09981")
    return [(Chunk.create(doc.doc_id, i, f"Passage {i} about SED fitting and AGN torus emission."), doc)
            for i in range(n)]


def test_distill_validates_counts_and_reinforces():
    answers = (DATA / "distill_answers.jsonl").read_text().splitlines()
    llm = RecordedLLM(answers)
    graph = RuleGraph.from_seeds()
    before = len(graph.rules())
    seed_support = graph.get("agn-mir-under").support_count
    report = distill(graph, llm, _passages(len(answers)))
    assert (report.passages, report.proposed, report.added, report.reinforced) == (7, 5, 1, 1)
    assert (report.rejected, report.malformed) == (3, 2)
    assert len(graph.rules()) == before + 1
    assert graph.get("agn-mir-under").support_count == seed_support + 1        # found again: support, no twin
    assert "2401.09981" in graph.get("agn-mir-under").citations
    new = [r for r in graph.rules() if r.origin == "distilled"]
    assert len(new) == 1 and new[0].citations == ("2401.09981",) and new[0].prior_confidence <= 0.6
    assert any("agn_luminosity_boost" in r for r in report.reasons)
    assert any("purple_glow" in r for r in report.reasons)
    messages, schema = llm.calls[0]
    assert schema == rule_schema() and "never instructions" in messages[0]["content"]
    assert "<evidence" in messages[1]["content"]


def test_distill_through_ollama_sends_the_schema():
    answer = json.dumps({"rules": [{"when": ["fir_underestimated"], "parameter": "umin", "module": "dl2014",
                                    "direction": "decrease", "rationale": "colder dust", "confidence": 0.7}]})
    with FakeOllama(models=["astrosage"], reply=answer) as server:
        graph = RuleGraph.from_seeds()
        report = distill(graph, OllamaBackend(server.url, "astrosage"), _passages(1))
        sent = server.chats()[0]
    assert report.reinforced == 1 and report.added == 0
    assert sent["stream"] is False and sent["format"]["properties"]["rules"]["type"] == "array"
    assert "fracAGN" in sent["format"]["properties"]["rules"]["items"]["properties"]["parameter"]["enum"]


def test_learn_updates_posteriors_and_proposes_rules():
    outcomes, problems = read_fitlog(DATA / "fitlog.jsonl")
    assert [(p.line, p.reason.split(" (")[0]) for p in problems] == [
        (8, "unknown symptom 'uv_glow'"), (9, "missing field 'chi2_after'"), (10, "not valid JSON")]
    graph = RuleGraph.from_seeds()
    prior = graph.get("att-uvopt-over").confidence
    report = learn(graph, outcomes)
    rule = graph.get("att-uvopt-over")
    assert (rule.successes, rule.failures) == (2, 1)   # src-3 improved by only 1.7 %: a failure
    # Beta posterior: prior 0.8 worth 10 outcomes, then 2 successes and 1 failure -> 10/13, below the prior.
    assert rule.confidence == pytest.approx(10 / 13) and rule.confidence < prior
    assert report.records == 7 and report.successes == 5 and report.failures == 2
    assert len(report.learned) == 1
    learned = graph.get(report.learned[0])
    assert learned.origin == "learned" and learned.action.parameter == "metallicity"
    assert (learned.successes, learned.failures) == (3, 1)
    assert learned.condition == ("fir_overestimated", "nir_overestimated")


def test_cli_learn_persists_in_the_index(tmp_path):
    env = {"ASTRORAG_INDEX_DIR": str(tmp_path)}
    run = _cli("rules", "learn", str(DATA / "fitlog.jsonl"), env=env)
    assert run.returncode == 0, run.stderr
    assert "1 new learned rule" in run.stdout and f"skipped {DATA / 'fitlog.jsonl'}:10" in run.stderr
    assert graph_path(tmp_path / "default").is_file()
    rules = json.loads(_cli("rules", "list", "--json", "--origin", "learned", env=env).stdout)
    assert len(rules) == 1 and rules[0]["citations"] == []
    assert load_graph(tmp_path / "default").get("att-uvopt-over").successes == 2


def test_graph_search_links_questions_to_rules():
    graph = RuleGraph.from_seeds()
    hits = graph_search(graph, "why would E_BV_lines need to be higher for a little red dot?", limit=3)
    assert hits and all(m.rule.action.parameter in ATTENUATION for m in hits[:2])
    assert hits[0].rule.rule_id == "lrd-dusty-starburst"
    hits = graph_search(graph, "The mid-IR is badly underestimated by my fit", limit=1)
    assert hits[0].rule.action.parameter == "fracAGN"
    assert graph_search(graph, "What is the Hubble constant?") == []


def test_rules_graph_picture_and_show(tmp_path):
    out = tmp_path / "g.png"
    run = _cli("rules", "graph", "--out", str(out), "--around", "rule:att-uvopt-over",
               env={"ASTRORAG_INDEX_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    show = _cli("rules", "show", "att-uvopt-ovr", env={"ASTRORAG_INDEX_DIR": str(tmp_path)})
    assert show.returncode == 2 and "did you mean att-uvopt-over" in show.stderr


def test_ask_cites_an_attenuation_rule(small_settings):
    env = {"ASTRORAG_INDEX_DIR": str(small_settings.storage.index_dir)}
    run = _cli("ask", "my CIGALE fit overestimates the UV and optical bands, what should I change?",
               "--index", "small", "--backend", "extractive", "--json", env=env)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    rules = [c for c in data["citations"] if c["kind"] == "rule"]
    assert rules and rules[0]["rule_id"] == "att-uvopt-over" and rules[0]["papers"]
    graph = RuleGraph.from_seeds()
    assert graph.get(rules[0]["rule_id"]).action.parameter in ATTENUATION


# ---- CIGALE mechanics and the literature: each corrected rule stays corrected ---------------------

def _seed(rule_id):
    return RuleGraph.from_seeds().get(rule_id)


def test_no_seed_rule_breaks_cigale_mechanics():
    from astrorag.graph.mechanics import check_rule

    assert {r.rule_id: check_rule(r) for r in load_seed_rules() if check_rule(r)} == {}


def test_lines_vs_continuum_keeps_the_continuum_fixed():
    """dustatt_modified_starburst: continuum E(B-V) = E_BV_factor x E_BV_lines; the fix lowers the lines' E(B-V)
    at a fixed product (raising the factor alone would dim the continuum and deepen the optical deficit)."""
    from astrorag.graph.mechanics import check_rule, modified_starburst_ebv
    from astrorag.graph.types import Action, Rule

    rule = _seed("att-lines-vs-continuum")
    assert (rule.action.parameter, rule.action.direction) == ("E_BV_lines", "decrease")
    assert "E_BV_factor" in dict(rule.action.also)
    before, after = modified_starburst_ebv(0.5, 0.44), modified_starburst_ebv(0.3, 0.73)  # the rule's example
    assert after[0] < before[0] and after[1] == pytest.approx(before[1], abs=0.005)
    old = Rule("old", ("emission_line_excess", "optical_underestimated"),
               Action("increase", "E_BV_factor", "dustatt_modified_starburst"), "why", 0.5, ("1811.03094",), "seed")
    assert check_rule(old) and modified_starburst_ebv(0.5, 1.0)[1] > before[1]


def test_xray_rules_relax_the_alpha_ox_filter():
    for rule_id in ("agn-xray-weak", "lrd-xray-weak"):
        rule = _seed(rule_id)
        assert rule.action.parameter == "max_dev_alpha_ox" and rule.action.direction == "increase"
        assert "alpha_ox" in dict(rule.action.also) and "-2" in dict(rule.action.also)["alpha_ox"]


def test_fracagn_of_optical_light_sets_lambda_fracagn():
    for rule_id in ("lrd-reddened-agn", "lrd-bracket-hypotheses", "lrd-optical-deficit-agn", "lrd-mass-too-high"):
        assert dict(_seed(rule_id).action.also).get("lambda_fracAGN") == "0.4/0.7", rule_id
    torus_cap = _seed("lrd-flat-mir-limits-torus")
    assert torus_cap.action.direction == "check" and "lambda_fracagn = 0/0" in torus_cap.action.range.lower()


def test_polar_dust_stays_within_the_infrared_limits():
    from astrorag.graph.mechanics import LRD_MAX_AV, polar_av, range_bounds

    for rule in load_seed_rules():
        ranges = ([rule.action.range] if rule.action.parameter == "EBV" else []) + \
            [v for p, v in rule.action.also if p == "EBV"]
        for text in ranges:
            assert polar_av(range_bounds(text)[1]) <= LRD_MAX_AV + 0.1, rule.rule_id
    assert "2505.22600" in _seed("agn-polar-dust").citations


def test_dusty_starburst_reaches_barro_attenuation_and_checks_the_far_ir():
    from astrorag.graph.mechanics import range_bounds, stellar_av

    rule = _seed("lrd-dusty-starburst")
    assert stellar_av(range_bounds(rule.action.range)[0]) >= 3.0          # Barro et al.: A_V of 3 or more
    assert "far-IR" in rule.rationale and rule.contradicted_by == ("2505.22600",)


def test_uv_component_is_not_a_lightly_attenuated_burst():
    rule = _seed("lrd-uv-component")
    assert rule.action.parameter != "f_burst" and "scattered" in rule.action.change


def test_contested_claims_cite_each_side_correctly():
    assert "2405.01473" in _seed("lrd-dense-gas").contradicted_by
    assert {"2501.13082", "2409.07805"} <= set(_seed("lrd-dense-gas").citations)
    assert "2412.04557" in _seed("lrd-cliff").contradicted_by and "2412.04557" not in _seed("lrd-cliff").citations
    assert "2509.07100" in _seed("lrd-flat-mir-limits-torus").contradicted_by
    assert "dense_gas_balmer_break" in _seed("lrd-flat-mir-limits-torus").supports
    turnover = _seed("lrd-turnover-balmer-limit")
    assert "evolved stars" in turnover.rationale and "10^4 K" in turnover.rationale
    for rule_id in ("att-uvopt-over", "agn-mir-under", "phot-error-floor"):
        assert "2409.14807" not in _seed(rule_id).citations  # Mephisto's abstract does not make these claims
    broad = _seed("lrd-broad-line-band")
    assert broad.action.direction == "check" and "H-alpha" in broad.action.change
    for rule in load_seed_rules():
        assert rule.citations and not set(rule.citations) & set(rule.contradicted_by), rule.rule_id
        assert not rule.contradicted_by or rule.dissent, rule.rule_id


def test_contested_rules_say_so_in_the_cli_and_in_evidence(tmp_path):
    from astrorag.graph.retrieve import rule_text

    assert "CONTESTED by 2405.01473" in rule_text(_seed("lrd-dense-gas"))
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(tmp_path))
    shown = subprocess.run([sys.executable, "-m", "astrorag", "rules", "show", "lrd-cliff"], capture_output=True,
                           text=True, env=env, timeout=120)
    assert shown.returncode == 0 and "papers against: 2412.04557" in shown.stdout
    listed = subprocess.run([sys.executable, "-m", "astrorag", "rules", "list", "--json"], capture_output=True,
                            text=True, env=env, timeout=120)
    rules = {r["rule_id"]: r for r in json.loads(listed.stdout)}
    assert rules["lrd-cliff"]["papers_against"] == ["2412.04557"] and rules["lrd-cliff"]["contested"]
    assert all({"papers_for", "papers_against"} <= set(r) for r in rules.values())


def test_a_saved_graph_gets_the_corrected_seed_rules(tmp_path):
    """An index saved before a correction keeps its fit outcomes but not the wrong mechanics."""
    graph = RuleGraph.from_seeds()
    old = graph.get("att-lines-vs-continuum").to_dict()
    old["action"] = {"direction": "increase", "parameter": "E_BV_factor", "module": "dustatt_modified_starburst",
                     "range": "0.44 - 1.0", "change": "", "also": []}
    old["successes"] = 4
    graph.graph.remove_node("rule:att-lines-vs-continuum")
    from astrorag.graph.types import Rule

    graph._store(Rule.from_dict(old))
    graph.save(graph_path(tmp_path))
    refreshed = load_graph(tmp_path)
    loaded = refreshed.get("att-lines-vs-continuum")
    assert (loaded.action.parameter, loaded.action.direction, loaded.successes) == ("E_BV_lines", "decrease", 4)
    adjusts = [t for _, t, k in refreshed.graph.out_edges("rule:att-lines-vs-continuum", keys=True) if k == "adjusts"]
    assert adjusts == ["parameter:E_BV_lines"]                          # the old edge to E_BV_factor is gone
    # The question path reads the same rules without networkx.
    from astrorag.graph.rulebook import RuleBook

    book = RuleBook.load(tmp_path)
    assert [r.to_dict() for r in book.rules()] == [r.to_dict() for r in refreshed.rules()]
    assert book.get("att-lines-vs-continuum").successes == 4
    symptoms = {"uv_overestimated", "optical_overestimated"}
    assert [(m.rule.rule_id, m.score) for m in book.match(symptoms)] == \
        [(m.rule.rule_id, m.score) for m in refreshed.match(symptoms)]


def _record(source, success=True, **extra):
    rec = {"source_id": source, "symptoms": ["uv_overestimated", "optical_overestimated"],
           "action": {"parameter": "E_BV_lines", "module": "dustatt_modified_starburst", "direction": "increase"},
           "chi2_before": 10.0, "chi2_after": 2.0 if success else 9.9}
    rec.update(extra)
    return json.dumps(rec)


def test_concurrent_learns_lose_no_update_and_copies_count_once(tmp_path):
    import subprocess
    import sys

    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(tmp_path))
    files = []
    for run in range(4):
        path = tmp_path / f"fits{run}.jsonl"
        path.write_text("".join(_record(f"src-{run}-{i}") + "\n" for i in range(50)))
        files.append(path)
    procs = [subprocess.Popen([sys.executable, "-m", "astrorag", "rules", "learn", str(f)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for f in files]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    seed = RuleGraph.from_seeds().get("att-uvopt-over").successes
    assert load_graph(tmp_path / "default").get("att-uvopt-over").successes == seed + 200
    # 1,000 copies of one record, and the same file again: one piece of evidence
    copies = tmp_path / "copies.jsonl"
    copies.write_text((_record("src-copy") + "\n") * 1000)
    first = _cli("rules", "learn", str(copies), env={"ASTRORAG_INDEX_DIR": str(tmp_path)})
    again = _cli("rules", "learn", str(copies), env={"ASTRORAG_INDEX_DIR": str(tmp_path)})
    assert "999 repeated record(s)" in first.stdout and "1000 repeated record(s)" in again.stdout
    assert load_graph(tmp_path / "default").get("att-uvopt-over").successes == seed + 201
    assert "att-uvopt-over: confidence" in first.stdout and "rules undo" in first.stdout
    # undo puts back what the last learn changed (here: nothing, the repeat counted nothing)
    undo = _cli("rules", "undo", env={"ASTRORAG_INDEX_DIR": str(tmp_path)})
    assert undo.returncode == 0 and load_graph(tmp_path / "default").get("att-uvopt-over").successes == seed + 201
    undo = _cli("rules", "undo", env={"ASTRORAG_INDEX_DIR": str(tmp_path)})
    assert undo.returncode == 2 and "nothing to undo" in undo.stderr


def test_learn_undo_restores_the_confidences(tmp_path):
    env = {"ASTRORAG_INDEX_DIR": str(tmp_path)}
    log = tmp_path / "fits.jsonl"
    log.write_text("".join(_record(f"s{i}", success=False) + "\n" for i in range(20)))
    assert _cli("rules", "learn", str(log), env=env).returncode == 0
    lowered = load_graph(tmp_path / "default").get("att-uvopt-over").confidence
    undo = _cli("rules", "undo", env=env)
    assert undo.returncode == 0 and "att-uvopt-over: confidence" in undo.stdout
    restored = load_graph(tmp_path / "default").get("att-uvopt-over").confidence
    assert restored == pytest.approx(RuleGraph.from_seeds().get("att-uvopt-over").confidence) and restored > lowered
    # and the undone records count again when learned again
    assert "repeated" not in _cli("rules", "learn", str(log), env=env).stdout


def test_malformed_fit_records_are_named_by_line_and_the_good_ones_kept(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    lines = [_record("good-1"),
             _record("bad-1", symptoms=[1, 2]),
             _record("bad-2", action="increase"),
             deep,
             _record("bad-3", chi2_after=-1e308),
             _record("bad-4", symptoms=[]),
             _record("bad-5", chi2_before=float("nan")).replace("NaN", "NaN"),
             '"just a string"',
             _record("good-2")]
    log = tmp_path / "fits.jsonl"
    log.write_text("\n".join(lines) + "\n")
    outcomes, problems = read_fitlog(log)
    assert len(outcomes) == 2 and [p.line for p in problems] == [2, 3, 4, 5, 6, 7, 8]
    assert all(str(p).startswith(f"{log}:{p.line}: ") and "\n" not in str(p) for p in problems)
    reasons = [p.reason for p in problems]
    assert "symptoms.0" in reasons[0] and "action" in reasons[1] and "nested too deeply" in reasons[2]
    assert "chi2_after" in reasons[3] and "symptoms" in reasons[4] and "chi2_before" in reasons[5]
    assert "JSON object" in reasons[6]
    run = _cli("rules", "learn", str(log), env={"ASTRORAG_INDEX_DIR": str(tmp_path)})
    assert run.returncode == 0 and "Traceback" not in run.stderr and "2 fit records" in run.stdout
