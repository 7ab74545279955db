"""`socratic export`: the exported GGUF loads in llama.cpp (`llama_cpp.Llama`) and, prompted through its
own chat template, writes the student's greedy text; the pair's files and README; bad input."""

import shutil

import pytest
from huggingface_hub import ModelCard

from socratic.cli import main
from socratic.commands.export import ExportConfig, run_export
from socratic.core.config import build
from socratic.core.machine import usable_cores
from socratic.engines import HFEngine
from socratic.llamacpp.buffers import without_repacking
from socratic.tasks import load_task
from socratic.text import formats
from socratic.weights.gguf_io import gguf_strings
from tests.commands import ollama_modelfile


def metadata(path, key: str) -> str:
    return gguf_strings(path)[key]


def test_an_exported_student_writes_its_greedy_text_in_llama_cpp(any_make_student, kind, tmp_path):
    from llama_cpp import Llama

    student = any_make_student("unified")
    # 16 tokens on one thread keep the fast tier fast; SmolLM2 writes 48, on every usable core.
    tokens, threads = (16, 1) if kind == "tiny" else (48, usable_cores())
    out = run_export(build(ExportConfig, dict(model=str(student), out=str(tmp_path / "export"), gguf_type="f32")))
    exported = out / "model.f32.gguf"
    assert {p.name for p in out.iterdir()} == {exported.name, "Modelfile", "chat_template.jinja", "README.md"}
    assert metadata(exported, "tokenizer.chat_template") == formats.chat_template()
    parsed = dict(ollama_modelfile.parse((out / "Modelfile").read_text()))
    assert parsed == {"model": f"./{exported.name}", "template": formats.ollama_template(), "temperature": "0"}
    assert ModelCard.load(out / "README.md").data.tags[-1] == "unified"
    questions = [p.question for p in load_task("gsm8k").load("test", limit=2)]
    # The student's greedy text, as `socratic solve --engine hf` writes it (no calculator: a plain runtime has none).
    engine = HFEngine(str(student), threads=threads)
    expected = engine.complete([formats.problem_prompt(q) for q in questions], "answer", tokens)
    with without_repacking():
        llama = Llama(model_path=str(exported), n_ctx=1024, n_threads=threads, verbose=False)
    for question, completion in zip(questions, expected, strict=True):
        prompt = formats.problem_prompt(question)
        plain = llama.create_completion(prompt, max_tokens=tokens, temperature=0)["choices"][0]["text"]
        chat = llama.create_chat_completion([{"role": "user", "content": question}], max_tokens=tokens, temperature=0)
        assert completion.text
        assert plain.startswith(completion.text)  # llama.cpp goes on past the answer line (socratic stops there)
        assert chat["choices"][0]["message"]["content"] == plain


def test_an_iterative_pair_exports_both_students_and_how_to_drive_them(make_tiny_student, tmp_path):
    pair = tmp_path / "pair"
    pair.mkdir()
    for role in ("qg", "qa"):
        shutil.copytree(make_tiny_student(role), pair / role, symlinks=True)
    assert main(["export", "--model", str(pair)]) == 0
    out = pair / "export"
    assert {p.name for p in out.iterdir()} == {
        "qg.f32.gguf",
        "qa.f32.gguf",
        "Modelfile.qg",
        "Modelfile.qa",
        "README.md",
    }
    assert metadata(out / "qg.f32.gguf", "socratic.role") == "qg"
    for role in ("qg", "qa"):  # read as `ollama create` reads it: the stop is the newline itself
        parsed = ollama_modelfile.parse((out / f"Modelfile.{role}").read_text())
        expected = [("model", f"./{role}.f32.gguf"), ("template", "{{ .Prompt }}"), ("temperature", "0")]
        assert parsed == [*expected, ("stop", "\n")]
    readme = (out / "README.md").read_text()
    assert "qg.f32.gguf" in readme and formats.END_MARKER in readme
    card = ModelCard.load(out / "README.md")
    assert card.data.tags[-1] == "iterative" and "socratic" in card.data.tags


def test_export_refuses_what_it_cannot_export(make_tiny_student, tmp_path, capsys):
    assert main(["export", "--model", str(make_tiny_student("qg"))]) == 2
    assert "one half of an iterative pair" in capsys.readouterr().err
    empty = tmp_path / "not-a-student"
    empty.mkdir()
    assert main(["export", "--model", str(empty)]) == 2
    assert "not-a-student" in capsys.readouterr().err


