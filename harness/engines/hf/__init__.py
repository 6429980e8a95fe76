"""The transformers backend: plain `generate`, a compiled static decode loop and continuous batching, with per-request
seeded sampling."""
