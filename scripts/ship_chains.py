"""Copy a teacher's chains into the package, with their provenance, for `--teacher shipped`.

    socratic annotate --config cpu-svamp --out runs/cpu-svamp/chains.jsonl     # the teacher (~20-40 min)
    python scripts/ship_chains.py runs/cpu-svamp/chains.jsonl

Writes src/socratic/teacher/chains/<dataset>-<style>.jsonl.gz (the kept chains as annotate wrote
them; gzip with a zero timestamp, so the same chains give the same bytes) and <dataset>-<style>.json
(teacher, prompt hash, date, commit, licence, the commands above), both read from the chains file
and its manifest. It stops if the chains were written with another prompt than the shipped one:
the request hashes of their replies are recomputed with today's prompt and must match.
"""

import gzip
import json
import sys
from pathlib import Path

from socratic.core.jsonl import read_jsonl
from socratic.core.records import Chain, to_json
from socratic.tasks import BENCHMARKS
from socratic.tasks.options import DataOptions
from socratic.teacher import prompts
from socratic.teacher.annotate import AnnotateConfig, _requests, request_hash

TARGET = Path(__file__).resolve().parents[1] / "src" / "socratic" / "teacher" / "chains"
LICENCES = {
    "svamp": "MIT (Patel et al. 2021, github.com/arkilpatel/SVAMP; socratic/tasks/data/svamp/LICENSE)",
    "gsm8k": "MIT (Cobbe et al. 2021, github.com/openai/grade-school-math; socratic/tasks/data/gsm8k/LICENSE)",
    "strategyqa": "MIT (Geva et al. 2021, github.com/eladsegal/strategyqa; socratic/tasks/data/strategyqa/LICENSE)",
}


def main(chains_path: Path) -> None:
    manifest = json.loads(chains_path.with_name(chains_path.name.removesuffix(".jsonl") + ".manifest.json").read_text())
    settings = manifest["config"]
    dataset, style = settings["dataset"], settings["style"]
    assert dataset in BENCHMARKS, f"ship chains of a benchmark ({', '.join(BENCHMARKS)}), not {dataset}"
    chains = list(read_jsonl(chains_path, Chain))
    prompt = prompts.load(dataset, style, settings["prompt"], settings["with_facts"])
    check_prompt(chains, prompt, settings, manifest["teacher_model"])
    TARGET.mkdir(parents=True, exist_ok=True)
    name = f"{dataset}-{style}"
    with open(TARGET / f"{name}.jsonl.gz", "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write("".join(to_json(c) + "\n" for c in chains).encode("utf-8"))
    record = {
        "dataset": dataset,
        "split": settings["split"],
        "problems": {"offset": settings["offset"], "limit": settings["limit"], "annotated": manifest["problems"]},
        "style": style,
        "chains": len(chains),
        "rejections": manifest["rejections"],
        "teacher": {
            "model": manifest["teacher_model"],
            "argument": settings["teacher"],
            "samples": settings["samples"],
            "temperature": settings["temperature"],
            "max_tokens": settings["max_tokens"],
        },
        "prompt": {"file": f"socratic/teacher/prompts/{name}.json", "hash": prompt.hash},
        "date": manifest["started"],
        "git_commit": manifest["git_commit"],
        "versions": manifest["versions"],
        "licence": LICENCES[dataset],
        "rebuild": [
            f"socratic annotate --config cpu-{dataset} --out runs/cpu-{dataset}/chains.jsonl",
            f"python scripts/ship_chains.py runs/cpu-{dataset}/chains.jsonl",
        ],
    }
    (TARGET / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {TARGET / name}.jsonl.gz ({len(chains)} chains) and {name}.json")


def check_prompt(chains: list[Chain], prompt: prompts.TeacherPrompt, settings: dict, model: str) -> None:
    """Every chain's reply answers the request today's prompt makes: else the shipped prompt changed."""
    data = DataOptions(dataset=settings["dataset"], split=settings["split"])
    problems = {p.id: p for p in data.load("train")[2]}
    config = AnnotateConfig(
        data=data,
        style=settings["style"],
        samples=settings["samples"],
        temperature=settings["temperature"],
        max_tokens=settings["max_tokens"],
        endpoint=settings["endpoint"],
    )
    for chain in chains:
        request = _requests(problems[chain.problem_id], prompt, settings["samples"])[chain.meta["sample"]]
        if request_hash(request, model, config) != chain.meta["request_hash"]:
            sys.exit(f"{chain.problem_id}: written with another prompt than today's; annotate again first")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
