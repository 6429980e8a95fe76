"""Grading: the scorer contract (`base`), the registry, each scorer, the reasoning split and the per-document
reducers that turn sample scores into metrics. Never imports an engine."""
