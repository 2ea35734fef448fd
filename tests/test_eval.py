import csv
import json
import os
import subprocess
import sys

import pytest
from fake_ollama import FakeOllama

from astrorag.evaluation.mcq import extract_choice, load_suite, predict_llm, run_mcq
from astrorag.evaluation.report import wilson_interval
from astrorag.llm.ollama_backend import OllamaBackend

MMLU = [["question", "choice0", "choice1", "choice2", "choice3", "answer"],
        ["Which planet has the strongest magnetic field?", "Mars", "Jupiter", "Venus", "Mercury", "1"],
        ["What powers the Sun?", "Fission", "Chemical burning", "Hydrogen fusion", "Gravitational collapse", "2"],
        ["Which is a dwarf planet?", "Pluto", "Titan", "Io", "Europa", "0"]]
ASTROQA = [["ID", "Question", "A", "B", "C", "D", "E", "Answer", "Parse"],
           ["1", "What lies flat on its orbital plane?", "Mercury", "Neptune", "Jupiter", "Saturn", "Uranus", "E", "x"],
           ["2", "Which are correct?", "a", "b", "c", "d", "e", "BD", "multi-select: skipped"],
           ["3", "Closest star to Earth?", "Sirius", "The Sun", "Vega", "Rigel", "Deneb", "B", "x"]]


def _write(path, rows):
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_formats_are_detected(tmp_path):
    qs, fmt, notes = load_suite(_write(tmp_path / "m.csv", MMLU))
    assert fmt == "mmlu" and [q.answer for q in qs] == [1, 2, 0]
    qs, fmt, notes = load_suite(_write(tmp_path / "a.csv", ASTROQA))
    assert fmt == "astroqa" and len(qs) == 2 and len(qs[0].options) == 5 and qs[0].answer == 4
    assert "multi-select" in notes[0] or "not a single option" in notes[0]
    bench = tmp_path / "astrobench.jsonl"
    bench.write_text(json.dumps({"question_id": "q1", "question": "What is a pulsar?",
                                 "A": "A neutron star", "B": "A comet", "C": "A planet", "D": "A galaxy"}) + "\n")
    qs, fmt, _ = load_suite(bench)
    assert fmt == "astrobench" and qs[0].answer is None and qs[0].options[0] == "A neutron star"


def test_answer_extraction():
    opts = ["Mars", "Jupiter", "Venus", "Mercury"]
    assert extract_choice("Answer: B", opts) == 1
    assert extract_choice("The correct option is (D) because...", opts) == 3
    assert extract_choice("I think it is Jupiter.", opts) == 1
    assert extract_choice("a planet, maybe", opts) is None
    assert wilson_interval(0, 10)[0] == 0.0


