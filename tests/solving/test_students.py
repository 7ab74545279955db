"""Opening students for `solve`: each folder must fit its role, a missing engine is a clear error,
and a LoRA-trained QG + QA pair loads as two adapters of one model with the merged students' logits."""

import json
import shutil

import pytest

from socratic.commands.solve import SolveConfig, run_solve
from socratic.core.config import build
from socratic.core.errors import SocraticError
from socratic.core.jsonl import read_jsonl
from socratic.core.records import Prediction
from socratic.engines import HFEngine
from socratic.solving.loops import DecodeOptions, solve_iterative
from socratic.solving.students import EngineOptions, StudentOptions, open_adapter_roles, open_engines
from socratic.tasks import load_task
from socratic.text.methods import get_method
from socratic.weights.student_folder import student_gguf


def test_students_must_fit_their_role(make_student, tmp_path):
    unified = make_student("unified")
    with pytest.raises(SocraticError, match="'unified' student; --method iterative needs a 'qg'"):
        run_solve(
            SolveConfig(
                method="iterative",
                student=StudentOptions(qg=str(unified), qa=str(unified)),
                out=str(tmp_path / "p.jsonl"),
            )
        )
    with pytest.raises(SocraticError, match="needs --model"):
        run_solve(SolveConfig(method="cot"))
    with pytest.raises(SocraticError, match="use it with --method iterative"):
        run_solve(SolveConfig(method="unified", student=StudentOptions(str(unified)), oracle=True))
    weightless = tmp_path / "weightless"
    weightless.mkdir()
    (weightless / "socratic.json").write_text((unified / "socratic.json").read_text())
    with pytest.raises(SocraticError, match=r"has no model\.safetensors: its training did not finish"):
        run_solve(SolveConfig(method="unified", student=StudentOptions(str(weightless))))


def test_vllm_engine_is_reported_clearly_where_missing(make_student):
    import importlib.util

    import torch

    if importlib.util.find_spec("vllm") is not None and torch.cuda.is_available():
        pytest.skip("vLLM and a GPU are here: the engine is exercised by test_vllm_matches_hf")
    with pytest.raises(SocraticError, match="needs vLLM and a GPU"):
        config = build(SolveConfig, dict(method="unified", model=str(make_student("unified")), engine="vllm", limit=1))
        run_solve(config)


