"""llama.cpp internals shared by the students' engine and the in-process teacher: continuous batching
over KV sequences (`LlamaBatch`), model loading without AMX weight repacking, and prompt-lookup drafts."""
