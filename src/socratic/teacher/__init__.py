"""Stage 1, annotation: prompts (few-shot exemplars as data), backends (OpenAI-compatible HTTP,
llama.cpp, transformers), the datasets' own human chains, and `annotate` (sampling, judging,
resumable cache, cost).

    socratic annotate --help
"""
