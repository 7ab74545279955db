"""Record real model outputs for the answer-extraction tests (tests/data/real_outputs.jsonl).

    python scripts/collect_real_outputs.py > tests/data/real_outputs.jsonl

Runs the package-provided models in llama.cpp, greedy, on the first test problems of GSM8K and
StrategyQA with a plain instruction, so that extraction is tested on what models really write
(rambling, units, markdown, unfinished sentences). The expected answers in the test file were then
read off each output by hand; this script only records the raw text and where it came from.
"""

import json
import sys

from llama_cpp import Llama

from socratic.tasks import load_task
from socratic.weights import models

RUNS = [  # (model, dataset, number of problems, max new tokens)
    ("smollm2-135m", "gsm8k", 8, 160),
    ("qwen2.5-coder-0.5b", "gsm8k", 6, 200),
    ("smollm2-135m", "strategyqa", 4, 80),
    ("qwen2.5-coder-0.5b", "strategyqa", 4, 80),
]
INSTRUCTIONS = {
    "gsm8k": "Solve this math problem step by step and give the final answer.",
    "strategyqa": "Answer this yes/no question and briefly explain.",
}


def main() -> None:
    for model_name, dataset, count, max_tokens in RUNS:
        llm = Llama(model_path=str(models.resolve(model_name, want="gguf")), n_ctx=1024, n_threads=2, verbose=False)
        for problem in load_task(dataset).load("test", limit=count):
            messages = [{"role": "user", "content": f"{INSTRUCTIONS[dataset]}\n\n{problem.question}"}]
            reply = llm.create_chat_completion(messages, temperature=0.0, max_tokens=max_tokens)
            row = {
                "model": model_name,
                "problem_id": problem.id,
                "gold": problem.answer,
                "output": reply["choices"][0]["message"]["content"],
            }
            print(json.dumps(row, ensure_ascii=False), flush=True)
        llm.close()
    print(f"done: {sum(r[2] for r in RUNS)} outputs", file=sys.stderr)


if __name__ == "__main__":
    main()
