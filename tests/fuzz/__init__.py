"""The model fuzzer: mutators.py (how models are broken) and fuzz_models.py (the campaign CLI)."""
