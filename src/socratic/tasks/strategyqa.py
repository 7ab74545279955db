"""StrategyQA: yes/no questions that need implicit multi-hop reasoning (train 2,061 / test 229).

    socratic data show --dataset strategyqa --split test --limit 2

Source: Geva et al. 2021, allenai.org/data/strategyqa, as redistributed with an MIT licence
(data/strategyqa/LICENSE). The labelled set is 2,290 questions; its published train/dev files are
our train/test splits. Each problem keeps the annotators' `decomposition` (subquestions, which
refer to earlier answers as "#1", "#2") and `facts`; the `evidence` column (Wikipedia paragraph ids)
is not shipped. Answers are "yes"/"no"; a prediction is read with `answers.extract_yes_no`.
"""

from __future__ import annotations

import json

from socratic.core.records import Problem
from socratic.tasks.base import Task, parsed_once, shipped_lines
from socratic.text.answers import normalize_answer


@parsed_once
def load(split: str) -> list[Problem]:
    problems = []
    for line in shipped_lines("strategyqa", f"{split}.jsonl"):
        row = json.loads(line)
        problems.append(
            Problem(
                id=f"strategyqa/{split}/{row['qid']}",
                dataset="strategyqa",
                question=row["question"],
                answer=normalize_answer(row["answer"]),
                facts=tuple(row["facts"]),
                decomposition=tuple(row["decomposition"]),
                meta={"term": row["term"], "description": row["description"]},
            )
        )
    return problems


TASK = Task(
    name="strategyqa",
    description="yes/no questions needing implicit multi-hop reasoning (Geva et al. 2021)",
    splits=("train", "test"),
    answer_kind="yesno",
    loader=load,
    hub_id="ChilleD/StrategyQA",
)
