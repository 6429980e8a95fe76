"""owb (Open-Weight Bench): quality and speed of open-weight LLMs, measured together."""

__version__ = "0.1.0"
