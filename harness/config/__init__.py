"""What owb is told: model cards and task specs read from YAML and validated, and `owb pin`."""
