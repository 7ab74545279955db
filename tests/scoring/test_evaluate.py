"""Scoring: answers read from real student outputs, Wilson intervals, the failure buckets, paired tests,
the shape of decompositions (the report folder and its page: tests/test_report.py)."""

import json
import time
from pathlib import Path

import pytest

from socratic.core.errors import SocraticError
from socratic.core.jsonl import write_jsonl
from socratic.core.records import Prediction, Step
from socratic.engines import Completion
from socratic.scoring.evaluate import (
    EvaluateConfig,
    Paired,
    Score,
    Shape,
    failure_kind,
    labels_for,
    mcnemar_exact,
    paper_note,
    run_evaluate,
    shape_of,
    verdict,
    wilson_interval,
)
from socratic.solving.loops import one_pass_attempt
from socratic.tasks import load_task

# Greedy outputs of a real unified student (SmolLM2-135M fine-tuned on 300 GSM8K problems) on the
# first 16 test problems; the expected answers were read off each text by hand: the answer line,
# or for outputs cut off by the token budget the last complete solution's final number.
EXPECTED = ["32", "64", "30000", "4860", "6.25", "2.4", "24", "3200", "30", "80", "60", "80", "90", "8", "0", "16000"]


def real_student_outputs():
    path = Path(__file__).parents[1] / "data" / "real_student_outputs.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_answers_read_from_real_student_outputs():
    task = load_task("gsm8k")
    rows = real_student_outputs()
    read = [task.extract_answer(one_pass_attempt(Completion(r["output"], 256, r["finish"])).answer_text) for r in rows]
    assert read == EXPECTED
    assert not any(task.is_correct(a, r["gold"]) for a, r in zip(read, rows, strict=True))


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [(0, 16, 0.0, 0.194), (50, 100, 0.404, 0.596), (13, 1319, 0.00577, 0.0168), (16, 16, 0.806, 1.0)],
)
def test_wilson_interval(k, n, low, high):
    found = wilson_interval(k, n)
    assert found == pytest.approx((low, high), abs=6e-4)


def prediction(correct, answer="5", finish="answer", steps=(), output="", method="unified"):
    return Prediction("gsm8k/test/0", method, tuple(steps), output, answer, correct, {"finish": finish, "gold": "18"})


@pytest.mark.parametrize(
    ("only_first", "only_second", "p"),
    [(0, 0, 1.0), (4, 0, 0.125), (5, 5, 1.0), (48, 26, 0.0141)],  # the last: unified vs answer, cpu-gsm8k
)
def test_mcnemar_exact(only_first, only_second, p):
    assert mcnemar_exact(only_first, only_second) == pytest.approx(p, abs=5e-4)
    assert mcnemar_exact(only_second, only_first) == pytest.approx(p, abs=5e-4)


def test_failure_buckets():
    assert failure_kind(prediction(True, "18")) is None
    assert failure_kind(prediction(False, None)) == "no answer"
    assert failure_kind(prediction(False, finish="length")) == "out of budget"
    assert failure_kind(prediction(False, finish="max_steps")) == "out of budget"
    assert failure_kind(prediction(False, None, finish="too long")) == "out of budget", "did not fit the context"
    bad = [Step("How many?", "2*3 = <<2*3=7>>7")]
    assert failure_kind(prediction(False, steps=bad)) == "arithmetic"
    assert failure_kind(prediction(False, steps=[Step("How many?", "2*3 = <<2*3=6>>6")])) == "wrong reasoning"


def test_reference_note_names_only_the_datasets_in_the_table():
    def scored(dataset):
        return Score("s", dataset, "unified", 10, 1, dict.fromkeys(("no answer",), 0))

    assert "Socratic CoT 21.1 %" in paper_note([scored("gsm8k/test")])
    strategyqa = paper_note([scored("strategyqa/test")])
    assert "53.9" in strategyqa and "21.1" not in strategyqa
    assert paper_note([scored("gsm8k/test"), scored("svamp/test")]).count("\n") == 1
    assert paper_note([scored("mine/test")]) == ""  # a user's own data has no reference figures


