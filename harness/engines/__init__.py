"""Inference engines behind one contract (`base`): transformers (`hf`), vLLM, OpenAI-compatible servers and replayed
outputs, found through the registry, which imports an engine only when a run names it."""
