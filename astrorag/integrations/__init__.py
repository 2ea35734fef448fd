"""Adapters that plug astrorag into other frameworks (llama-index)."""
