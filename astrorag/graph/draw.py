"""Draw the rule graph (or a neighbourhood of it) to PNG or SVG with matplotlib."""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from ..errors import InputError
from .model import RuleGraph

COLOURS = {"rule": "#4C72B0", "symptom": "#DD8452", "parameter": "#55A868", "module": "#8172B3",
           "interpretation": "#C44E52", "paper": "#937860"}


def draw(graph: RuleGraph, out: Path, title: str = "") -> Path:
    """Write a picture of the graph; the format follows the file suffix (.png or .svg)."""
    if out.suffix.lower() not in (".png", ".svg"):
        raise InputError(f"{out}: the picture must be .png or .svg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = nx.DiGraph(graph.graph)
    size = max(8.0, min(30.0, 0.35 * len(g) ** 0.9))
    fig, ax = plt.subplots(figsize=(size, size * 0.75))
    pos = _layout(g)
    for kind, colour in COLOURS.items():
        nodes = [n for n, k in g.nodes(data="kind") if k == kind]
        nx.draw_networkx_nodes(g, pos, nodelist=nodes, node_color=colour, node_size=260 if kind == "rule" else 180,
                               label=kind, ax=ax, alpha=0.9)
    nx.draw_networkx_edges(g, pos, ax=ax, alpha=0.25, arrows=True, arrowsize=6, width=0.6)
    labels = {n: d.get("name", n) for n, d in g.nodes(data=True)}
    nx.draw_networkx_labels(g, pos, labels=labels, font_size=6 if len(g) > 60 else 8, ax=ax)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_title(title or f"astrorag rule graph: {len(g)} nodes, {g.number_of_edges()} edges")
    ax.axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _layout(g: nx.DiGraph) -> dict:
    """Kamada-Kawai spreads hubs (rules sharing papers) far better than a spring layout and is deterministic,
    but needs scipy (the fit extra); without it, a seeded spring layout (numpy only), so `rules graph` needs no
    extra."""
    if len(g) <= 1:
        return {n: (0.0, 0.0) for n in g}
    try:
        import scipy  # noqa: F401
    except ImportError:
        return nx.spring_layout(g.to_undirected(), seed=0)
    return nx.kamada_kawai_layout(g.to_undirected())
