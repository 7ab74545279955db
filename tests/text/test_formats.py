"""The student text layouts: exact round trips, on every human GSM8K chain, and tolerant parsing."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socratic.core.records import Step
from socratic.tasks import gsm8k
from socratic.text import formats
from socratic.text.formats import (
    END_MARKER,
    examples,
    parse_chain,
    parse_solution,
    parse_subquestion,
    qa_prompt,
    qg_prompt,
    target,
)

STEPS = (Step("How many clips in May?", "48/2 = <<48/2=24>>24"), Step("How many in all?", "48+24 = <<48+24=72>>72"))


@pytest.fixture(scope="module")
def gsm8k_train():
    return gsm8k.load("train")


def test_unified_layout_is_exactly_as_documented():
    [example] = examples("unified", "Natalia sold clips.", STEPS, "72")
    assert example.prompt == "Problem: Natalia sold clips.\n"
    assert example.completion == (
        "Q: How many clips in May?\nA: 48/2 = <<48/2=24>>24\nQ: How many in all?\nA: 48+24 = <<48+24=72>>72\nAnswer: 72"
    )


def test_one_pass_modes():
    assert target("answer", STEPS, "72") == "Answer: 72"
    assert target("cot", STEPS, "72") == "48/2 = <<48/2=24>>24\n48+24 = <<48+24=72>>72\nAnswer: 72"


def test_iterative_modes_extend_each_other_line_by_line():
    qg = examples("qg", "P", STEPS, "72")
    qa = examples("qa", "P", STEPS, "72")
    assert [e.completion for e in qg] == ["Q: How many clips in May?\n", "Q: How many in all?\n", f"{END_MARKER}\n"]
    assert [e.completion for e in qa] == ["A: 48/2 = <<48/2=24>>24\n", "A: 48+24 = <<48+24=72>>72\n"]
    # QA's prompt is QG's prompt plus QG's completion; the next QG prompt is that plus QA's completion.
    for k in range(len(STEPS)):
        assert qa[k].prompt == qg[k].prompt + qg[k].completion
        assert qg[k + 1].prompt == qa[k].prompt + qa[k].completion
    # ... and the whole iterative text is the unified text without its answer line.
    unified = examples("unified", "P", STEPS, "72")[0]
    assert qg[-1].prompt == unified.prompt + unified.completion.removesuffix("Answer: 72")


def test_inference_prompts_are_the_training_prompts():
    qg = examples("qg", "P", STEPS, "72")
    qa = examples("qa", "P", STEPS, "72")
    assert [qg_prompt("P", STEPS[:k]) for k in range(3)] == [e.prompt for e in qg]
    assert [qa_prompt("P", STEPS[:k], STEPS[k].question) for k in range(2)] == [e.prompt for e in qa]


def test_modes_that_need_subquestions_refuse_cot_steps():
    with pytest.raises(AssertionError, match="needs a subquestion"):
        examples("qg", "P", (Step("", "a sentence"),), "1")


def test_unknown_role():
    with pytest.raises(ValueError, match="unknown role 'socratic'"):
        examples("socratic", "P", STEPS, "1")


def test_newlines_inside_steps_become_spaces():
    [example] = examples("unified", "line one\nline two", (Step("q\nq", "a\n a"),), "1")
    assert example.prompt == "Problem: line one line two\n"
    assert example.completion == "Q: q q\nA: a a\nAnswer: 1"


@pytest.mark.parametrize("mode", ["unified", "cot"])
def test_round_trip_on_every_gsm8k_training_chain(gsm8k_train, mode):
    assert len(gsm8k_train) == 7473
    for problem in gsm8k_train:
        text = target(mode, problem.human_steps, problem.answer)
        parsed = parse_chain(text)
        cot_steps = tuple(Step("", s.answer) for s in problem.human_steps if s.answer.strip())
        expected = problem.human_steps if mode == "unified" else cot_steps
        assert parsed.steps == expected, problem.id
        assert parsed.final_answer == problem.answer, problem.id
        assert target(mode, parsed.steps, parsed.final_answer) == text, problem.id


def test_qg_qa_round_trip_on_every_gsm8k_training_chain(gsm8k_train):
    for problem in gsm8k_train:
        steps = problem.human_steps
        questions = [parse_subquestion(e.completion) for e in examples("qg", problem.question, steps, problem.answer)]
        solutions = [parse_solution(e.completion) for e in examples("qa", problem.question, steps, problem.answer)]
        assert questions == [s.question.strip() for s in steps] + [None], problem.id
        assert solutions == [s.answer.strip() for s in steps], problem.id


@pytest.mark.parametrize(
    ("text", "steps", "final"),
    [
        ("Answer: 5", (), "5"),
        ("Q: a?\nA: 1\nAnswer: 5\nQ: junk after the answer", (Step("a?", "1"),), "5"),
        ("Q: a?\nA: 1\nQ: b?\nA: 2", (Step("a?", "1"), Step("b?", "2")), None),  # ran out of tokens
        ("Q: a?\nQ: b?\nA: 2\n\nsome prose", (Step("a?", ""), Step("b?", "2"), Step("", "some prose")), None),
        ("A: 3\nQ: dangling?", (Step("", "3"), Step("dangling?", "")), None),
        ("Q:a?\nA:1\nAnswer:5", (Step("a?", "1"),), "5"),  # no spaces after the markers
    ],
)
def test_parse_chain_tolerates_what_small_models_write(text, steps, final):
    parsed = parse_chain(text)
    assert (parsed.steps, parsed.final_answer) == (steps, final)


def test_answer_text_falls_back_to_the_last_solution():
    assert parse_chain("Q: a?\nA: so 7 apples").answer_text == "so 7 apples"
    assert parse_chain("Q: a?\nA: 7\nAnswer: 8").answer_text == "8"
    assert parse_chain("").answer_text == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Q: next?\nA: spill", "next?"), (f"{END_MARKER}\n", None), ("", None), ("  \n", None), ("bare?", "bare?")],
)
def test_parse_subquestion(text, expected):
    assert parse_subquestion(text) == expected


def test_format_version_is_an_int():
    assert isinstance(formats.FORMAT_VERSION, int)


@pytest.mark.parametrize(
    ("text", "until", "end"),
    [
        ("Q: a\nA: b\nAnswer: 5", "answer", None),  # the answer line may still grow
        ("Q: a\nAnswer: 5\nQ: more", "answer", 14),
        ("Answer: 5\n", "answer", 9),
        ("The Answer: 5\n", "answer", None),  # only a line that starts with it
        ("Answer: 100 | Background: The answer is 10.", "answer", 11),  # the answer written: the rest is not read
        ("Answer: 1,250.5 dollars", "answer", 15),
        ("Answer: $12 each", "answer", 11),
        ("Answer: 6. The", "answer", 10),
        ("Answer: yes, he could", "answer", 12),
        ("Answer: No it", "answer", 10),
        ("Answer: 100", "answer", None),  # the number may still grow
        ("Answer: 100 ", "answer", None),  # ... or an operator come next
        ("Answer: 11-5 = <<11-5=6>>6 more", "answer", None),  # an expression: up to the newline, as before
        ("Answer: 11 - 5 = 6 more", "answer", None),
        ("Answer: 3 x 4", "answer", None),
        ("Answer: The total is 7", "answer", None),  # no answer in the first word: up to the newline
        ("Answer: nothing more", "answer", None),
        ("Q: x\nA", "line", 5),
        ("Q: x", "line", None),
    ],
)
def test_completion_end(text, until, end):
    assert formats.completion_end(text, until) == end


@pytest.mark.parametrize("mode", formats.ROLES)
def test_segments_teach_exactly_the_examples(mode):
    """Each trained piece, with everything before it as the prompt, is one of the mode's examples."""
    steps = gsm8k.load("train")[3].human_steps
    pieces = formats.segments(mode, "A question?", steps, "7")
    taught = [
        formats.Example("".join(text for text, _ in pieces[:i]), text)
        for i, (text, trained) in enumerate(pieces)
        if trained
    ]
    assert taught == formats.examples(mode, "A question?", steps, "7")


