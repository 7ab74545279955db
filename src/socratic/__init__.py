"""socratic: distil step-by-step reasoning from a large teacher LM into small students (Socratic CoT).

    socratic --help
    python -c "import socratic; help(socratic)"

The Python API: the stages, each with its config dataclass (the fields are the command's flags, with
the same names, defaults and checks), and a `Student` that answers:

    import socratic
    chains = socratic.annotate(socratic.AnnotateConfig(out="runs/g/chains.jsonl"))
    student = socratic.train(socratic.TrainConfig(method="unified", chains=str(chains), out="runs/g/unified"))
    predictions = socratic.solve(socratic.SolveConfig(method="unified", student=socratic.StudentOptions(str(student))))
    evaluation = socratic.evaluate(socratic.EvaluateConfig([str(predictions)]))
    socratic.Student.load(student).solve(["Tom has 3 boxes of 12 eggs ..."])

`socratic run` is `socratic.run(socratic.RunArgs(config="cpu-gsm8k"))`. The names load on first use,
so `import socratic` imports neither torch nor transformers (the command's start-up stays quick).
See docs/ARCHITECTURE.md for how the package mirrors the pipeline.
"""

from __future__ import annotations

import importlib
from typing import Any

from socratic.core.machine import no_hub_kernels
from socratic.core.version import __version__

no_hub_kernels()  # before any model is loaded, by any part of socratic

# name -> the module that is its one home
_HOMES = {
    "annotate": "socratic.commands.stages",
    "train": "socratic.commands.stages",
    "solve": "socratic.commands.stages",
    "evaluate": "socratic.commands.stages",
    "run": "socratic.commands.stages",
    "AnnotateConfig": "socratic.teacher.annotate",
    "TrainConfig": "socratic.training.config",
    "SolveConfig": "socratic.commands.solve",
    "EvaluateConfig": "socratic.scoring.evaluate",
    "Evaluation": "socratic.scoring.evaluate",
    "RunArgs": "socratic.commands.pipeline",
    "DataOptions": "socratic.tasks.options",
    "DecodeOptions": "socratic.solving.loops",
    "EngineOptions": "socratic.solving.students",
    "StudentOptions": "socratic.solving.students",
    "Student": "socratic.solving.student",
    "Problem": "socratic.core.records",
    "Step": "socratic.core.records",
    "Chain": "socratic.core.records",
    "Prediction": "socratic.core.records",
    "SocraticError": "socratic.core.errors",
}

__all__ = ["__version__", *_HOMES]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'socratic' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # found once; later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
