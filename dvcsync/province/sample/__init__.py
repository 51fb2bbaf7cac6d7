"""The sample one-stop system: the embedded default source for the demo, tests and benchmarks.

``generate(out, dossiers, seed)`` builds a realistic, deterministic SQLite database in the schema of
``schema.DDL``; ``open_sample(path)`` opens one. The static data (procedure catalogue, agencies)
lives in ``data/*.json`` and is read through ``catalogue``.
"""

from .generator import GenerateStats, generate, open_sample

__all__ = ["GenerateStats", "generate", "open_sample"]
