"""The rule graph: a typed networkx graph of SED-fitting knowledge with provenance on every rule."""
