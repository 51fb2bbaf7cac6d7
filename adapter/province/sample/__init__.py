"""The sample one-stop system: the embedded default source for the demo, tests and benchmarks."""
