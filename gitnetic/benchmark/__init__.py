"""HumanEval-style functional-correctness benchmarks: generation, sandboxed execution, pass@k."""
