"""Servers and references the tests and benchmarks use, shipped so that both can import them: the
llama.cpp OpenAI server on loopback and the sequential teacher the batched one is checked against.
Nothing in the package imports this layer."""
