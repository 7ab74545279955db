"""A user's own problems: JSONL, JSON, CSV and Hugging Face folders, and clear errors on bad rows."""

import json

import pytest

from socratic.core.errors import RecordError, SocraticError
from socratic.tasks import FileFields, load_task


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_with_default_fields(tmp_path):
    path = write_jsonl(
        tmp_path / "mine.jsonl", [{"question": "1+1?", "answer": "2"}, {"question": "3*3?", "answer": 9}]
    )
    task = load_task(str(path))
    problems = task.load(task.default_split)
    assert [(p.id, p.question, p.answer) for p in problems] == [
        ("mine/all/0", "1+1?", "2"),
        ("mine/all/1", "3*3?", "9"),
    ]
    assert task.answer_kind == "number"


def test_custom_field_names_and_ids(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [{"uid": "a7", "prompt": "Is ice cold?", "label": True}])
    task = load_task(str(path), FileFields(question_field="prompt", answer_field="label", id_field="uid"))
    [problem] = task.load("all")
    assert (problem.id, problem.answer, task.answer_kind) == ("q/all/a7", "yes", "yesno")


def test_csv_and_json(tmp_path):
    csv_path = tmp_path / "sheet.csv"
    csv_path.write_text('question,answer\n"How many, in all?","1,200"\nWhat is 2+2?,4\n', encoding="utf-8")
    assert [p.answer for p in load_task(str(csv_path)).load("all")] == ["1200", "4"]
    json_path = tmp_path / "list.json"
    json_path.write_text(json.dumps([{"question": "Capital of France?", "answer": "Paris"}]), encoding="utf-8")
    task = load_task(str(json_path))
    assert task.answer_kind == "text"
    assert task.is_correct(task.extract_answer("The capital is\nparis"), "Paris")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"question": "a", "answer": 1}\n{"question": "b"}\n',
            r"bad\.jsonl:2: field 'answer': missing \(the row has: question\)",
        ),
        ('{"question": "a", "answer": 1}\n{"question": "b", "answer": 2,\n', r"bad\.jsonl:2: not valid JSON"),
        ('{"question": "", "answer": 1}\n', r"bad\.jsonl:1: field 'question': expected non-empty text"),
        ('{"question": "a", "answer": [1]}\n', r"bad\.jsonl:1: field 'answer': expected a number, boolean or text"),
        ('["a", 1]\n', r"bad\.jsonl:1: expected an object, got list"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RecordError, match=message):
        load_task(str(path))


def test_duplicate_ids_are_an_error(tmp_path):
    path = write_jsonl(
        tmp_path / "dup.jsonl", [{"id": 1, "question": "a", "answer": 1}, {"id": 1, "question": "b", "answer": 2}]
    )
    with pytest.raises(RecordError, match=r"dup\.jsonl:2: field 'id': duplicate id '1' \(first at line 1\)"):
        load_task(str(path), FileFields(id_field="id"))


def test_json_items_are_located_by_item(tmp_path):
    path = tmp_path / "items.json"
    path.write_text(json.dumps([{"question": "a", "answer": 1}, {"answer": 2}]), encoding="utf-8")
    with pytest.raises(RecordError, match=r"items\.json: item 2: field 'question': missing"):
        load_task(str(path))


def test_missing_file_and_bad_answer_kind(tmp_path):
    with pytest.raises(SocraticError, match="dataset file not found"):
        load_task(str(tmp_path / "nope.jsonl"))
    path = write_jsonl(tmp_path / "ok.jsonl", [{"question": "a", "answer": 1}])
    with pytest.raises(SocraticError, match="unknown answer kind 'numbr'"):
        load_task(str(path), FileFields(answer_kind="numbr"))


def test_huggingface_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = {"question": ["1+1?", "2+2?", "3+3?"], "answer": ["2", "4", "6"]}
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict(rows), "test": datasets.Dataset.from_dict(rows)}
    ).save_to_disk(tmp_path / "saved")
    task = load_task(f"hf:{tmp_path / 'saved'}")
    assert task.splits == ("train", "test") and task.default_split == "test"
    assert [p.id for p in task.load("test")] == ["saved/test/0", "saved/test/1", "saved/test/2"]


