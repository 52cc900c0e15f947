"""The parts of `benchmarks/gpu_suite.py`: one module per part, the runner, the environment."""
