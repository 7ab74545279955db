"""The shipped benchmarks: sizes, stable ids, fixed splits, and GSM8K's exact text round trip."""

import gzip
import hashlib
import json
from importlib import resources

import pytest

from socratic.core.errors import SocraticError
from socratic.tasks import BENCHMARKS, gsm8k, load_task, strategyqa, svamp

SIZES = {
    ("gsm8k", "train"): 7473,
    ("gsm8k", "test"): 1319,
    ("svamp", "train"): 700,
    ("svamp", "test"): 300,
    ("strategyqa", "train"): 2061,
    ("strategyqa", "test"): 229,
}


@pytest.mark.parametrize(("name", "split"), list(SIZES))
def test_sizes_and_unique_stable_ids(name, split):
    problems = load_task(name).load(split)
    assert len(problems) == SIZES[name, split]
    ids = [p.id for p in problems]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(f"{name}/{split}/") for i in ids)
    assert all(p.question.strip() and p.answer for p in problems)
    assert load_task(name).load(split) == problems  # same ids, same order, every time


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_a_split_is_parsed_once_and_each_caller_gets_a_list_of_its_own(name, monkeypatch):
    task = load_task(name)
    first = task.load("train")
    reads = []
    monkeypatch.setattr(json, "loads", lambda *a, **k: reads.append(a) or pytest.fail("the split was parsed again"))
    again = task.load("train")
    assert again == first and again is not first and not reads
    again.clear()  # a caller's own list: emptying it leaves the next caller's whole
    assert len(task.load("train")) == SIZES[name, "train"]


def test_gsm8k_problem_fields():
    first = gsm8k.load("test")[0]
    assert first.id == "gsm8k/test/0"
    assert first.question.startswith("Janet’s ducks lay 16 eggs per day.")
    assert first.answer == "18"
    assert [s.question for s in first.human_steps] == [
        "How many eggs does Janet sell?",
        "How much does Janet make at the farmers' market?",
    ]
    assert first.human_steps[1].answer == "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer’s market."


def test_gsm8k_answers_are_integers():
    for split in gsm8k.TASK.splits:
        assert all(p.answer.lstrip("-").isdigit() for p in gsm8k.load(split))


@pytest.mark.parametrize("split", ["train", "test"])
def test_gsm8k_solution_text_round_trips_exactly(split):
    raw = resources.files("socratic.tasks") / "data" / "gsm8k" / f"{split}.jsonl.gz"
    with raw.open("rb") as f, gzip.open(f, "rt", encoding="utf-8") as lines:
        solutions = [json.loads(line)["answer"] for line in lines]
    for solution in solutions:
        assert gsm8k.format_solution(*gsm8k.parse_solution(solution)) == solution


def test_gsm8k_plain_solutions_parse_as_steps_without_questions():
    steps, final = gsm8k.parse_solution("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 24")
    assert steps[0].question == "" and final == "24"
    assert gsm8k.format_solution(steps, final) == "Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 24"


def test_svamp_split_is_fixed_and_disjoint():
    train, test = svamp.load("train"), svamp.load("test")
    native = lambda problems: {p.id.split("/")[-1] for p in problems}  # noqa: E731
    assert not native(train) & native(test)
    assert len(native(train) | native(test)) == 1000
    # The split is a published contract: results are only comparable if it never changes.
    digest = hashlib.sha256(",".join(sorted(native(test))).encode()).hexdigest()
    assert digest == SVAMP_TEST_IDS_SHA256


SVAMP_TEST_IDS_SHA256 = "87e64713833dd96dd3a64aeb77bb36bbbea789bd9ff026ce0452891787a114ea"


def test_svamp_problem_text_and_answer():
    problem = next(p for p in svamp.load("train") + svamp.load("test") if p.id.endswith("/chal-1"))
    assert problem.question == (
        "Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on each "
        "pack. How much do you have to pay to buy each pack?"
    )
    assert (problem.answer, problem.equation, problem.meta["type"]) == ("51", "( 76.0 - 25.0 )", "Subtraction")


def test_strategyqa_keeps_facts_and_decomposition():
    problems = strategyqa.load("train")
    assert {p.answer for p in problems} == {"yes", "no"}
    first = problems[0]
    assert first.id == "strategyqa/train/2bc9c4f9c19c167187f2"
    assert first.question == "Are more people today related to Genghis Khan than Julius Caesar?"
    assert first.answer == "yes"
    assert first.decomposition[-1] == "Is #2 greater than #1?"
    assert len(first.facts) == 3


@pytest.mark.parametrize(("name", "kind"), [("gsm8k", "number"), ("svamp", "number"), ("strategyqa", "yesno")])
def test_answer_kinds_drive_extraction(name, kind):
    task = BENCHMARKS[name]
    assert task.answer_kind == kind
    text = "Q: Is it?\nA: It is 12.\nAnswer: yes" if kind == "yesno" else "So 3*4 = 12.\nAnswer: 12"
    assert task.extract_answer(text) == ("yes" if kind == "yesno" else "12")
    assert task.is_correct(task.extract_answer(text), "yes" if kind == "yesno" else "12")


def test_unknown_dataset_and_split_suggest_the_right_name():
    with pytest.raises(SocraticError, match="unknown dataset 'gsm8kk' \\(did you mean 'gsm8k'\\?\\)"):
        load_task("gsm8kk")
    with pytest.raises(SocraticError, match="unknown split of gsm8k 'tset' \\(did you mean 'test'\\?\\)"):
        gsm8k.TASK.load("tset")


def test_licences_ship_with_the_data():
    for name in BENCHMARKS:
        licence = (resources.files("socratic.tasks") / "data" / name / "LICENSE").read_text(encoding="utf-8")
        assert licence.startswith("MIT License")
