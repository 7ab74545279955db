"""The training set of a role: chains read once each, their problems found, pieces and trained tokens."""

import pytest

from socratic.core.errors import SocraticError
from socratic.core.jsonl import write_jsonl
from socratic.core.records import Chain
from socratic.tasks import gsm8k
from socratic.text import formats
from socratic.training.data import load_pieces, tokenize_pieces
from tests.training.runs import quick


def test_iterative_pieces_cost_far_fewer_tokens_than_per_step_examples(tiny_model, chains_file, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    problems = gsm8k.load("train")[:6]
    for mode in ("qg", "qa"):
        pieces, _ = load_pieces(quick(tiny_model, chains_file, tmp_path), mode)
        ours = sum(len(tokenize_pieces(tokenizer, p)["input_ids"]) for p in pieces)
        per_step = sum(
            len(tokenizer(e.prompt + e.completion)["input_ids"]) + 1
            for p in problems
            for e in formats.examples(mode, p.question, p.human_steps, p.answer)
        )
        assert ours * 2 < per_step, (mode, ours, per_step)


def test_repeated_chains_are_trained_once(tiny_model, chains_file, tmp_path, caplog):
    twice = tmp_path / "twice.jsonl"
    twice.write_text(chains_file.read_text() * 2)
    once_pieces, once_hash = load_pieces(quick(tiny_model, chains_file, tmp_path), "unified")
    pieces, digest = load_pieces(quick(tiny_model, twice, tmp_path), "unified")
    assert (len(pieces), digest) == (len(once_pieces), once_hash)
    assert "6 repeated chains dropped" in caplog.text
    first_two, _ = load_pieces(quick(tiny_model, twice, tmp_path, limit=2, offset=1), "unified")
    assert first_two == once_pieces[1:3], "--offset 1 --limit 2: the chains of problems 1 and 2"


def test_chain_ids_must_name_dataset_split_and_problem(tiny_model, tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [Chain("17", "socratic", (), "72", True, "human")])
    with pytest.raises(SocraticError, match=r"bad.jsonl: chain 1: field 'problem_id': expected an id like"):
        load_pieces(quick(tiny_model, bad, tmp_path), "unified")
