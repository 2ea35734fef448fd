"""The rule graph's upkeep: distillation from passages, learning from fit records, undo."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..settings import Settings


def list_rules(settings: Settings, origin: str | None = None, contested: bool = False) -> list:
    """The index's rules (the seed rules when it has no graph), optionally of one origin or contested only."""
    from ..graph.model import load_graph

    return [r for r in load_graph(settings.index_path).rules()
            if (not origin or r.origin == origin) and (not contested or r.contested)]


def get_rule(settings: Settings, rule_id: str):
    """One rule by id (the error names close ids)."""
    from ..graph.model import load_graph

    return load_graph(settings.index_path).get(rule_id)


def draw_rules(settings: Settings, out: str | Path, around: str | None = None, radius: int = 1) -> tuple[Path, int]:
    """A picture of the rule graph (or of the neighbourhood of one node); returns the file and its node count."""
    from ..graph.draw import draw
    from ..graph.model import load_graph

    graph = load_graph(settings.index_path)
    if around:
        graph = graph.neighbourhood(around, radius)
    return draw(graph, Path(out), title=f"around {around}" if around else ""), graph.graph.number_of_nodes()


def rules_for_symptoms(settings: Settings, symptoms: str, limit: int = 8) -> list:
    """Ranked actions for comma-separated symptom names or plain words ("mid-IR underestimated").

    Raises
    ------
    InputError
        When nothing in ``symptoms`` names or links to a known symptom (the message lists them).
    """
    from ..errors import InputError
    from ..graph import vocabulary as vocab
    from ..graph.model import load_graph
    from ..sed.advisor import rank_actions

    names: list[str] = []
    for item in [s for s in symptoms.split(",") if s.strip()]:
        try:
            names.append(vocab.validate_symptom(item.strip()))
        except InputError:  # plain words: link them to symptoms
            names.extend(sorted(vocab.link_text(item)["symptoms"]))
    if not names:
        raise InputError(f"no known symptom in {symptoms!r}; known symptoms: {', '.join(sorted(vocab.SYMPTOMS))}")
    return rank_actions(load_graph(settings.index_path), sorted(set(names)), limit=limit)


def distill_rules(settings: Settings, limit: int | None = None, backend: str | None = None):
    """Ask the ``distill`` purpose's language model for rules from the index's SED-fitting passages; save."""
    from ..graph.distill import distill, select_passages
    from ..graph.model import graph_path, load_graph
    from ..index.store import Index
    from ..llm import get_backend

    llm = get_backend(settings, "distill", backend).llm
    index = Index.open(settings)
    try:
        chunks = index.chunks(index.chunk_ids())
        docs = index.documents({c.doc_id for c in chunks.values()})
        pairs = sorted(((c, docs[c.doc_id]) for c in chunks.values()), key=lambda p: (p[1].doc_id, p[0].position))
        graph = load_graph(settings.index_path)
        report = distill(graph, llm, select_passages(pairs, limit))
        graph.save(graph_path(settings.index_path))
    finally:
        index.close()
    return report


#: Keys of the fit records the rule graph has counted (graph/learn.py, record_key), beside the graph.
COUNTED_RECORDS = "counted_fit_records.json"


def learn_rules(settings: Settings, fitlog: str | Path, improvement: float = 0.2):
    """Update rule confidences from a fit log (JSONL of attempted changes) and save the graph.

    Concurrent runs take turns (a file lock around read, update and save); a record already counted, in
    this file or an earlier one, is not counted again; the graph before the update is kept for
    ``rules undo``. The report lists each rule's confidence before and after.
    """
    import json

    from ..graph.learn import learn, read_fitlog
    from ..graph.model import graph_path, load_graph
    from ..locks import locked

    outcomes, problems = read_fitlog(Path(fitlog), improvement)
    folder = settings.index_path
    folder.mkdir(parents=True, exist_ok=True)
    counted = folder / COUNTED_RECORDS
    from ..files import write_atomically

    with locked(folder / "rules.lock"):
        graph = load_graph(folder)
        seen = read_counted(counted)
        report = learn(graph, outcomes, seen=seen)
        report.problems = problems + report.problems
        for path in (graph_path(folder), counted):  # one step of undo, each copy written whole
            backup = path.with_name(path.name + ".before-learn")
            write_atomically(backup, path.read_text() if path.is_file() else "absent")
        graph.save(graph_path(folder))
        write_atomically(counted, json.dumps(sorted(seen)))
    return report


def read_counted(path: Path) -> set[str]:
    """The keys of the fit records already counted, or a clear error when the file is damaged."""
    import json

    if not path.is_file():
        return set()
    try:
        keys = json.loads(path.read_text())
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ValueError("not a list of record keys")
    except (ValueError, OSError) as exc:
        raise InputError(f"{path} is damaged ({exc}); nothing was changed. Move it aside to start counting "
                         f"records afresh (records already counted would then count again), or restore it "
                         f"from {path.name}.before-learn") from None
    return set(keys)


def undo_learn(settings: Settings) -> dict[str, tuple[float, float]]:
    """Put the rule graph back as it was before the last ``rules learn``; returns each rule's confidence
    (now, restored) for the rules that change.

    Raises
    ------
    InputError
        When there is no update to undo (one step is kept).
    """
    from ..graph.model import graph_path, load_graph
    from ..locks import locked

    folder = settings.index_path
    graph_file, counted = graph_path(folder), folder / COUNTED_RECORDS
    kept = [p.with_name(p.name + ".before-learn") for p in (graph_file, counted)]
    with locked(folder / "rules.lock"):
        if not kept[0].is_file():
            raise InputError(f"nothing to undo: no rules learn has been run on index "
                             f"{settings.storage.index_name!r} since the last undo")
        if not kept[1].is_file():
            raise InputError(f"cannot undo: {kept[1]} is missing, so the counted records cannot be restored "
                             f"with the rules; nothing was changed. The rule graph before the update is in "
                             f"{kept[0]}")
        now = {r.rule_id: r.confidence for r in load_graph(folder).rules()}
        for backup, target in zip(kept, (graph_file, counted)):
            if backup.read_text() == "absent":
                target.unlink(missing_ok=True)
                backup.unlink()
            else:
                backup.replace(target)
        restored = {r.rule_id: r.confidence for r in load_graph(folder).rules()}
    return {rule_id: (round(now.get(rule_id, float("nan")), 4), round(value, 4))
            for rule_id, value in restored.items() if abs(now.get(rule_id, -1) - value) > 1e-9}
