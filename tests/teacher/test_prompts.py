"""Shipped teacher prompts: valid, self-consistent exemplars, rendered in the students' own layout."""

import json

import pytest

from socratic.core.errors import SocraticError
from socratic.tasks import BENCHMARKS
from socratic.teacher import prompts
from socratic.text import formats
from socratic.text.calculator import find_annotations

SHIPPED = [(name, style) for name in BENCHMARKS for style in prompts.STYLES]


@pytest.mark.parametrize(("dataset", "style"), SHIPPED)
def test_shipped_prompts_load_and_their_exemplars_are_right(dataset, style):
    prompt = prompts.load(dataset, style)
    task = BENCHMARKS[dataset]
    assert len(prompt.exemplars) >= 3
    for exemplar in prompt.exemplars:
        # Each exemplar's arithmetic is right and its text yields its own answer: a teacher copying
        # the exemplars' habits must not be taught a wrong one.
        assert all(a.correct for s in exemplar.steps for a in find_annotations(s.answer)), exemplar.question
        parsed = formats.parse_chain(formats.target(prompt.mode, exemplar.steps, exemplar.answer))
        assert task.is_correct(task.extract_answer(parsed.answer_text), exemplar.answer)
        if task.answer_kind == "number":
            assert task.extract_answer(exemplar.steps[-1].answer) == exemplar.answer, exemplar.question


def test_messages_and_text_end_with_the_problem():
    prompt = prompts.load("gsm8k", "socratic")
    messages = prompt.as_messages("What is 2+2?")
    assert messages[0]["role"] == "system" and messages[-1] == {"role": "user", "content": "Problem: What is 2+2?\n"}
    assert messages[2]["content"].startswith("Q: ") and messages[2]["content"].splitlines()[-1].startswith("Answer: ")
    assert prompt.as_text("What is 2+2?").endswith("\n\nProblem: What is 2+2?\n")


def test_facts_are_shown_only_when_asked():
    question, facts = "Is ice cold?", ("Ice is frozen water.",)
    assert "Facts:" not in prompts.load("strategyqa", "socratic").as_messages(question, facts)[-1]["content"]
    shown = prompts.load("strategyqa", "socratic", with_facts=True).as_messages(question, facts)[-1]["content"]
    assert shown == "Problem: Is ice cold? Facts: Ice is frozen water.\n"


def test_hash_changes_with_what_the_teacher_sees(tmp_path):
    base = prompts.load("gsm8k", "socratic")
    assert base.hash == prompts.load("gsm8k", "socratic").hash
    assert base.hash != prompts.load("gsm8k", "socratic", with_facts=True).hash
    data = {
        "instruction": base.instruction + " Be brief.",
        "style": "socratic",
        "exemplars": [
            {
                "question": e.question,
                "steps": [{"question": s.question, "answer": s.answer} for s in e.steps],
                "answer": e.answer,
            }
            for e in base.exemplars
        ],
    }
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data))
    assert prompts.load("gsm8k", "socratic", path).hash != base.hash


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a valid prompt file"),
        ('{"exemplars": []}', "not a valid prompt file"),
        (b'{"instruction": "\xff"}', r"bad\.json:1: not UTF-8 text"),  # issue 35: was UnicodeDecodeError
        ('{"exemplars": ' + "[" * 100 + "]" * 100 + "}", r"not a valid prompt file \(not valid JSON \(nested"),
        (
            '{"instruction": "x", "exemplars": '
            '[{"question": "q", "steps": [{"question": "", "answer": "a"}], "answer": "1"}]}',
            "needs a question",
        ),
    ],
)
def test_bad_prompt_files(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    with pytest.raises(SocraticError, match=message):
        prompts.load("gsm8k", "socratic", path)


def test_a_users_dataset_gets_the_prompt_of_its_answer_kind():
    assert prompts.load("mydata", "socratic", answer_kind="number") == prompts.load("gsm8k", "socratic")
    assert prompts.load("mydata", "cot", answer_kind="yesno") == prompts.load("strategyqa", "cot")
    with pytest.raises(SocraticError, match="pass --prompt FILE"):
        prompts.load("mydata", "socratic", answer_kind="text")