@pytest.mark.parametrize(
    "training",
    # Both on the tiny model, the training is what is slow: one short step per role in the fast tier.
    [
        pytest.param(dict(max_steps=1, max_length=256, threads=1), id="short"),
        pytest.param(dict(max_steps=3), id="long", marks=pytest.mark.slow),
    ],
)
def test_qg_and_qa_as_two_adapters_of_one_model_match_the_merged_students(tiny_model, tmp_path, training):
    """QG and QA trained with LoRA load as two adapters of one model, each with its merged student's
    logits, solve together, and a pair without adapters is refused."""
    import torch

    from socratic.core.jsonl import write_jsonl
    from socratic.teacher.human import human_chain
    from socratic.training.config import TrainConfig
    from socratic.training.train import run_train

    train = load_task("gsm8k").load("train", limit=4)
    chains = write_jsonl(tmp_path / "chains.jsonl", [human_chain(p, "socratic") for p in train])
    students = run_train(
        TrainConfig(
            method="iterative",
            chains=str(chains),
            model=str(tiny_model),
            out=str(tmp_path / "it"),
            lora_r=8,
            learning_rate=3e-2,
            batch_size=2,
            save_steps=1000,
            **training,
        )
    )
    folders = {"qg": str(students / "qg"), "qa": str(students / "qa")}
    qg, qa = open_adapter_roles(folders, EngineOptions())
    assert qg.engine is qa.engine, "one model in memory for both roles"
    ids = qa.engine.tokenizer("Problem: Tom has 3 apples.\nQ:", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        for role in (qg, qa):
            merged = HFEngine(students / role.adapter).model
            role.engine.model.set_adapter(role.adapter)
            assert torch.allclose(role.engine.model(ids).logits, merged(ids).logits, atol=1e-4)
    attempts = solve_iterative(qg, qa, [train[0].question], DecodeOptions(max_steps=2, step_tokens=8).settings())
    assert attempts[0].finish in ("end", "max_steps")
    with pytest.raises(SocraticError, match="--adapters needs QG and QA trained with --lora-r"):
        plain = shutil.copytree(students / "qg", tmp_path / "plain", ignore=shutil.ignore_patterns("adapter"))
        open_adapter_roles({**folders, "qg": str(plain)}, EngineOptions())


@pytest.mark.slow
def test_a_student_is_exported_to_gguf_once_from_its_base_or_its_config(make_student, tmp_path):
    student = make_student("unified")
    gguf = student_gguf(student, "q8_0")
    assert gguf == student / "model.q8_0.gguf" and gguf.stat().st_size > 100e6
    exported_at = gguf.stat().st_mtime_ns
    assert student_gguf(student, "q8_0").stat().st_mtime_ns == exported_at, "not exported again"

    foreign = shutil.copytree(student, tmp_path / "foreign", symlinks=True, ignore=shutil.ignore_patterns("*.gguf"))
    info = json.loads((foreign / "socratic.json").read_text())
    (foreign / "socratic.json").write_text(json.dumps({**info, "base_model": "/somewhere/else"}))
    # A base outside the catalogue (a hub id, a folder) has no GGUF template: exported from its own config.
    assert student_gguf(foreign, "q8_0").stat().st_size > 100e6


def test_a_tiny_student_is_exported_to_gguf_once(tiny_decoder, tmp_path, monkeypatch):
    # Fast twin of the test above, with the export stubbed (test_engines.py exports the tiny decoder for
    # real, in float32 and q8_0): the tiny student names SmolLM2 as its base.
    from socratic.text import formats
    from socratic.weights import gguf_io

    exports = []

    def export(student, template, out, weights_type="f32"):
        exports.append((student, template, weights_type))
        out.write_bytes(b"GGUF")
        return out

    monkeypatch.setattr(gguf_io, "export_gguf", export)
    student = tmp_path / "student"
    student.mkdir()
    for item in tiny_decoder.iterdir():
        (student / item.name).symlink_to(item)
    info = {"mode": "unified", "format_version": formats.FORMAT_VERSION, "base_model": "smollm2-135m"}
    (student / "socratic.json").write_text(json.dumps(info))
    gguf = student_gguf(student, "q8_0")
    assert gguf == student / "model.q8_0.gguf" and gguf.read_bytes() == b"GGUF"
    exported_at = gguf.stat().st_mtime_ns
    assert student_gguf(student, "q8_0").stat().st_mtime_ns == exported_at, "not exported again"
    assert len(exports) == 1 and exports[0][2] == "q8_0"

    foreign = shutil.copytree(student, tmp_path / "foreign", symlinks=True, ignore=shutil.ignore_patterns("*.gguf"))
    (foreign / "socratic.json").write_text(json.dumps({**info, "base_model": "/somewhere/else"}))
    from_config = []
    monkeypatch.setattr(gguf_io, "export_gguf_from_hf", lambda *args: from_config.append(args) or args[1])
    student_gguf(foreign)
    assert from_config == [(foreign, foreign / "model.f32.gguf", "f32")]  # no template: from its config


def test_context_sizes_each_llamacpp_sequence_and_is_refused_by_other_engines(make_tiny_student, tmp_path):
    qg, qa = make_tiny_student("qg"), make_tiny_student("qa")
    # Short dialogues (the budgets of `decoding`): the test is about the context, not the length of the text.
    budgets = dict(max_steps=2, step_tokens=8)
    settings = dict(method="iterative", qg=str(qg), qa=str(qa), engine="llamacpp", batch_size=2, limit=2, **budgets)
    iterative, decoding = get_method("iterative"), DecodeOptions(**budgets).settings()
    folders = {"qg": str(qg), "qa": str(qa)}
    _, default = open_engines(iterative, folders, EngineOptions(engine="llamacpp", batch_size=2), decoding)
    _, sized = open_engines(iterative, folders, EngineOptions(engine="llamacpp", batch_size=2, context=512), decoding)
    assert (default.context_per_sequence, sized.context_per_sequence) == (1024, 512)  # 768 + 2 x 2 x 8, rounded up
    with pytest.raises(SocraticError, match="--context sizes the llamacpp engine's KV cache; the hf engine has none"):
        run_solve(build(SolveConfig, {**settings, "engine": "hf", "context": 512}))
    # The budget shapes what is written: predictions made with one are not continued with another.
    out = str(tmp_path / "predictions.jsonl")
    run_solve(build(SolveConfig, {**settings, "context": 512, "limit": 1, "out": out}))
    with pytest.raises(SocraticError, match=r"other settings \(context: 512, now None\)"):
        run_solve(build(SolveConfig, {**settings, "out": out}))
    run_solve(build(SolveConfig, {**settings, "context": 512, "out": out}))
    assert len(list(read_jsonl(out, Prediction))) == 2


def test_the_student_options_are_one_group_of_every_command_that_takes_a_student():
    from socratic.commands.ask import AskConfig
    from socratic.commands.export import ExportConfig
    from socratic.commands.serve import ServeConfig
    from socratic.core.config import options

    for command in (SolveConfig, AskConfig, ServeConfig, ExportConfig):
        assert [o.name for o in options(command) if o.group == "student"] == ["model", "qg", "qa"], command


def test_solve_finds_an_iterative_pair_in_the_folder_given_as_model():
    # `train --method iterative --out X` writes X/qg and X/qa: solve, as ask and serve, takes X itself.
    iterative = get_method("iterative")
    assert StudentOptions("X").folders(iterative) == {"qg": "X/qg", "qa": "X/qa"}
    assert StudentOptions(qg="G", qa="A").folders(iterative) == {"qg": "G", "qa": "A"}
    assert StudentOptions("X", qa="A").folders(iterative) == {"qg": None, "qa": "A"}  # mixed: the flags given
    assert StudentOptions("U").folders(get_method("unified")) == {"unified": "U"}
    assert SolveConfig(method="iterative", student=StudentOptions("X"), oracle=True).student_folders() == {"qa": "X/qa"}
