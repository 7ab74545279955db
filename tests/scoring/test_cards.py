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
