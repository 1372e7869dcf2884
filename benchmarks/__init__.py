"""Speed, measured and printed, never asserted: `python -m benchmarks.<name>` from the root."""
