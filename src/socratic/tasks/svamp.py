"""SVAMP: 1,000 one-unknown arithmetic word problems with variations, split 700 train / 300 test.

    socratic data show --dataset svamp --split test --limit 2

Source: Patel et al. 2021, github.com/arkilpatel/SVAMP (MIT, data/svamp/LICENSE). Each row has a
`Body` and a `Question`; the problem text is the two joined by a space (a full stop is added when
the body has no closing punctuation, as in "... on each pack. How much ...?").

SVAMP has no official split and the paper splits it itself, so we fix one that any machine and any
Python version reproduces: problems are ordered by the SHA-256 of "svamp:<ID>" and the first 300
form the test split, the other 700 the train split. (A seeded `random.shuffle` would depend on
Python's generator staying the same.) Problem ids keep SVAMP's own id: "svamp/test/chal-17".
"""

from __future__ import annotations

import hashlib
import json

from socratic.core.records import Problem
from socratic.tasks.base import Task, parsed_once, shipped_lines
from socratic.text.answers import normalize_answer

TEST_SIZE = 300


def _split_key(svamp_id: str) -> str:
    return hashlib.sha256(f"svamp:{svamp_id}".encode()).hexdigest()


def problem_text(body: str, question: str) -> str:
    body, question = body.strip(), question.strip()
    if body and body[-1] not in ".?!,":
        body += "."
    return f"{body} {question}"


@parsed_once
def load(split: str) -> list[Problem]:
    rows = json.loads("".join(shipped_lines("svamp", "SVAMP.json")))
    test_ids = set(sorted((row["ID"] for row in rows), key=_split_key)[:TEST_SIZE])
    return [
        Problem(
            id=f"svamp/{split}/{row['ID']}",
            dataset="svamp",
            question=problem_text(row["Body"], row["Question"]),
            answer=normalize_answer(row["Answer"]),
            equation=row["Equation"].strip(),
            meta={"type": row["Type"]},
        )
        for row in rows
        if (row["ID"] in test_ids) == (split == "test")
    ]


TASK = Task(
    name="svamp",
    description="one-unknown arithmetic word problems with variations (Patel et al. 2021)",
    splits=("train", "test"),
    answer_kind="number",
    loader=load,
    hub_id="ChilleD/SVAMP",
)
