"""Generation engines for `solve`: prompts in, completions out, each stopped where its layout ends.

    engine = HFEngine("runs/u", batch_size=32)
    engine.complete(["Problem: ...\\n"], until="answer", max_new_tokens=256)

Two engines, the same contract (greedy decoding gives the same completions up to float rounding):

- `hf` (`HFEngine`): a transformers model and our own decode loop instead of `generate`. Prompts are
  sorted by length and batched (so there is little left padding); each batch is prefilled once, then
  decoded one token per step with the KV cache, and a row leaves the batch, cache included, as soon
  as its completion is complete, so the batch never computes tokens that would be thrown away.
  Runs anywhere transformers does; the engine of choice on a GPU.
- `llamacpp` (`LlamaCppEngine`): the student exported to a float32 GGUF and decoded by llama.cpp
  with continuous batching: up to `batch_size` sequences decode together, each in its own KV-cache
  stream, and a finished sequence's slot takes the next prompt at once. No torch in the decode
  loop; one decoding step of 32 sequences of SmolLM2-135M takes ~0.09 s here against ~0.22 s for
  transformers' `generate`.

- `vllm` (`VLLMEngine`, extra `socratic[vllm]`): the student folder served by vLLM in process, for
  GPUs. Written against vLLM's offline `LLM.generate` API but not run here (no GPU, no vLLM).

All can run the calculator while decoding: when a completion ends in an open annotation `<<expr=`,
the value computed by `socratic.calculator` and `>>` are written as forced tokens, in place of the
model's own arithmetic (which is what small students get wrong most).
"""

from socratic.engines.base import ENGINES, GREEDY, Completion, Decoding, Engine, Sampling
from socratic.engines.hf import AdapterRole, HFEngine
from socratic.engines.llamacpp import LlamaCppEngine
from socratic.engines.vllm import VLLMEngine

__all__ = [
    "ENGINES",
    "GREEDY",
    "AdapterRole",
    "Completion",
    "Decoding",
    "Engine",
    "HFEngine",
    "LlamaCppEngine",
    "Sampling",
    "VLLMEngine",
]
