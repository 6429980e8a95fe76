"""LiveCodeBench code generation: the Hub file's tests decoded without running pickle code, and LiveCodeBench's own
grading (timeouts, comparisons) run in owb's sandbox."""
