"""Results as people read them: text for the terminal, markdown for the app, brief JSON for agents (the
full JSON is each result's own ``to_dict``). The CLI, the app and the MCP tools render through these, so one result reads the same in all.

- :mod:`.tex`: TeX in titles and abstracts as plain Unicode (the terminal)
- :mod:`.answer`: an answer's sources, citation links, an index's summary
- :mod:`.fit`: a fit path, step by step
- :mod:`.advice`: the SED advisor's diagnostics and ranked actions
- :mod:`.rules`: rules with their papers for and against
"""

from .advice import actions_markdown, diagnostics_markdown
from .answer import (
    answer_brief,
    library_markdown,
    link_citations,
    paper_link,
    passages_brief,
    sources_markdown,
    sources_text,
)
from .fit import fit_markdown, fit_text
from .rules import rule_line, rule_text
from .tex import plain_tex

__all__ = ["actions_markdown", "answer_brief", "diagnostics_markdown", "fit_markdown", "fit_text",
           "library_markdown", "link_citations", "paper_link", "passages_brief", "plain_tex", "rule_line",
           "rule_text", "sources_markdown", "sources_text"]
