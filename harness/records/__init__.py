"""What owb writes and reads: pydantic records of run.json, sample lines and bench.json (with the upgrade from
schema 1), and the run directory that holds them."""
