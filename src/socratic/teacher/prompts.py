"""Few-shot teacher prompts: exemplars stored as data, rendered as chat messages or plain text.

    python -c "from socratic.teacher import prompts; print(prompts.load('gsm8k', 'socratic').as_text('2+3*4?'))"

A prompt file (teacher/prompts/<dataset>-<style>.json, or the user's own with `--prompt FILE`) holds
an instruction and exemplars, each a problem with its steps and answer. The exemplars are written
in exactly the layout students are trained on (`formats.target`), so a teacher's reply is parsed by
the same code that parses a student's. `hash` identifies a prompt and its rendering options: the
annotation cache is keyed on it, so editing a prompt invalidates exactly the replies it produced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from socratic.core.errors import SocraticError
from socratic.core.jsonl import BadJson, parse_json, read_text
from socratic.core.records import FieldError, Step, from_dict
from socratic.text import formats

STYLES = ("socratic", "cot")
GENERIC_PROMPTS = {"number": "gsm8k", "yesno": "strategyqa"}  # answer kind -> prompt for a user's dataset
FACTS_PREFIX = "Facts: "


@dataclass(frozen=True)
class Exemplar:
    question: str
    steps: tuple[Step, ...]
    answer: str
    facts: tuple[str, ...] = ()


@dataclass(frozen=True)
class TeacherPrompt:
    """An instruction plus exemplars in one style; `with_facts` shows StrategyQA-style facts in problems."""

    name: str
    style: str  # "socratic" or "cot"
    instruction: str
    exemplars: tuple[Exemplar, ...]
    with_facts: bool = False

    @property
    def mode(self) -> str:
        """The student layout the teacher writes in: `unified` for Socratic chains, `cot` for CoT."""
        return formats.mode_for_style(self.style)

    @property
    def hash(self) -> str:
        payload = json.dumps(
            [
                self.style,
                self.instruction,
                [_exemplar_json(e) for e in self.exemplars],
                self.with_facts,
                formats.FORMAT_VERSION,
            ],
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def problem_text(self, question: str, facts: Sequence[str] = ()) -> str:
        if self.with_facts and facts:
            return f"{question}\n{FACTS_PREFIX}{' '.join(facts)}"
        return question

    def as_messages(self, question: str, facts: Sequence[str] = ()) -> list[dict[str, str]]:
        """Chat messages: the instruction, each exemplar as a user/assistant turn, then the problem."""
        messages = [{"role": "system", "content": self.instruction}]
        for e in self.exemplars:
            messages.append({"role": "user", "content": formats.problem_prompt(self.problem_text(e.question, e.facts))})
            messages.append({"role": "assistant", "content": formats.target(self.mode, e.steps, e.answer)})
        messages.append({"role": "user", "content": formats.problem_prompt(self.problem_text(question, facts))})
        return messages

    def as_text(self, question: str, facts: Sequence[str] = ()) -> str:
        """One plain-text prompt for completion endpoints and base models; ends where the reply starts."""
        shots = [
            formats.problem_prompt(self.problem_text(e.question, e.facts))
            + formats.target(self.mode, e.steps, e.answer)
            for e in self.exemplars
        ]
        return "\n\n".join([self.instruction, *shots, formats.problem_prompt(self.problem_text(question, facts))])

    # A base model continuing `as_text` starts the next exemplar after its answer: stop there.
    stop = ("\n\n", f"\n{formats.PROBLEM_PREFIX.strip()}")


def _exemplar_json(e: Exemplar) -> dict:
    return {
        "question": e.question,
        "steps": [[s.question, s.answer] for s in e.steps],
        "answer": e.answer,
        "facts": list(e.facts),
    }


def load(
    dataset: str, style: str, path: str | Path | None = None, with_facts: bool = False, answer_kind: str | None = None
) -> TeacherPrompt:
    """The user's prompt file at `path`, else the shipped prompt for the benchmark and style, else
    (a user's dataset) the shipped prompt for its answer kind: math word problems or yes/no."""
    if style not in STYLES:
        raise SocraticError(f"unknown style '{style}' (choose from: {', '.join(STYLES)})")
    if path is not None:
        source = Path(path)
        if not source.is_file():
            raise SocraticError(f"prompt file not found: {source}")
        text = read_text(source)  # bytes that are not UTF-8: a RecordError naming the line
    else:
        shipped = resources.files("socratic.teacher") / "prompts" / f"{dataset}-{style}.json"
        if not shipped.is_file() and answer_kind in GENERIC_PROMPTS:
            # A user's own dataset: the benchmark prompt whose answers look like theirs.
            shipped = resources.files("socratic.teacher") / "prompts" / f"{GENERIC_PROMPTS[answer_kind]}-{style}.json"
        if not shipped.is_file():
            raise SocraticError(
                f"no shipped {style} prompt for '{dataset}': write one and pass --prompt FILE "
                f"(see socratic/teacher/prompts/gsm8k-{style}.json for the format)"
            )
        source, text = shipped, shipped.read_text(encoding="utf-8")
    try:
        return parse(parse_json(text), style, with_facts)
    except (BadJson, FieldError, KeyError, TypeError) as e:
        raise SocraticError(f"{source}: not a valid prompt file ({e})") from None


def parse(data: dict, style: str, with_facts: bool = False) -> TeacherPrompt:
    exemplars = []
    for i, row in enumerate(data["exemplars"]):
        steps = tuple(from_dict(Step, s) for s in row["steps"])
        if style == "socratic" and not all(s.question for s in steps):
            raise FieldError(f"exemplars[{i}].steps", "every step of a socratic exemplar needs a question")
        exemplars.append(Exemplar(str(row["question"]), steps, str(row["answer"]), tuple(row.get("facts", ()))))
    if data.get("style", style) != style:
        raise FieldError("style", f"the file is for style '{data['style']}', not '{style}'")
    return TeacherPrompt(
        name=str(data.get("name", "custom")),
        style=style,
        instruction=str(data["instruction"]),
        exemplars=tuple(exemplars),
        with_facts=with_facts,
    )