def test_iterative_students_learn_a_yes_no_verdict_in_the_last_solution():
    """The iterative loop's answer is the last solution; a StrategyQA fact holds no yes/no, so it is added."""
    from socratic.tasks import strategyqa
    from socratic.text.answers import extract_yes_no

    facts = (Step("How many kids did Caesar have?", "Caesar had three children."), Step("Is #1 > 2?", "3 is more."))
    solutions = [parse_solution(e.completion) for e in examples("qa", "Q?", facts, "yes")]
    assert solutions == ["Caesar had three children.", "3 is more. So the answer is yes."]
    assert examples("qg", "Q?", facts, "no")[-1].prompt.endswith("A: 3 is more. So the answer is no.\n")
    for mode in ("qg", "qa"):
        pieces = formats.segments(mode, "Q?", facts, "no")
        assert "".join(text for text, _ in pieces).endswith(
            "So the answer is no.\n" + ("[END]\n" if mode == "qg" else "")
        )
    assert examples("qa", "Q?", STEPS, "72")[-1].completion == "A: 48+24 = <<48+24=72>>72\n", "numbers: unchanged"
    # On real chains the added sentence is what answer extraction reads, whatever words the facts use.
    for problem in strategyqa.load("train")[:300]:
        if len(problem.facts) == len(problem.decomposition):  # the pairs `--teacher human` makes
            steps = [Step(q, fact) for q, fact in zip(problem.decomposition, problem.facts, strict=True)]
            last = examples("qa", problem.question, steps, problem.answer)[-1]
            assert extract_yes_no(parse_solution(last.completion)) == problem.answer, problem.id