def test_bad_inputs(tmp_path):
    with pytest.raises(SocraticError, match="not found"):
        run_evaluate(EvaluateConfig([str(tmp_path / "missing.jsonl")]))
    mixed = write_jsonl(
        tmp_path / "mixed.jsonl", [prediction(True), Prediction("gsm8k/test/1", "cot", (), "", None, False)]
    )
    with pytest.raises(SocraticError, match="mixes methods"):
        run_evaluate(EvaluateConfig([str(mixed)]))


def test_a_file_two_runs_appended_to_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [prediction(True), prediction(False)])
    with pytest.raises(SocraticError, match=r"p\.jsonl: problem 'gsm8k/test/0' is predicted twice"):
        run_evaluate(EvaluateConfig([str(path)]))


def test_two_runs_students_of_one_method_get_names_that_tell_them_apart(tmp_path, capsys):
    """Comparing two run folders puts two `unified` folders side by side: their labels name the runs."""
    paths = []
    for run, correct in [("cpu-svamp", True), ("cpu-svamp-diverse", False)]:
        path = tmp_path / run / "students" / "unified" / "predictions.gsm8k.test.jsonl"
        path.parent.mkdir(parents=True)
        paths.append(str(write_jsonl(path, [prediction(correct)])))
    evaluation = run_evaluate(EvaluateConfig(paths))
    assert [s.label for s in evaluation.scores] == ["cpu-svamp/students/unified", "cpu-svamp-diverse/students/unified"]
    assert "| cpu-svamp-diverse/students/unified | gsm8k/test | unified | 1 | 0.0 % |" in capsys.readouterr().out
    assert labels_for([Path("a/u/predictions.x.jsonl"), Path("b/c/p.jsonl")]) == ["u", "p"]  # no clash: short
    assert labels_for([Path("x/a.jsonl"), Path("y/a.jsonl")]) == ["x/a", "y/a"]
    same_folder = [Path("runs/val19/predictions.b4.plain.jsonl"), Path("runs/val19/predictions.b4.stop.jsonl")]
    assert labels_for(same_folder) == ["val19/b4.plain", "val19/b4.stop"]


def test_a_file_solved_with_oracle_subquestions_is_named_so_and_not_set_beside_the_papers_pair(tmp_path, capsys):
    """`socratic solve --oracle` (QA on the human subquestions) says so in its settings sidecar; without
    the mark its row would read "iterative" with the paper's 21.1 % for the QG/QA pair beside it."""
    folder = tmp_path / "iterative"
    folder.mkdir()
    paths = []
    for rule, oracle in [("retry", False), ("oracle", True)]:
        path = write_jsonl(folder / f"predictions.gsm8k.test.{rule}.jsonl", [prediction(True, method="iterative")])
        (folder / f"{path.name}.settings.json").write_text(json.dumps({"method": "iterative", "oracle": oracle}))
        paths.append(str(path))
    bare = write_jsonl(tmp_path / "bare" / "predictions.gsm8k.test.jsonl", [prediction(True, method="iterative")])
    scores = run_evaluate(EvaluateConfig([*paths, str(bare)])).scores
    assert [s.method for s in scores] == ["iterative", "iterative (oracle)", "iterative"]
    out = capsys.readouterr().out
    assert "| iterative/gsm8k.test.oracle | gsm8k/test | iterative (oracle) | 1 | 100.0 % |" in out
    assert "| iterative (oracle) | 1 | 100.0 % | 20.7–100.0 | 0 | 0 | 0 | 0 | – |" in out


def test_hostile_arithmetic_in_a_chain_is_scored_quickly(tmp_path):
    hostile = ["1.0000001**10000000", "1e309", "1.001**30000", "9**9**9", "(" * 300, "1/0", "2**" + "9" * 200]
    predictions = [
        Prediction(f"gsm8k/test/{i}", "cot", (Step("", f"<<{e}=3>>3"),), "", "3", False, {"finish": "answer"})
        for i, e in enumerate(hostile)
    ]
    path = write_jsonl(tmp_path / "p.jsonl", predictions)
    started = time.perf_counter()
    [scored] = run_evaluate(EvaluateConfig([str(path)])).scores
    # A guard against a hang (9**9**9 computed would take hours), not a speed target: 0.5 s failed
    # on a loaded machine, where loading the test split alone can take that long.
    assert time.perf_counter() - started < 20
    # 1.0000001**10000000 is e, which "3" rounds to; every other annotation is wrong or refused.
    assert (scored.failures["arithmetic"], scored.failures["wrong reasoning"]) == (6, 1)


