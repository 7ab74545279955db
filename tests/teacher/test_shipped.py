"""The teacher's chains shipped in the package: what `socratic run` with no arguments trains on."""

import json
from pathlib import Path

import pytest

from socratic.core.config import build
from socratic.core.errors import SocraticError
from socratic.core.jsonl import read_jsonl
from socratic.core.records import Chain
from socratic.tasks import svamp
from socratic.teacher import prompts, shipped
from socratic.teacher.annotate import AnnotateConfig, run_annotate

RESULTS = Path(__file__).parents[2] / "results" / "cpu-svamp"


def test_the_shipped_svamp_chains_are_the_teachers_from_the_cpu_svamp_run():
    chains = shipped.load_chains("svamp", "socratic")
    teacher = list(read_jsonl(RESULTS / "chains.jsonl", Chain))
    assert [c for found in chains.values() for c in found] == teacher
    assert len(chains) == 231 and all(c.source == "teacher:qwen2.5-coder-1.5b.gguf" for c in teacher)


def test_every_shipped_chain_answers_one_of_the_first_300_training_problems_correctly():
    problems = {p.id: p for p in svamp.load("train")[:300]}
    for problem_id, chains in shipped.load_chains("svamp", "socratic").items():
        assert all(c.final_answer == problems[problem_id].answer and c.correct for c in chains), problem_id


def test_the_provenance_names_the_teacher_the_prompt_the_licence_and_the_rebuild():
    record = shipped.provenance("svamp", "socratic")
    manifest = json.loads((RESULTS / "chains.manifest.json").read_text())
    assert record["teacher"]["model"] == manifest["teacher_model"] == "qwen2.5-coder-1.5b.gguf"
    assert (record["date"], record["git_commit"]) == (manifest["started"], manifest["git_commit"])
    # The shipped prompt is still the one the teacher was given: else `annotate --config cpu-svamp`
    # would no longer rebuild these chains.
    assert record["prompt"]["hash"] == prompts.load("svamp", "socratic").hash
    assert record["licence"].startswith("MIT") and record["chains"] == 231
    assert record["rebuild"][0].startswith("socratic annotate --config cpu-svamp")


def test_annotate_with_the_shipped_teacher_keeps_231_of_300_and_says_why_the_others_have_none(tmp_path, capsys):
    out = tmp_path / "chains.jsonl"
    config = build(AnnotateConfig, dict(dataset="svamp", split="train", limit=300, teacher="shipped", out=str(out)))
    run_annotate(config)
    assert len(list(read_jsonl(out, Chain))) == 231
    rejected = list(read_jsonl(out.with_name("chains.rejected.jsonl")))
    assert len(rejected) == 69 and {r["reason"] for r in rejected} == {shipped.NOT_SHIPPED}
    printed = capsys.readouterr().out
    assert "teacher shipped:qwen2.5-coder-1.5b.gguf" in printed and "rejected: no shipped chain" in printed
    assert "estimated cost" not in printed, "no teacher was asked"
    manifest = json.loads(out.with_name("chains.manifest.json").read_text())
    assert manifest["teacher_model"] == "shipped:qwen2.5-coder-1.5b.gguf"


def test_a_dataset_without_shipped_chains_is_one_line_naming_what_is_shipped(tmp_path):
    config = build(AnnotateConfig, dict(dataset="gsm8k", limit=2, teacher="shipped", out=str(tmp_path / "c.jsonl")))
    with pytest.raises(SocraticError, match=r"no shipped socratic chains for 'gsm8k' \(shipped: svamp-socratic\)"):
        run_annotate(config)