# Problems as users type them: words, spaces, tabs, newlines (\n, \r\n), Unicode whitespace (no-break,
# ideographic, line separator, NEL, vertical tab) and other scripts, anywhere in the problem.
PROBLEM_TEXT = st.text(
    alphabet=st.sampled_from([*"ab1 ?.\t\n\r", "\u00a0", "\u3000", "\u2028", "\x85", "\x0b", "é", "中", "🙂"]),
    min_size=1,
    max_size=40,
).filter(str.strip)


def rendered_by_llama_cpp(template: str, messages: list[dict]) -> str:
    """The prompt llama-cpp-python's `create_chat_completion` (and so `python -m llama_cpp.server`) builds
    from a GGUF's chat template: its own formatter, not a copy of it."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    return Jinja2ChatFormatter(template, eos_token="<|im_end|>", bos_token="<|im_start|>")(messages=messages).prompt


@settings(max_examples=300, deadline=None)
@given(question=PROBLEM_TEXT)
def test_the_exported_chat_template_renders_the_training_prompt_byte_for_byte(question):
    from jinja2.sandbox import ImmutableSandboxedEnvironment  # what transformers renders with

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "earlier"}]
    messages.append({"role": "user", "content": question})
    assert rendered_by_llama_cpp(formats.chat_template(), messages) == formats.problem_prompt(question)
    template = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(formats.chat_template())
    assert template.render(messages=messages, add_generation_prompt=True) == formats.problem_prompt(question)


def test_the_chat_template_folds_what_the_old_one_kept():
    # The old template replaced each newline by a space and kept the spaces around it: 6 where training has 1.
    question = "Tom has 3 boxes of 12 eggs.  \n   How many?"
    assert formats.problem_prompt(question) == "Problem: Tom has 3 boxes of 12 eggs. How many?\n"
    assert rendered_by_llama_cpp(formats.chat_template(), [{"role": "user", "content": question}]) == (
        formats.problem_prompt(question)
    )


@settings(max_examples=300, deadline=None)
@given(question=PROBLEM_TEXT)
def test_the_ollama_template_renders_the_training_prompt_of_the_problem_on_one_line(question):
    # Ollama's templates cannot fold text (no string functions), so its user sends `one_line_problem`;
    # the template's only action is {{ .Prompt }}, which Go's text/template writes unescaped.
    template = formats.ollama_template()
    assert template.count("{{") == 1
    rendered = template.replace("{{ .Prompt }}", formats.one_line_problem(question))
    assert rendered == formats.problem_prompt(question)
    assert formats.one_line_problem(formats.one_line_problem(question)) == formats.one_line_problem(question)


def test_the_runtime_templates_come_from_the_prompt_builder():
    before, after = formats.prompt_around_problem()
    assert before + "x" + after == formats.problem_prompt("x")
    assert formats.ollama_template() == before + "{{ .Prompt }}" + after