@pytest.mark.parametrize("rows,name", [(MMLU, "mmlu.csv"), (ASTROQA, "astroqa.csv")])
def test_cli_scores_unseen_suites_offline(small_settings, tmp_path, rows, name):
    suite = _write(tmp_path / name, rows)
    out = tmp_path / "report"
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(small_settings.storage.index_dir), ASTRORAG_INDEX_NAME="small")
    run = subprocess.run([sys.executable, "-m", "astrorag", "eval", "mcq", "--suite", str(suite), "--out", str(out),
                          "--quiet"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "retrieval-only" in run.stderr and "accuracy" in run.stdout
    report = json.loads((out / "report.json").read_text())
    n = len(rows) - 1 - (1 if name == "astroqa.csv" else 0)
    assert report["n"] == n and 0 <= report["accuracy"] <= 1 and len(report["ci95"]) == 2
    assert report["unparsed"] == 0
    preds = (out / "predictions.jsonl").read_text().splitlines()
    assert len(preds) == n
    md = (out / "report.md").read_text()
    for plot in report["plots"]:
        assert f"({plot})" in md and (out / plot).is_file()


def test_llm_modes_with_text_and_logprobs(small_settings, tmp_path):
    suite = _write(tmp_path / "m.csv", MMLU)

    def reply(body):
        q = body["messages"][-1]["content"]
        return "Answer: C" if "Sun" in q else "I would say (B)." if "magnetic" in q else "unsure"

    with FakeOllama(models=["astrosage"], reply=reply) as server:
        s = small_settings.replace(ollama_host=server.url, ollama_model="astrosage", progress=False)
        report = run_mcq(suite, s, ["closed", "rag"], backend="ollama", out=tmp_path / "r", log=None)
    closed, rag = report["modes"]
    assert closed["correct"] == 2 and closed["unparsed"] == 1 and rag["n"] == 3
    assert "Evidence" in server.chats()[-1]["messages"][-1]["content"]

    with FakeOllama(models=["astrosage"], logprobs=lambda body: [(" C", -0.2), ("A", -1.9), ("B", -3.0)]) as server:
        from astrorag.evaluation.mcq import Question

        q = Question("1", "What powers the Sun?", ["Fission", "Chemical", "Fusion", "Collapse"], 2)
        p = predict_llm(q, OllamaBackend(server.url, "astrosage"))
        sent = server.chats()[0]
    assert p.method == "logprob" and p.predicted == 2 and sent["logprobs"] is True
    assert sent["options"]["num_predict"] == 1


def _run(args, small_settings, tmp_path):
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(small_settings.storage.index_dir), ASTRORAG_INDEX_NAME="small")
    run = subprocess.run([sys.executable, "-m", "astrorag", *args, "--quiet"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return run


def test_eval_retrieval_sed_and_cost_reports(small_settings, tmp_path):
    qrels = tmp_path / "q.jsonl"
    qrels.write_text("\n".join(json.dumps(q) for q in [
        {"qid": "a", "query": "What powers little red dots?", "relevant": ["2505.06965", "2506.04350"]},
        {"qid": "b", "query": "narrow-line little red dots", "relevant": ["2506.04350"]}]) + "\n")
    _run(["eval", "retrieval", "--qrels", str(qrels), "--out", str(tmp_path / "ret")], small_settings, tmp_path)
    ret = json.loads((tmp_path / "ret" / "report.json").read_text())
    assert set(ret["modes"]) == {"dense", "bm25", "fused", "fused+graph"}
    assert ret["modes"]["fused"]["recall@10"] == 1.0
    assert (tmp_path / "ret" / "recall_at_k.png").is_file()

    _run(["eval", "sed", "--n", "400", "--out", str(tmp_path / "sed")], small_settings, tmp_path)
    sed = json.loads((tmp_path / "sed" / "report.json").read_text())
    assert sed["real_lrd_flag_rate"] >= 0.9 and sed["synthetic_normal_flag_rate"] <= 0.05
    # every population by redshift, unclassifiable sources counted in n
    emitters = sed["populations"]["strong_line"]
    assert emitters["n"] == 400 and sum(b["n"] for b in emitters["bins"].values()) == 400
    # z 7-9 emitters (the population that fakes a red F444W) <= 2 % flagged; each bin within its small-sample
    # noise (183 sources in 7-8 here); synthetic LRDs at z 7-8, where [OIII]+H-beta fill F410M/F444W, >= 90 %
    assert emitters["rate"] <= 0.02
    assert emitters["bins"]["7-8"]["ci95"][0] <= 0.02 and emitters["bins"]["8-9"]["ci95"][0] <= 0.02
    assert sed["populations"]["lrd"]["bins"]["7-8"]["rate"] >= 0.9
    assert all(b["likeness"] is None or 0.0 <= b["likeness"]["median"] <= 1.0
               for pop in sed["populations"].values() for b in pop["bins"].values())
    assert sed["populations"]["lrd_real"]["n"] == 60 and set(sed["populations"]) == {"lrd_real", "normal", "lrd",
                                                                                     "strong_line"}
    assert "7-8" in (tmp_path / "sed" / "report.md").read_text()
    assert all(v["top1"] >= 0.8 and v["top3"] >= 0.95 for v in sed["misspecification"].values())

    _run(["eval", "cost", "--backend", "extractive", "--questions", "3", "--out", str(tmp_path / "cost")],
         small_settings, tmp_path)
    cost = json.loads((tmp_path / "cost" / "report.json").read_text())
    proj = cost["projection"]
    assert cost["per_answer"]["prompt_tokens_mean"] > 100 and proj["usd_per_source"] < proj["mephisto"]["usd_per_source"]
    assert "latency_by_stage.png" in (tmp_path / "cost" / "report.md").read_text()


def test_eval_sed_json_gives_per_redshift_rates_and_the_lrd_likeness(tmp_path):
    import json
    import os
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "astrorag", "eval", "sed", "--json", "--n", "60", "--out",
                          str(tmp_path / "r")], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "ASTRORAG_INDEX_DIR": str(tmp_path / "idx")})
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    for key in ("lrd_real", "normal", "lrd", "strong_line"):
        bins = report["populations"][key]["bins"]
        assert set(bins) == {"z < 6", "6-7", "7-8", "8-9", "z > 9"}
        assert all("likeness" in b and "rate" in b for b in bins.values())
    real = report["populations"]["lrd_real"]
    assert real["n"] == 60 and real["likeness"]["median"] >= real["likeness"]["p16"]


def test_mcq_reports_the_letters_predicted_the_majority_baseline_and_warns_on_a_constant_answer(small_settings,
                                                                                               tmp_path):
    suite = _write(tmp_path / "m.csv", MMLU)
    with FakeOllama(models=["astrosage"], logprobs=lambda body: [("A", -0.1), ("B", -3.0), ("C", -3.5)]) as server:
        s = small_settings.replace(ollama_host=server.url, ollama_model="astrosage", progress=False)
        report = run_mcq(suite, s, ["closed"], backend="ollama", out=tmp_path / "r", log=None)
    closed = report["modes"][0]
    assert closed["letters"] == {"A": 3}
    assert any(n.startswith("warning: mode closed answered A in 3 of 3") for n in report["notices"])
    base = report["majority_baseline"]
    assert base["accuracy"] == round(max(report["answer_key_letters"].values()) / 3, 4) and len(base["ci95"]) == 2
    assert "baseline: always" in (tmp_path / "r" / "report.md").read_text()
