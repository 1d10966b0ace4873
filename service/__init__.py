"""FastAPI service serving the exported digit classifiers (see README)."""
