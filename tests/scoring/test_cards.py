"""Model cards (`socratic.scoring.cards`): the hub's metadata from the catalogue, results from the
student's predictions files, read back with huggingface_hub's own card parser."""

import json

from huggingface_hub import ModelCard

from socratic.scoring import cards


def test_the_card_names_a_catalogue_base_and_its_licence(tmp_path):
    folder = tmp_path / "unified"
    folder.mkdir()
    info = {"role": "unified", "format_version": 1, "base_model": "smollm2-135m", "examples": 12}
    (folder / "socratic.json").write_text(json.dumps(info))
    (folder / "predictions.gsm8k.test.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "problem_id": f"gsm8k/test/{i}",
                    "method": "unified",
                    "output": "",
                    "answer": "1",
                    "gold": "1",
                    "correct": i < 3,
                    "steps": [],
                    "meta": {},
                }
            )
            + "\n"
            for i in range(4)
        )
    )
    card = ModelCard.load(cards.write_student_card(folder))
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and card.data.license == "apache-2.0"
    (result,) = card.data.eval_results
    assert result.metric_value == 75.0 and result.dataset_name == "gsm8k"
    assert "| gsm8k | test | unified | 75.0 % | 3 / 4 |" in card.text
    assert card.data.model_name == "unified"


def test_a_pairs_folder_and_both_halves_get_cards_with_the_pairs_results(tmp_path):
    pair = tmp_path / "iterative"
    for role in ("qg", "qa"):
        (pair / role).mkdir(parents=True)
        info = {"role": role, "format_version": 1, "base_model": "gemma3-270m", "examples": 5}
        (pair / role / "socratic.json").write_text(json.dumps(info))
    row = {"method": "iterative", "output": "", "answer": "2", "gold": "1", "correct": False, "steps": [], "meta": {}}
    (pair / "predictions.svamp.test.jsonl").write_text(json.dumps({**row, "problem_id": "svamp/test/0"}) + "\n")
    cards.after_training(pair, "iterative")
    for folder, role in ((pair, "iterative"), (pair / "qg", "qg"), (pair / "qa", "qa")):
        card = ModelCard.load(folder / "README.md")
        assert card.data.tags[-1] == role and card.data.license == "gemma", folder
        assert card.data.base_model == "google/gemma-3-270m"
        (result,) = card.data.eval_results  # the pair's predictions, on each half's card too
        assert (result.dataset_type, result.metric_value) == ("ChilleD/SVAMP", 0.0)
