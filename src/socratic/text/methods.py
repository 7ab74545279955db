"""The paper's four methods, defined once: which students each trains and how it solves.

    socratic train --method iterative ...     # trains the two students of the method: <out>/qg, <out>/qa
    socratic solve --method iterative --qg <out>/qg --qa <out>/qa

A *method* is what a user compares (the rows of the paper's tables). A *role* is the job of one
trained student folder, and names its text layout in `formats`: the one-pass methods have one
student each, whose role is the method's own name; `iterative` has a question generator (`qg`) and
a question answerer (`qa`). Training accepts a method or a single role; solving takes a method.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from socratic.core.errors import unknown_name
from socratic.text import formats


@dataclass(frozen=True)
class Method:
    name: str
    roles: tuple[str, ...]  # the students it trains, each a folder with its own socratic.json
    summary: str

    @property
    def iterative(self) -> bool:
        """Whether it solves by the QG <-> QA loop rather than one generation per problem."""
        return len(self.roles) > 1


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("answer", ("answer",), "answer-only baseline: the question, then the answer"),
        Method("cot", ("cot",), "chain-of-thought baseline: the reasoning sentences, then the answer"),
        Method("unified", ("unified",), "one student writes subquestion/solution pairs, then the answer"),
        Method("iterative", ("qg", "qa"), "a question generator and a question answerer take turns"),
    )
}
ROLES: tuple[str, ...] = formats.ROLES  # answer, cot, unified, qg, qa: the roles' one home is formats
TRAINABLE: tuple[str, ...] = (*METHODS, *(r for r in ROLES if r not in METHODS))  # a method, or qg / qa alone


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise unknown_name("method", name, METHODS)
    return METHODS[name]


def roles_to_train(name: str) -> tuple[str, ...]:
    """The roles `socratic train --method name` trains: a method's students, or one role."""
    if name in METHODS:
        return METHODS[name].roles
    if name in ROLES:
        return (name,)
    raise unknown_name("method or role", name, TRAINABLE)


def role_folder(out: str | Path, method: str, role: str) -> Path:
    """Where `train --method method --out out` writes the student of `role`: a method with several
    students gives each a subfolder named after its role."""
    return Path(out) / role if len(roles_to_train(method)) > 1 else Path(out)
