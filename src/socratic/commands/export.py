"""`socratic export`: a trained student as files that llama.cpp, Ollama and LM Studio run by themselves.

    socratic export --model runs/gsm8k/unified --out exported/unified                # f32 GGUF
    socratic export --model runs/gsm8k/unified --out exported/unified --gguf-type q8_0
    socratic export --model runs/gsm8k/iterative --out exported/iterative           # the pair: qg/ and qa/
    ollama create gsm8k-unified -f exported/unified/Modelfile && ollama run gsm8k-unified "Tom has ..."

A one-pass student (answer, cot, unified) becomes `model.<type>.gguf` whose chat template turns
the last user message into the prompt the student was trained on (`formats.chat_template`), so
`llama-server`, LM Studio and anything speaking the chat API prompt it right; a `Modelfile` for
Ollama (the same prompt as Ollama's template, greedy); `chat_template.jinja`; and a README.md: the
student's model card (`scoring.cards`: Hugging Face metadata, its evaluation) with how to run it.
An iterative pair becomes `qg.<type>.gguf` and `qa.<type>.gguf` (raw prompts: the chat template
passes the text through), a Modelfile for each, and a README.md, the pair's model card, of how the
QG <-> QA loop is driven (what `socratic ask` and `serve` do), with a Python version of the loop.

Weights: f32 (the default) reproduces the student's greedy text as transformers writes it;
f16 and bf16 are 2x smaller and q8_0 ~4x, and may differ at near-ties (f16 the least: 97-99 % of a
student's validation outputs equal to f32's, and what `socratic solve` runs by default). The calculator that
`socratic` runs while decoding (writing the value of each `<<expr=` annotation) is not part of the
GGUF: other runtimes print the student's own arithmetic, and only `socratic ask` / `serve` correct it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from socratic.core.errors import SocraticError
from socratic.scoring import cards
from socratic.solving.students import StudentOptions
from socratic.text import formats
from socratic.weights import student_folder
from socratic.weights.gguf_io import GGUF_TYPES, with_metadata

RAW_TEMPLATE = "{{- messages[-1]['content'] -}}"  # the pair's prompts are text, not chat: passed through


@dataclass(frozen=True)
class ExportConfig:
    student: StudentOptions = field(default_factory=StudentOptions)
    out: str | None = field(default=None, metadata={"help": "folder to write (default: <student>/export)"})
    gguf_type: str = field(
        default="f32",
        metadata={
            "help": "weights: f32 (the student's own greedy text), f16, bf16 or q8_0 (smaller, may differ slightly)",
            "choices": GGUF_TYPES,
        },
    )


def run_export(config: ExportConfig) -> Path:
    student = config.student.student()
    first = Path(next(iter(student.folders.values())))
    out = Path(config.out) if config.out else (first.parent if student.iterative else first) / "export"
    if out.exists() and not out.is_dir():
        raise SocraticError(f"--out {out} is a file: give a folder")
    kind = config.gguf_type
    sources = {role: student_folder.student_gguf(folder, kind) for role, folder in student.folders.items()}
    out.mkdir(parents=True, exist_ok=True)
    if student.iterative:
        files = {role: out / f"{role}.{kind}.gguf" for role in ("qg", "qa")}
        for role, target in files.items():
            write_gguf(student.folders[role], sources[role], target, role, RAW_TEMPLATE)
            (out / f"Modelfile.{role}").write_text(modelfile(target.name, raw=True), encoding="utf-8")
        # QG's facts are the pair's: the same base and chains, the pair's predictions beside qg/.
        facts = replace(cards.student_facts(Path(student.folders["qg"])), role="iterative", name=student.name)
        write_card(out, facts, pair_usage(student.name, files, kind))
    else:
        target = out / f"model.{kind}.gguf"
        role = student.method.name
        write_gguf(student.folders[role], sources[role], target, role, formats.chat_template())
        (out / "Modelfile").write_text(modelfile(target.name, raw=False), encoding="utf-8")
        (out / "chat_template.jinja").write_text(formats.chat_template() + "\n", encoding="utf-8")
        write_card(
            out, cards.student_facts(Path(student.folders[role])), one_pass_usage(student.name, role, target, kind)
        )
    print(f"{out}: {', '.join(sorted(p.name for p in out.iterdir()))}")
    return out


def write_gguf(folder: str, source: Path, target: Path, role: str, chat_template: str) -> None:
    """The student's GGUF (`source`: exported once into its folder, as the llamacpp engine uses it)
    copied with the chat template and where it comes from in its metadata."""
    info = student_folder.read_info(folder)
    strings = {
        "tokenizer.chat_template": chat_template,
        "socratic.role": role,
        "socratic.format": json.dumps({"format_version": info.format_version, "base_model": info.base_model}),
    }
    with_metadata(source, target, strings)


def write_card(out: Path, facts: cards.Facts, usage: str) -> None:
    """The export's README.md: the student's model card, with how to run these files as its usage."""
    (out / cards.CARD).write_text(cards.card_text(facts, usage), encoding="utf-8")


def modelfile(gguf_name: str, raw: bool) -> str:
    """Ollama's Modelfile: the GGUF, the prompt template, greedy decoding (and, for QG/QA, one line)."""
    template = "{{ .Prompt }}" if raw else formats.ollama_template()
    lines = [
        f"FROM ./{gguf_name}",
        f"TEMPLATE {ollama_string(template)}",
        "PARAMETER temperature 0",
    ]
    if raw:  # QG and QA write one line each: Ollama stops at its newline
        lines.append(f"PARAMETER stop {ollama_string(formats.LINE_STOP)}")
    return "\n".join(lines) + "\n"


