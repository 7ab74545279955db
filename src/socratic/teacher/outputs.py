"""What `socratic annotate` reports: the live counts, the summary table, the rejected replies, and
the exports of kept chains (chat-messages JSONL, a Hugging Face `datasets` folder).
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socratic.core.errors import SocraticError
from socratic.core.records import Chain, Problem, to_dict
from socratic.teacher.backends import Reply
from socratic.text import formats


@dataclass(frozen=True)
class Prices:
    """USD per million prompt and generated tokens, for the cost estimate (0: not shown)."""

    prompt: float = 0.0
    generated: float = 0.0


@dataclass
class Tally:
    """Running counts for the progress bar and the summary table."""

    replies_new: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, reply: Reply) -> None:
        self.replies_new += 1
        self.tokens_in += reply.tokens_in
        self.tokens_out += reply.tokens_out


def live_counts(tally: Tally, prices: Prices) -> str:
    text = f"tokens in {tally.tokens_in:,} out {tally.tokens_out:,}"
    if prices.prompt or prices.generated:
        text += f", ${cost(tally, prices):.4f}"
    return text


def cost(tally: Tally, prices: Prices) -> float:
    return (tally.tokens_in * prices.prompt + tally.tokens_out * prices.generated) / 1e6


# problem id -> [(sample index, the kept chain or why the reply was rejected)]
Judged = dict[str, list[tuple[int, Chain | str]]]


def rejected_rows(judged: Judged) -> list[dict[str, Any]]:
    """Why each rejected reply was rejected, by problem and sample (the reply itself is in the cache)."""
    return [
        {"problem_id": problem_id, "sample": sample, "reason": outcome}
        for problem_id, outcomes in judged.items()
        for sample, outcome in outcomes
        if isinstance(outcome, str)
    ]


def rejections(judged: Judged) -> collections.Counter:
    return collections.Counter(o for outcomes in judged.values() for _, o in outcomes if isinstance(o, str))


def summary_table(
    title: str,
    keep: str,
    prices: Prices,
    problems: Sequence[Problem],
    judged: Judged,
    chains: Sequence[Chain],
    tally: Tally,
    model: str,
    seconds: float,
) -> str:
    replies = sum(len(o) for o in judged.values())
    asked = model != "human" and not model.startswith("shipped:")  # else no replies, tokens or cost
    solved = sum(any(isinstance(c, Chain) for _, c in o) for o in judged.values())
    rows = [
        ("problems", f"{len(problems):,}"),
        ("replies (new this run)", f"{replies:,} ({tally.replies_new:,})" if asked else "-"),
        ("chains kept", f"{len(chains):,} (keep={keep})"),
        ("problems with a chain", f"{solved:,} / {len(problems):,} ({100 * solved / max(1, len(problems)):.1f} %)"),
        ("chains per problem", f"{len(chains) / max(1, len(problems)):.2f}"),
    ]
    rows += [(f"rejected: {reason}", f"{count:,}") for reason, count in rejections(judged).most_common()]
    if asked:
        rows += [
            ("tokens in / out (this run)", f"{tally.tokens_in:,} / {tally.tokens_out:,}"),
            ("estimated cost (this run)", f"${cost(tally, prices):.4f}"),
        ]
    if tally.failures:
        rows.append(("failed requests (rerun to retry)", f"{len(tally.failures):,}"))
    rows.append(("wall time", f"{seconds:.1f} s"))
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join([title, *(f"  {label:<{width}}{value}" for label, value in rows)])


def export(
    chains: Iterable[Chain], problems: Sequence[Problem], style: str, chat_jsonl: str | None, hf_dataset: str | None
) -> None:
    """The kept chains as chat-messages JSONL and/or a Hugging Face `datasets` folder, if asked for."""
    if not (chat_jsonl or hf_dataset):
        return
    questions = {p.id: p.question for p in problems}
    mode = formats.mode_for_style(style)
    rows = [
        {
            "problem_id": c.problem_id,
            "prompt": formats.problem_prompt(questions[c.problem_id]),
            "completion": formats.target(mode, c.steps, c.final_answer),
            **to_dict(c),
        }
        for c in chains
    ]
    if chat_jsonl:
        path = Path(chat_jsonl)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            for row in rows:
                messages = [
                    {"role": "user", "content": row["prompt"]},
                    {"role": "assistant", "content": row["completion"]},
                ]
                f.write(json.dumps({"messages": messages, "problem_id": row["problem_id"]}, ensure_ascii=False) + "\n")
    if hf_dataset:
        try:
            import datasets
        except ImportError:
            raise SocraticError("--hf-dataset needs the `datasets` package: pip install 'socratic[hf]'") from None
        columns = ("problem_id", "prompt", "completion", "style", "final_answer", "source")
        datasets.Dataset.from_list([{k: r[k] for k in columns} for r in rows]).save_to_disk(hf_dataset)
