"""A fit path (:class:`~astrorag.fit.loop.FitPath`) step by step: text for the terminal, a table for the app.

Both read the same rows, so the terminal and the app say the same of every step.
"""

from __future__ import annotations

from dataclasses import dataclass

MULTIMODAL = ("the baseline's seeds disagreed by more than the threshold: its posterior has more than one mode; "
              "the best of three seeds was used")


@dataclass
class StepRow:
    """One step as shown: the change tried and what the fits said of it."""

    step: int
    change: str
    error: str = ""
    chi2: str = ""
    chi2_red: str = ""
    gain: str = ""
    needed: str = ""
    bar: str = ""
    kept: bool = False
    seeds: str = ""
    inflation: str = ""
    kept_as: str = ""


def step_rows(path) -> list[StepRow]:
    """The rows of a path's steps, numbers formatted once for both renderings."""
    rows = []
    for s in path.steps:
        change = "baseline" if s.action is None else f"{s.action['rule_id']}: {s.change}"
        if s.error:
            rows.append(StepRow(s.step, change, error=s.error))
            continue
        rows.append(StepRow(
            s.step, change, chi2=f"{s.chi2:.1f}", chi2_red=f"{s.chi2_red:.2f}",
            gain="" if s.delta is None else f"{s.delta:+.1f}",
            needed="" if s.threshold is None else f"{s.threshold:.1f}", bar=s.threshold_bar or "",
            kept=bool(s.accepted and s.action),
            seeds=", ".join(f"{v:.1f}" for v in s.replicates) if len(s.replicates) > 1 else "",
            inflation="" if s.inflation is None else f"x{s.inflation:.2f}",
            kept_as="" if s.kept_as in ("", "decisive") else s.kept_as))
    return rows


def _outcome(path) -> list[str]:
    lines = [f"final model: {path.final_model.describe()}", f"fit quality: {path.final.quality}",
             f"verdict: {path.verdict}"]
    if path.bhstar:
        lines.append("black-hole star (68 % intervals): " + "; ".join(
            f"{name} {v['p50']:g} ({v['p16']:g}-{v['p84']:g})" for name, v in path.bhstar.items()))
    if path.multimodal:
        lines.append(MULTIMODAL)
    lines += [f"not representable: {n}" for n in sorted({n for s in path.steps for n in s.not_represented})]
    return lines


def _rule(path) -> str:
    return (f"a change is kept when its {path.criterion} gain passes the step's threshold (at least "
            f"{path.threshold}, more where the fits' noise says so) and holds with a second seed")


def fit_text(path) -> str:
    """The path for the terminal: one line per step, then the final model and its quality."""
    lines = [f"{path.source_id}: {path.fitter}, seed {path.seed}; {_rule(path)}"]
    for r in step_rows(path):
        if r.error:
            lines.append(f"  step {r.step}  {r.change}  FAILED: {r.error}")
            continue
        gain = f"  gain {r.gain} (needs {r.needed}, {r.bar})" if r.gain else ""
        seeds = f"  ln Z by seed {r.seeds}" if r.seeds else ""
        inflation = f", errors {r.inflation}" if r.inflation else ""
        label = f" [{r.kept_as}]" if r.kept and r.kept_as else ""
        lines.append(f"  step {r.step}  {'KEPT ' if r.kept else '     '}{r.change}  chi2 {r.chi2} "
                     f"(red. {r.chi2_red}{inflation}){gain}{seeds}{label}")
    return "\n".join(lines + _outcome(path))


def fit_markdown(path) -> str:
    """The path for the app: a table of the steps, then the final model and its quality."""
    rows = ["| step | change | chi2 | gain | needed | kept |", "| --- | --- | --- | --- | --- | --- |"]
    for r in step_rows(path):
        if r.error:
            rows.append(f"| {r.step} | {r.change} | failed: {r.error} | | | |")
        else:
            kept = ("yes" + (f" ({r.kept_as})" if r.kept_as else "")) if r.kept else ""
            rows.append(f"| {r.step} | {r.change} | {r.chi2} | {r.gain} | {r.needed} | {kept} |")
    outcome = [f"- {line}" if line.startswith("not representable") else line for line in _outcome(path)]
    return "\n".join([f"**{path.source_id}**: {_rule(path)}", "", *rows, "", *outcome])
