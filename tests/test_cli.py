"""The `socratic` command as users run it: output, exit status 2 and one-line errors on bad input."""

import json
import os
import subprocess
import sys

import pytest

from socratic.cli import main
from socratic.core.records import Problem, from_dict


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_data_stats_prints_every_split(capsys):
    status, out, _ = run(capsys, "data", "stats")
    assert status == 0
    rows = {tuple(line.split()[:3]) for line in out.splitlines()[2:]}
    assert rows == {
        ("gsm8k", "train", "7,473"),
        ("gsm8k", "test", "1,319"),
        ("svamp", "train", "700"),
        ("svamp", "test", "300"),
        ("strategyqa", "train", "2,061"),
        ("strategyqa", "test", "229"),
    }


def test_data_show_as_text_and_json(capsys):
    status, out, _ = run(capsys, "data", "show", "--dataset", "gsm8k", "--split", "test", "--limit", "2")
    assert status == 0
    assert out.startswith("gsm8k/test/0  gold answer: 18\n")
    assert "Q: How many eggs does Janet sell?" in out and "gsm8k/test/1" in out
    status, out, _ = run(capsys, "data", "show", "--dataset", "svamp", "--limit", "3", "--offset", "1", "--json")
    problems = [from_dict(Problem, json.loads(line)) for line in out.splitlines()]
    assert len(problems) == 3 and all(p.id.startswith("svamp/test/") for p in problems)


def test_data_show_on_a_users_file_with_other_field_names(capsys, tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"prompt": "Is 7 prime?", "label": "yes"}) + "\n", encoding="utf-8")
    status, out, _ = run(
        capsys, "data", "show", "--dataset", str(path), "--question-field", "prompt", "--answer-field", "label"
    )
    assert status == 0 and out.startswith("mine/all/0  gold answer: yes")


