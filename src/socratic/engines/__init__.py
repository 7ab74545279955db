"""Generation engines for `solve`: prompts in, completions out, each stopped where its layout ends.

    engine = HFEngine("runs/u", batch_size=32)
    engine.complete(["Problem: ...\\n"], until="answer", max_new_tokens=256)

Three engines, one contract (greedy decoding gives the same completions up to float rounding):

- `hf` (`HFEngine`, `hf.py`): a transformers model and our own decode loop instead of `generate`.
  Prompts are sorted by length and batched (so there is little left padding); each batch is
  prefilled once, then decoded one token per step with the KV cache, and a row leaves the batch,
  cache included, as soon as its completion is complete. Runs anywhere transformers does; in
  bfloat16 it is the fastest engine on GPUs and on CPUs with AMX. `AdapterRole` runs QG and QA as
  two LoRA adapters of one loaded model.
- `llamacpp` (`LlamaCppEngine`, `llamacpp.py`): the student exported to a GGUF and decoded by
  llama.cpp with continuous batching: up to `batch_size` sequences decode together, each in its own
  KV-cache stream, and a finished sequence's slot takes the next prompt at once. A finished
  sequence keeps its cache until the slot is needed, so a later prompt that extends it (the
  iterative loop's next QG or QA call) evaluates only its new tokens. Prompts can be submitted
  while others decode (`submit`/`step`), and once few sequences are left each one also checks
  prompt-lookup drafts in the same call. No torch in the decode loop; the fastest engine on CPUs
  without AMX (docs/RESULTS.md).
- `vllm` (`VLLMEngine`, `vllm.py`, extra `socratic[vllm]`): the student folder served by vLLM in
  process, for GPUs. Written against vLLM's offline `LLM.generate` API but not run here (no GPU).

All can run the calculator while decoding: when a completion ends in an open annotation `<<expr=`,
the value computed by `socratic.text.calculator` and `>>` are written as forced tokens, in place of the
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
