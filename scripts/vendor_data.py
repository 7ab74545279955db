"""Copy the benchmark datasets from ../shared/data into the package, compressed.

    python scripts/vendor_data.py ../shared/data

Run once by a maintainer; the package then works on machines that have no ../shared/.
What is kept and why:
- GSM8K: only the `socratic` variant. Its plain chain of thought is exactly the Socratic text with
  each line's "subquestion ** " prefix removed (checked on all 8,792 problems by this script), so
  shipping both would store the same solutions twice.
- SVAMP: the file as published (1,000 problems); the train/test split is computed in tasks/svamp.py.
- StrategyQA: train (2,061) and dev (229, our test split), without the `evidence` column (Wikipedia
  paragraph ids that nothing here reads and that make up most of the file).
Files are gzip with a zero timestamp, so re-running produces byte-identical output.
"""

import gzip
import json
import shutil
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "src" / "socratic" / "tasks" / "data"
STRATEGYQA_FIELDS = ("qid", "term", "description", "question", "answer", "facts", "decomposition")


def write_gz(path: Path, text: str) -> None:
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(text.encode("utf-8"))
    print(f"wrote {path.relative_to(TARGET.parent)} ({path.stat().st_size:,} bytes)")


def strip_subquestions(socratic_answer: str) -> str:
    lines = socratic_answer.split("\n")
    return "\n".join([line.split(" ** ", 1)[1] for line in lines[:-1]] + lines[-1:])


def vendor_gsm8k(source: Path) -> None:
    for split in ("train", "test"):
        plain = source.joinpath(f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        socratic = source.joinpath(f"{split}_socratic.jsonl").read_text(encoding="utf-8").splitlines()
        for p, s in zip(plain, socratic, strict=True):
            p, s = json.loads(p), json.loads(s)
            assert p["question"] == s["question"], f"GSM8K {split}: question mismatch"
            assert strip_subquestions(s["answer"]) == p["answer"], f"GSM8K {split}: CoT not derivable"
        write_gz(TARGET / "gsm8k" / f"{split}.jsonl.gz", "\n".join(socratic) + "\n")
    shutil.copy(source / "LICENSE", TARGET / "gsm8k" / "LICENSE")


def vendor_svamp(source: Path) -> None:
    write_gz(TARGET / "svamp" / "SVAMP.json.gz", source.joinpath("SVAMP.json").read_text(encoding="utf-8"))
    shutil.copy(source / "LICENSE", TARGET / "svamp" / "LICENSE")


def vendor_strategyqa(source: Path) -> None:
    for our_split, file in (("train", "train.json"), ("test", "dev.json")):
        rows = json.loads(source.joinpath(file).read_text(encoding="utf-8"))
        lines = [json.dumps({k: row[k] for k in STRATEGYQA_FIELDS}, ensure_ascii=False) for row in rows]
        write_gz(TARGET / "strategyqa" / f"{our_split}.jsonl.gz", "\n".join(lines) + "\n")
    shutil.copy(source / "LICENSE", TARGET / "strategyqa" / "LICENSE")


def main(argv: list[str]) -> None:
    assert len(argv) == 1, "usage: python scripts/vendor_data.py ../shared/data"
    source = Path(argv[0])
    vendor_gsm8k(source / "gsm8k")
    vendor_svamp(source / "svamp")
    vendor_strategyqa(source / "strategyqa")


if __name__ == "__main__":
    main(sys.argv[1:])