def test_huggingface_source_that_cannot_load(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    # This machine has no hub; offline mode makes the failure immediate instead of a timed-out retry.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(SocraticError, match="cannot load hf:no-such/dataset"):
        load_task("hf:no-such/dataset")


# --- whatever the bytes: rows, or one line naming the file (issue 18) --------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bin.jsonl", b'{"question": "a", "answer": 1}\n\xff\xd8\xff\xe0\n', r"bin\.jsonl:2: not UTF-8 text"),
        ("bin.json", b'[{"question": "a",\n "answer": "\xe9"}]', r"bin\.json:2: not UTF-8 text \(byte 0xe9"),
        ("bin.csv", b"question,answer\na,1\nb,\x80\n", r"bin\.csv:3: not UTF-8 text"),
        ("nan.jsonl", b'{"question": "a", "answer": NaN}\n', r"nan\.jsonl:1: not valid JSON \(NaN is not"),
        ("inf.jsonl", b'{"question": "a", "answer": 1e400}\n', r"inf\.jsonl:1: not valid JSON \(number out of range"),
        ("big.jsonl", b'{"question": "a", "answer": ' + b"9" * 5000 + b"}\n", r"big\.jsonl:1: .*5,000 digits"),
        (
            "nan.json",
            b'[{"question": "a", "answer": 1},\n {"question": "a", "answer": NaN}]',
            r"nan\.json:2: .*\(NaN is not",
        ),
        ("deep.json", b"[\n" + b"[" * 100_000, r"deep\.json:2: not valid JSON \(nested too deeply\)"),
        ("obj.json", b'{"question": "a", "answer": 1}', r"obj\.json:1: expected a JSON array of objects, got dict"),
        ("comma.json", b'[{"question": "a", "answer": 1}\n {"question": "b"}]', r"comma\.json:2: .*expected ','"),
        ("extra.json", b'[{"question": "a", "answer": 1}]\n]', r"extra\.json:2: not valid JSON \(extra data"),
        ("ctrl.json", b'[{"question": "a\tb"}]', r"ctrl\.json:1: not valid JSON \(Invalid control character at column"),
        ("big.csv", b"question,answer\na,1\n" + b"b," + b"7" * 200_000 + b"\n", r"big\.csv:3: not valid CSV \(field"),
        ("num.csv", b"question,answer\na,1e400\n", r"num\.csv:2: field 'answer': number out of range"),
        ("num.csv", b"question,answer\na," + b"9" * 5000 + b"\n", r"num\.csv:2: field 'answer': number out of range"),
        ("big.json", b'[{"question": "a", "answer": 1e300}]', r"big\.json: item 1: field 'answer': number out of"),
    ],
)
def test_unreadable_files_name_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SocraticError, match=message) as error:
        load_task(str(path))
    assert "\n" not in str(error.value)


def test_ids_with_slashes_stay_distinct(tmp_path):
    rows = [{"id": i, "question": "q", "answer": 1} for i in ("a/1", "b/1", "1", "a%2F1", 7)]
    problems = load_task(str(write_jsonl(tmp_path / "d.jsonl", rows)), FileFields(id_field="id")).load("all")
    assert [p.id for p in problems] == ["d/all/a%2F1", "d/all/b%2F1", "d/all/1", "d/all/a%252F1", "d/all/7"]
    assert len({p.id.split("/", 2)[2] for p in problems}) == len(rows)


@pytest.mark.parametrize("bad_id", ["", " ", [1], {"a": 1}, True])
def test_ids_must_be_text_or_numbers(tmp_path, bad_id):
    path = write_jsonl(tmp_path / "d.jsonl", [{"id": bad_id, "question": "q", "answer": 1}])
    with pytest.raises(RecordError, match=r"d\.jsonl:1: field 'id': expected non-empty text or a number"):
        load_task(str(path), FileFields(id_field="id"))
