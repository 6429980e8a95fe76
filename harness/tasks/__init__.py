"""What a run evaluates: the task contract and owb's YAML tasks, their data, prompts, data quirks and thinking
budgets."""