@pytest.mark.parametrize(
    ("content", "args", "expected"),
    [
        (
            '{"question": "a", "answer": 1}\n{"question": "b", "answer": 2,,}\n{"question": "c", "answer": 3}\n',
            [],
            "bad.jsonl:2: not valid JSON",
        ),
        ('{"question": "a", "answer": 1}\n{"question": "b"}\n', [], "bad.jsonl:2: field 'answer': missing"),
        (
            '{"q": "a", "answer": 1}\n',
            ["--question-field", "q", "--id-field", "uid"],
            "bad.jsonl:1: field 'uid': missing",
        ),
    ],
)
def test_bad_rows_exit_2_with_one_line_naming_file_line_and_field(capsys, tmp_path, content, args, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    status, out, err = run(capsys, "data", "show", "--dataset", str(path), *args)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("socratic: error: ") and expected in err


def test_unknown_names_exit_2_with_a_suggestion(capsys):
    status, _, err = run(capsys, "data", "show", "--dataset", "strategyq")
    assert status == 2 and err == "socratic: error: unknown dataset 'strategyq' (did you mean 'strategyqa'?)\n"
    status, _, err = run(capsys, "models", "prepare", "gemma-270m")
    assert status == 2 and "did you mean 'gemma3-270m'" in err


def test_models_list(capsys):
    status, out, _ = run(capsys, "models", "list")
    assert status == 0
    for name in ("smollm2-135m", "gemma3-270m", "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"):
        assert name in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["data", "show", "--help"],
        ["data", "stats", "--help"],
        ["models", "prepare", "--help"],
        ["annotate", "--help"],
        ["train", "--help"],
    ],
)
def test_help_teaches(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: socratic" in out and ("example" in out or "command" in out)


def test_console_script_runs_as_installed(tmp_path):
    """The installed entry point, in a fresh process: status codes reach the shell."""
    ok = subprocess.run(
        [sys.executable, "-m", "socratic", "data", "stats", "--dataset", "svamp"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0 and "svamp" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "socratic", "data", "show", "--dataset", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_models_prepare_own_gguf_needs_out_and_a_file(capsys, tmp_path):
    status, _, err = run(capsys, "models", "prepare", "--gguf", str(tmp_path / "x.gguf"))
    assert status == 2 and "--gguf needs --out" in err
    status, _, err = run(capsys, "models", "prepare", "--gguf", str(tmp_path / "x.gguf"), "--out", str(tmp_path / "o"))
    assert status == 2 and "GGUF file not found" in err
    status, _, err = run(capsys, "models", "prepare")
    assert status == 2 and "name a model to prepare" in err


@pytest.mark.slow
def test_a_stage_shows_its_own_bar_and_summary_not_the_libraries(tiny_model, tmp_path):
    """`socratic train` in a fresh process: one progress bar of its own, one summary line; no library
    bars ("Loading weights", tokenizing, packing) or warnings, which `-v` brings back."""
    from socratic.core.jsonl import write_jsonl
    from socratic.tasks import gsm8k
    from socratic.teacher.human import human_chain

    chains = write_jsonl(
        tmp_path / "chains.jsonl",
        [human_chain(p, "socratic") for p in gsm8k.load("train")[:2]],
    )

    def train(*flags):
        out = tmp_path / f"student{len(flags)}"
        argv = ["train", "--chains", str(chains), "--model", str(tiny_model), "--out", str(out), "--max-steps", "2"]
        done = subprocess.run(
            [sys.executable, "-m", "socratic", *flags, *argv, "--save-steps", "1", "--batch-size", "1"],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout, done.stderr

    out, err = train()
    summary = f"{tmp_path / 'student0'}: unified student of {tiny_model}, 2 chains, 2 steps"
    assert len(out.splitlines()) == 1 and out.startswith(summary), "one summary line, no trainer log dicts"
    assert "train unified" in err and "2/2" in err, "the stage's own bar"
    shown = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "train unified" not in line]
    assert shown == [], "nothing else on the terminal"
    _, verbose_err = train("-v")
    assert len(verbose_err) > len(err)


def test_the_libraries_are_quiet_unless_verbose(monkeypatch):
    """Fast twin of the test above: the switches the libraries read are set, and left alone with -v."""
    import warnings

    from socratic.core import console

    for name in console.QUIET_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    with warnings.catch_warnings():
        console.quiet_libraries(verbose=True)
        assert not any(name in os.environ for name in console.QUIET_ENVIRONMENT)
        console.quiet_libraries(verbose=False)
        assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1" and os.environ["TRANSFORMERS_VERBOSITY"] == "error"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            console.quiet_libraries(verbose=False)
            warnings.warn_explicit("deprecated", FutureWarning, "trl/trainer.py", 1, module="trl.trainer")
            warnings.warn_explicit("ours", FutureWarning, "socratic/x.py", 1, module="socratic.x")
        assert [str(w.message) for w in caught] == ["ours"], "the libraries' warnings only"


def leaf_commands(parser, path=()):
    """(the words of the command, its parser) for every command that runs (`socratic data show`, ...)."""
    import argparse

    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subcommands:
        yield path, parser
    for action in subcommands:
        for name, child in action.choices.items():
            yield from leaf_commands(child, (*path, name))


def test_every_command_is_built_one_way_from_its_dataclass():
    from socratic.cli import make_parser
    from socratic.core.config import options

    found = dict(leaf_commands(make_parser()))
    assert {" ".join(words) for words in found} >= {"data show", "models prepare", "solve", "ask", "export"}
    for words, parser in found.items():
        config_class = parser.get_default("options")
        assert config_class is not None, f"socratic {' '.join(words)} is not built by cli.command"
        flags, fields = {a.dest for a in parser._actions} - {"help"}, {o.name for o in options(config_class)}
        # Nothing but its fields, and the stage commands' --config (the file their fields are read from).
        assert fields <= flags and flags - fields <= {"config"}, words