def ollama_string(text: str) -> str:
    """`text` as a Modelfile value. Ollama's parser (parser/parser.go) strips one pair of quotes and
    reads no escapes: `"\\n"` is a backslash and an n. A value in triple quotes may hold the newline
    itself, so that is how any text is written (a value cannot contain three quotes in a row)."""
    assert '"""' not in text, f"a Modelfile value cannot hold three quotes: {text!r}"
    return f'"""{text}"""'


def one_pass_usage(name: str, role: str, gguf: Path, kind: str) -> str:
    """The usage section of a one-pass student's export card."""
    example = formats.problem_prompt("Tom has 3 boxes of 12 eggs and breaks 5. How many eggs are left?")
    return f"""`{gguf.name}` ({kind} weights) is a small language model trained to answer a problem with
{"subquestions and their solutions, then the answer" if role == "unified" else "its solution and the answer"}.
Its prompt is one line, `{formats.PROBLEM_PREFIX}<the problem>`, and a newline:

```
{example}```

It then writes {"`Q: ...` / `A: ...` lines and" if role == "unified" else ""}
`{formats.ANSWER_PREFIX} <answer>`, and stops.
Decode greedily (temperature 0): that is how it was evaluated. The GGUF's chat template builds the
prompt from the last user message, so chat APIs work as they are.

- llama.cpp: `llama-server -m {gguf.name}` then POST /v1/chat/completions, or
  `llama-cli -m {gguf.name} --temp 0 -p "{example.strip()}"` (add the newline: `-e` with `\\n`).
- Ollama: `ollama create {name} -f Modelfile && ollama run {name} "<the problem>"`. Ollama's templates
  cannot edit text, so give the problem on one line without outer spaces (newlines as spaces):
  then its prompt is the training prompt byte for byte.
- LM Studio: load `{gguf.name}`; the chat template comes with it (`chat_template.jinja` is a copy).
- Python: `llama_cpp.Llama(model_path="{gguf.name}").create_completion("{example.strip()}\\n", temperature=0)`.

`socratic ask` / `socratic serve` also run the calculator while decoding, writing the true value of
each `<<expression=` annotation; these runtimes print the student's own arithmetic instead.
"""


def pair_usage(name: str, files: dict[str, Path], kind: str) -> str:
    """The usage section of an iterative pair's export card: how the QG <-> QA loop is driven."""
    qg, qa = files["qg"].name, files["qa"].name
    return f"""Two small language models ({kind} weights) answer a problem together, one line at a time:
`{qg}` (question generator) asks the next subquestion, `{qa}` (question answerer) answers it,
and the last answer is the problem's answer. Both read the same growing text and write one line,
ended by a newline (stop there); decode greedily (temperature 0). The loop, on raw text prompts:

1. `text = "{formats.PROBLEM_PREFIX}<the problem>\\n"`
2. QG completes `text` with one line: `{formats.SUBQUESTION_PREFIX} <subquestion>\\n`, or
   `{formats.END_MARKER}\\n` when no subquestion is left (then stop: the answer is the last solution).
3. `text += that line`; QA completes `text` with one line `{formats.SOLUTION_PREFIX} <solution>\\n`; `text += it`.
4. Back to 2, at most 10 times (socratic's `--max-steps`).

```python
from llama_cpp import Llama

qg, qa = Llama(model_path="{qg}", verbose=False), Llama(model_path="{qa}", verbose=False)

def line(model, text):
    return model.create_completion(text, max_tokens=96, temperature=0, stop=["\\n"])["choices"][0]["text"] + "\\n"

text, solution = "{formats.PROBLEM_PREFIX}" + problem.replace("\\n", " ") + "\\n", ""
for _ in range(10):
    asked = line(qg, text)
    if asked.strip() in ("", "{formats.END_MARKER}"):
        break
    text += asked
    solution = line(qa, text)
    text += solution
print(text + "{formats.ANSWER_PREFIX}", solution.removeprefix("{formats.SOLUTION_PREFIX}").strip())
```

With Ollama: `ollama create {name}-qg -f Modelfile.qg`, `ollama create {name}-qa -f Modelfile.qa`, then
drive the same loop with `ollama.generate(model, text, raw=True)`. The GGUFs' chat templates pass the
last message through unchanged, so a chat API can carry the raw `text` too.

`socratic ask` / `socratic serve` run this loop for you (batched over many problems at once) and
also run the calculator while decoding, writing the true value of each `<<expression=` annotation;
the loop above prints the student's own arithmetic instead.
"""
