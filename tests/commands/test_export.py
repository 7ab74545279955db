"""`socratic export`: the exported GGUF loads in llama.cpp (`llama_cpp.Llama`) and, prompted through its
own chat template, writes the student's greedy text; the pair's files and README; bad input."""

import shutil

import pytest
from huggingface_hub import ModelCard

from socratic.cli import main
from socratic.commands.export import ExportConfig, run_export
from socratic.core.config import build
from socratic.engines import HFEngine
from socratic.llamacpp.buffers import without_repacking
from socratic.tasks import load_task
from socratic.text import formats
from socratic.weights.gguf_io import gguf_strings
from tests.commands import ollama_modelfile


def metadata(path, key: str) -> str:
    return gguf_strings(path)[key]


def check_reproduces_the_student(student, tmp_path, kind: str, tokens: int, threads: int) -> None:
    from llama_cpp import Llama

    out = run_export(build(ExportConfig, dict(model=str(student), out=str(tmp_path / "export"), gguf_type=kind)))
    exported = out / f"model.{kind}.gguf"
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


def test_an_exported_tiny_student_writes_its_greedy_text_in_llama_cpp(make_tiny_student, tmp_path):
    check_reproduces_the_student(make_tiny_student("unified"), tmp_path, "f32", tokens=16, threads=1)


@pytest.mark.slow
def test_an_exported_student_writes_its_greedy_text_in_llama_cpp(make_student, tmp_path):
    check_reproduces_the_student(make_student("unified"), tmp_path, "f32", tokens=48, threads=2)


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
        assert parsed == [("model", f"./{role}.f32.gguf"), ("template", "{{ .Prompt }}")] + [
            ("temperature", "0"),
            ("stop", "\n"),
        ]
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
