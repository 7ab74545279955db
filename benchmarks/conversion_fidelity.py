"""How faithfully `socratic models prepare` converts each student's GGUF into a Hugging Face folder.

    python benchmarks/conversion_fidelity.py

Compares the converted model's logits with llama.cpp's on the same GGUF and the same tokens
(a GSM8K prompt in the unified layout): per-position Pearson correlation and top-1 agreement.
llama.cpp multiplies in quantised arithmetic, so a perfect 1.0 is not expected.
"""

import time

import numpy as np
import torch
from llama_cpp import Llama
from transformers import AutoModelForCausalLM, AutoTokenizer

from socratic.llamacpp.buffers import without_repacking
from socratic.tasks import gsm8k
from socratic.text import formats
from socratic.weights import models


def main() -> None:
    problem = gsm8k.load("train")[0]
    text = formats.problem_prompt(problem.question) + formats.target("unified", problem.human_steps, problem.answer)
    for name in ("smollm2-135m", "gemma3-270m"):
        started = time.perf_counter()
        folder = models.resolve(name)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder)
        ids = tokenizer(text).input_ids
        with without_repacking():  # AMX CPUs: see socratic.llamacpp.buffers
            llama = Llama(
                model_path=str(models.resolve(name, want="gguf")),
                n_ctx=512,
                n_threads=2,
                logits_all=True,
                verbose=False,
            )
        llama.eval(ids)
        reference = np.array(llama.scores[: len(ids)])
        llama.close()
        with torch.no_grad():
            ours = model(torch.tensor([ids])).logits[0].float().numpy()
        correlations = [np.corrcoef(reference[i], ours[i])[0, 1] for i in range(len(ids))]
        agreement = (reference.argmax(-1) == ours.argmax(-1)).mean()
        print(
            f"{name}: {len(ids)} tokens, logit correlation min {min(correlations):.4f} mean "
            f"{np.mean(correlations):.4f}, top-1 agreement {agreement:.3f} ({time.perf_counter() - started:.0f} s)"
        )


if __name__ == "__main__":
    main()
