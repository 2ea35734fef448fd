"""The offline evaluation harness: multiple-choice accuracy, retrieval quality, SED advice, cost."""
