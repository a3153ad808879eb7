"""Reference executors: float (numpy) and integer (the golden model)."""
