"""Asking: one question from the request to the written outputs, the same for the CLI, the app and the tools.

:class:`AskSession` streams the checked answer text as it is written, then holds the :class:`Answer`; its
outputs (the cited papers' BibTeX, the reproducibility bundle, the app's downloads) are written here, so
no front end writes files of its own.

Examples
--------
>>> from astrorag.settings import Settings
>>> session = AskSession.start(Settings(), "What powers little red dots?", backend="extractive")  # doctest: +SKIP
>>> answer = session.run()  # doctest: +SKIP
>>> session.write(AskOutputs(bibtex="refs.bib"))  # doctest: +SKIP
['wrote 4 BibTeX entries to refs.bib']
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..index.types import Answer, Filters, QueryParams
from ..settings import Settings


def query_params(k: int | None = None, mode: str | None = None, year_min: int | None = None,
                 year_max: int | None = None, category: str | None = None, rewrite: str | None = None,
                 rescore: bool = False) -> QueryParams:
    """Per-question options from what a front end collected; 0 or empty means "no limit".

    >>> query_params(k=4, year_min=2024).filters
    Filters(year_min=2024, year_max=None, category=None)
    >>> query_params(year_min=0, year_max=0).filters is None
    True
    """
    def year(value, name: str) -> int | None:
        text = str(value).strip() if value is not None else ""
        if not text or text == "0":
            return None
        try:
            return int(float(text))
        except ValueError:
            raise InputError(f"{name} {value!r} is not a year; give one like 2024, or leave it empty") from None

    year_min, year_max = year(year_min, "from year"), year(year_max, "to year")
    filters = Filters(year_min, year_max, category or None) if (year_min or year_max or category) else None
    return QueryParams(k=int(k) if k else None, mode=mode or None, filters=filters, rewrite=rewrite or None,
                       rescore=bool(rescore))


@dataclass
class AskOutputs:
    """Files an answer is written to: ``bibtex`` (the cited papers) and ``save`` (a bundle folder)."""

    bibtex: str | None = None
    save: str | None = None
    force: bool = False

    def check(self) -> None:
        """Refuse, before any work, outputs that cannot be written (see :func:`check_save_target`)."""
        from ..bundle import check_save_target

        if self.save:
            check_save_target(self.save, self.force)
        if self.bibtex:
            target = Path(self.bibtex)
            if target.is_dir():
                raise InputError(f"--bibtex {self.bibtex} is a folder; give a file name, e.g. {target / 'refs.bib'}")
            if not target.parent.is_dir():
                raise InputError(f"--bibtex {self.bibtex}: the folder {target.parent} does not exist; create it first")


class AskSession:
    """One question against one assistant: :meth:`stream` yields the checked text, then :attr:`answer` holds
    the answer; :meth:`write` and :meth:`downloads` turn it into files."""

    def __init__(self, assistant, question: str, params: QueryParams | None = None,
                 history: list[dict] | None = None):
        self.assistant, self.question, self.history = assistant, question, history
        self.params = params or QueryParams()
        self.response = None  # the assistant's AnswerStream, once started

    @classmethod
    def start(cls, settings: Settings, question: str, params: QueryParams | None = None,
              backend: str | None = None) -> AskSession:
        """A session with its own assistant (closed by :meth:`close`)."""
        from ..assistant import Assistant

        session = cls(Assistant(settings, backend=backend), question, params)
        session._owns = True
        return session

    @property
    def notices(self) -> list[str]:
        """What the assistant said before answering (the backend chosen and why, a missing vector store)."""
        return list(self.assistant.notices)

    @property
    def answer(self) -> Answer | None:
        """The checked answer, once the text has been streamed."""
        return None if self.response is None else self.response.answer

    def stream(self) -> Iterator[str]:
        """The checked answer text, a line at a time as the writer produces it."""
        self.response = self.assistant.stream(self.question, self.params, self.history)
        yield from self.response

    def run(self) -> Answer:
        """Stream to the end and return the :class:`Answer`."""
        for _ in self.stream():
            pass
        assert self.answer is not None
        return self.answer

    def write(self, outputs: AskOutputs) -> list[str]:
        """Write the BibTeX and the bundle the outputs name; returns one line per file written."""
        from ..bibtex import bibtex
        from ..bundle import make_bundle, save_bundle
        from ..files import write_atomically

        assert self.answer is not None, "run or stream the session first"
        said = []
        if outputs.bibtex:
            docs = self.assistant.cited_documents(self.answer)
            write_atomically(Path(outputs.bibtex), bibtex(docs))
            said.append(f"wrote {len(docs)} BibTeX entries to {outputs.bibtex}")
        if outputs.save:
            # checked before the work (AskOutputs.check); here only the two files are replaced
            path = save_bundle(outputs.save, make_bundle(self.assistant, self.answer, self.params,
                                                                  self.response.prepared), force=True)
            said.append(f"saved the reproducibility bundle in {path} (astrorag replay {path})")
        return said

    def downloads(self, folder: str | Path | None = None) -> tuple[str | None, str]:
        """The cited papers as a .bib file (None when nothing is cited) and the bundle as a .zip (the app's),
        written into ``folder`` (an empty one; default: a new temporary folder)."""
        folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="astrorag-answer-"))
        bib = folder / "references.bib"
        self.write(AskOutputs(bibtex=str(bib) if self.assistant.cited_documents(self.answer) else None,
                              save=str(folder / "bundle")))
        archive = shutil.make_archive(str(folder / "astrorag-answer"), "zip", folder / "bundle")
        return (str(bib) if bib.exists() else None), archive

    def close(self) -> None:
        if getattr(self, "_owns", False):
            self.assistant.close()
