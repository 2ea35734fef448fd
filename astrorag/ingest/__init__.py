"""Getting literature in: readers for local files (and later ADS/arXiv) and the ingest pipeline."""
