"""The commands that produce runs: planning, `owb run` (with resume), thinking-budget generation, grading, rescoring,
summarising and `owb merge`."""