def test_the_modelfile_parser_reads_values_as_ollamas_own_tests_say():
    # Cases of ollama/ollama parser/parser_test.go (TestParseFileParameters), to trust the port.
    cases = {
        "stop ### User:": "### User:",
        "stop ### User: ": "### User:",
        'stop "### User:"': "### User:",
        'stop "### User: "': "### User: ",
        'stop """### User:"""': "### User:",
        'stop """### User:\n"""': "### User:\n",
        "stop <|endoftext|>": "<|endoftext|>",
    }
    for line, value in cases.items():
        assert ollama_modelfile.parse(f"FROM foo\nPARAMETER {line}\n") == [("model", "foo"), ("stop", value)], line
    assert ollama_modelfile.parse('FROM foo\nPARAMETER stop "\\n"\n')[1] == ("stop", "\\n"), "no escapes: \\ and n"


def with_messy_spacing(question: str) -> str:
    """The problem as pasted: spaces and a tab around, a sentence break turned into a newline and indent."""
    return "  " + question.replace(". ", ".  \n\t  ", 1) + " \n"


@pytest.mark.slow
def test_the_exported_gguf_answers_as_socratic_ask_in_llama_cpp_and_its_server(make_student, tmp_path, capsys):
    """SmolLM2 posing as a unified student, exported: llama-cpp-python's `create_chat_completion` (the
    GGUF's own chat template) and `python -m llama_cpp.server` write the greedy text `socratic ask`
    writes, on 24 problems, half of them with messy whitespace (the template folds it as training did)."""
    import json

    import openai
    from llama_cpp import Llama

    import socratic
    from socratic.testing.llama_server import LlamaServer

    student, tokens = make_student("unified"), 32
    out = run_export(build(ExportConfig, dict(model=str(student), out=str(tmp_path / "export"))))
    gguf = out / "model.f32.gguf"
    capsys.readouterr()  # what export printed
    problems = [p.question for p in load_task("gsm8k").load("test", limit=12)]
    questions = problems + [with_messy_spacing(q) for q in problems]
    # `socratic ask` on two problems; on all, what it runs (its Dialogues) loaded once, one problem at a time.
    threads = str(usable_cores())
    flags = ["--engine", "llamacpp", "--threads", threads, "--no-calculator", "--max-new-tokens", str(tokens)]
    for question in (questions[0], questions[-1]):
        assert main(["ask", "--model", str(student), *flags, "--json", question]) == 0
    printed = [json.loads(line)["output"] for line in capsys.readouterr().out.splitlines()]
    runtime, decode = (
        socratic.EngineOptions(engine="llamacpp", threads=usable_cores()),
        socratic.DecodeOptions(tokens, calculator=False),
    )
    asking = socratic.Student.load(student, runtime=runtime, decode=decode)
    asked = [asking.solve([question])[0].output for question in questions]
    assert [asked[0], asked[-1]] == printed
    del asking
    assert len(set(asked)) > 10, "different problems, different texts: a mix-up would show"

    def as_socratic_cuts_it(text: str) -> str:  # socratic stops after the answer line; llama.cpp goes on
        end = formats.completion_end(text, "answer")
        return text if end is None else text[:end]

    with without_repacking():
        llama = Llama(model_path=str(gguf), n_ctx=1024, n_threads=usable_cores(), verbose=False)
    for question, expected in zip(questions, asked, strict=True):
        chat = llama.create_chat_completion([{"role": "user", "content": question}], max_tokens=tokens, temperature=0)
        assert as_socratic_cuts_it(chat["choices"][0]["message"]["content"]) == expected, question
    del llama
    with LlamaServer(gguf, tmp_path / "server.log", n_ctx=1024) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=300)
        for question, expected in zip(questions, asked, strict=True):
            reply = client.chat.completions.create(
                model=str(gguf),
                messages=[{"role": "user", "content": question}],
                max_tokens=tokens,
                temperature=0,
                extra_body={"repeat_penalty": 1.0},  # the server's default is 1.1: not the greedy text
            )
            assert as_socratic_cuts_it(reply.choices[0].message.content) == expected, question
