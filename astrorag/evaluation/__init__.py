"""Everything astrorag measures: the offline evaluation harness (`astrorag eval`: multiple-choice accuracy,
retrieval quality, SED advice, fits, cost) and the benchmarks (`astrorag bench`: ingest, retrieval and
catalog speed in :mod:`.bench`; a local model's prompt, first-token and decode rates in :mod:`.llm_bench`).
Suites, reports and the benchmark history live in ``eval/`` at the top of the repository."""
