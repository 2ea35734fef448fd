"""What an index holds and whether it is sound: for `index info`, `index check` and the app's Library tab."""

from __future__ import annotations

from typing import Any

from ..settings import Settings


def index_info(settings: Settings) -> dict[str, Any]:
    """The index's name, counts, embedding model and fingerprint (raises when there is no such index)."""
    from ..index.store import Index

    with Index.open(settings) as index:
        return index.info()


def index_check(settings: Settings) -> list[str]:
    """The damage a full check finds (empty when the index is sound)."""
    from ..index.store import Index

    with Index.open(settings) as index:
        return index.check(full=True)


def library_summary(settings: Settings) -> dict[str, Any] | None:
    """The index's info plus its rule count, or None when the index does not exist yet."""
    from ..graph.model import load_graph
    from ..index.store import Index

    if not Index.exists(settings):
        return None
    info = index_info(settings)
    info["rules"] = load_graph(settings.index_path).counts().get("rule", 0)
    return info


def index_list(settings: Settings) -> list[dict[str, Any]]:
    """The manifests of the indexes in ``settings.storage.index_dir``."""
    from ..index.store import Index

    return Index.list(settings)


def index_drop(settings: Settings) -> bool:
    """Delete the index folder; False when there was none."""
    from ..index.store import Index

    return Index.drop(settings)