def test_the_shape_of_decompositions_counts_steps_cut_offs_and_loops(tmp_path, capsys):
    ids = [f"gsm8k/test/{i}" for i in range(3)]
    q, a = Step("How many?", "2"), Step("How much?", "3")
    predictions = [
        Prediction(ids[0], "iterative", (q, a), "", "3", False, {"finish": "end", "retried": 2}),
        Prediction(ids[1], "iterative", (q, a, Step("how  MANY?", "4")), "", "4", False, {"finish": "max_steps"}),
        Prediction(ids[2], "iterative", (q,), "", "2", False, {"finish": "repeat"}),
    ]
    path = tmp_path / "it" / "predictions.gsm8k.test.jsonl"
    path.parent.mkdir()
    write_jsonl(path, predictions)
    [scored] = run_evaluate(EvaluateConfig([str(path)])).scores
    human = [len(p.human_steps) for p in load_task("gsm8k").load("test")[:3]]
    assert scored.shape == Shape(2.0, 1, 1, 1, 1, sum(human) / 3)
    assert "| 1 (33.3 %) (1 stopped there; 1 asked QG again) |" in capsys.readouterr().out
    assert shape_of(predictions[:1], {}).human_steps is None  # no human decompositions: nothing to compare


def test_strategyqa_counts_its_annotators_decomposition_as_the_human_steps(tmp_path):
    problems = load_task("strategyqa").load("test")[:2]
    predictions = [Prediction(p.id, "unified", (Step("Is it?", "Yes."),), "", "yes", False, {}) for p in problems]
    path = tmp_path / "u" / "predictions.strategyqa.test.jsonl"
    path.parent.mkdir()
    write_jsonl(path, predictions)
    [scored] = run_evaluate(EvaluateConfig([str(path)])).scores
    assert all(p.decomposition for p in problems)
    assert scored.shape.human_steps == sum(len(p.decomposition) for p in problems) / 2


def _score(method: str, correct: int, total: int = 300) -> Score:
    return Score(method, "svamp/test", method, total, correct, {})


def test_the_verdict_sets_the_better_socratic_student_against_each_baseline_in_plain_words():
    scores = [_score("answer", 7), _score("cot", 52), _score("unified", 93), _score("iterative", 90)]
    pairs = [Paired("unified", "cot", 300, 55, 14), Paired("unified", "answer", 300, 86, 0)]
    pairs += [Paired("iterative", "cot", 300, 50, 12), Paired("iterative", "unified", 300, 9, 12)]
    against_cot, against_answer = verdict(scores, pairs)
    assert (
        against_cot
        == f"Socratic (unified) 31.0 % vs CoT 17.3 %: better, p = {mcnemar_exact(55, 14):.2g} on 300 paired problems"
    )
    assert against_answer.startswith("Socratic (unified) 31.0 % vs answer-only 2.3 %: better, p = 2.6e-26 on 300")


def test_the_verdict_says_when_a_difference_is_chance_or_goes_the_other_way():
    scores = [_score("cot", 60), _score("iterative", 55), _score("answer", 90)]
    pairs = [Paired("iterative", "cot", 300, 20, 25), Paired("iterative", "answer", 300, 10, 45)]
    assert verdict(scores, pairs) == [
        "Socratic (iterative) 18.3 % vs CoT 20.0 %: no difference beyond chance, p = 0.55 on 300 paired problems",
        "Socratic (iterative) 18.3 % vs answer-only 30.0 %: worse, p = 2.1e-06 on 300 paired problems",
    ]


def test_no_verdict_without_a_socratic_student_or_with_two_of_one_method():
    assert verdict([_score("answer", 1), _score("cot", 2)], [Paired("cot", "answer", 300, 2, 1)]) == []
    twice = [_score("cot", 2), Score("other", "svamp/test", "unified", 300, 3, {}), _score("unified", 4)]
    assert verdict(twice, []) == []
