"""The code sandbox: model-written programs run each in its own locked-down process (namespaces, bubblewrap, limits)."""
