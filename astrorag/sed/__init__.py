"""The SED advisor: photometry in, deterministic diagnostics and LRD criteria, ranked fitting actions out."""
