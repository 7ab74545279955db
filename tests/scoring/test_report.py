"""The report folder: results.md, scores.json, the plots, and the page (its data checked here; in the slow
tier a real headless Chromium loads it, filters it and opens a row)."""

import json
import re
import shutil

import pytest

from socratic.core.jsonl import write_jsonl
from socratic.core.records import Prediction
from socratic.engines import Completion
from socratic.scoring.evaluate import EvaluateConfig, Score, markdown_table
from socratic.scoring.report import bar_label, calculator_marks, loss_curves, render_page, run_report
from socratic.solving.loops import one_pass_attempt
from socratic.tasks import load_task
from tests.scoring.test_evaluate import real_student_outputs


def page_blob(page: str) -> dict:
    """The JSON the page carries (what its script draws from)."""
    found = re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S)
    assert found, "the page carries its data"
    return json.loads(found.group(1))


def small_run(folder):
    """Two students on the first 16 GSM8K test problems: a real unified student's outputs (four marked
    right, so there is something to count) and an answer-only student, saved in another order as the
    iterative loop does, who never answers problem 3. Each student folder holds a loss curve."""
    task = load_task("gsm8k")
    unified = []
    for i, row in enumerate(real_student_outputs()):
        attempt = one_pass_attempt(Completion(row["output"], 256, row["finish"]))
        meta = {"finish": attempt.finish, "gold": row["gold"], "tokens": 256}
        unified.append(
            Prediction(
                row["problem_id"],
                "unified",
                attempt.steps,
                row["output"],
                task.extract_answer(attempt.answer_text),
                i < 4,
                meta,
            )
        )
    silent = unified[3].problem_id  # the answer-only student writes no answer there

    def answer_only(p):
        answer = None if p.problem_id == silent else "5"
        meta = {"finish": "answer", "gold": p.meta["gold"], "tokens": 3}
        return Prediction(p.problem_id, "answer", (), f"Answer: {answer or ''}", answer, False, meta)

    answer_only = [answer_only(p) for p in reversed(unified)]
    first = write_jsonl(folder / "u" / "predictions.gsm8k.test.jsonl", unified)
    second = write_jsonl(folder / "a" / "predictions.gsm8k.test.jsonl", answer_only)
    for student in ("u", "a"):
        rows = [{"step": 5 * k, "loss": 2.0 / k, "learning_rate": 1e-4} for k in range(1, 5)]
        (folder / student / "loss.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [str(first), str(second)], unified


def test_the_report_folder(tmp_path, capsys):
    files, unified = small_run(tmp_path)
    page = run_report(EvaluateConfig(files, report=str(tmp_path / "report")))
    printed = capsys.readouterr().out
    assert "| u | gsm8k/test | unified | 16 | 25.0 % | 10.2–49.5 |" in printed
    assert "| a | gsm8k/test | answer | 16 | 0.0 % |" in printed
    assert "| a | u | 16 | 0 | 4 | 0.125 |" in printed  # 4 discordant problems, all for u: p = 2 / 2**4
    report = tmp_path / "report"
    assert page == report / "report.html"
    assert (report / "results.md").read_text().startswith(markdown_table([]).splitlines()[0])
    assert json.loads((report / "scores.json").read_text())[0]["correct"] == 4

    import matplotlib.image

    for plot in ("accuracy.png", "loss.png"):
        image = matplotlib.image.imread(report / plot)
        assert image.shape[0] > 200 and image.shape[1] > 300 and image.std() > 0.01, f"{plot} is not blank"

    text = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text) and "<link" not in text, "no network"
    data = page_blob(text)
    ids = [p["id"] for p in data["problems"]]
    assert ids == sorted(ids, key=lambda i: int(i.rsplit("/", 1)[1])), "rows in the dataset's order"
    assert [s["label"] for s in data["students"]] == ["u", "a"]
    assert data["images"]["accuracy"].startswith("data:image/png;base64,")
    assert data["images"]["loss"].startswith("data:image/png;base64,"), "the students' loss curves are embedded"
    janet = data["problems"][0]
    assert "Janet" in janet["question"] and janet["gold"] == "18"
    assert janet["human"][0][0] == "How many eggs does Janet sell?", "GSM8K's human decomposition"
    u, a = data["cells"][0]
    assert (u["ok"], a["ok"], a["kind"]) == (True, False, "wrong reasoning")
    assert u["steps"] and u["output"] is None and a["output"] == "Answer: 5", "raw output only without steps"
    silent = data["cells"][ids.index(unified[3].problem_id)][1]
    assert (silent["answer"], silent["kind"]) == (None, "no answer")


def test_a_pair_that_solved_two_files_has_one_loss_curve_per_student(tmp_path):
    """A pair's test solve with a loop rule and its --oracle run share the qg/ and qa/ students: each
    training curve is drawn once, named after the student folder, not after either file."""
    pair = tmp_path / "students" / "iterative"
    for role, loss in [("qg", 0.4), ("qa", 0.6)]:
        (pair / role).mkdir(parents=True)
        (pair / role / "loss.jsonl").write_text(json.dumps({"step": 5, "loss": loss}) + "\n")
    (tmp_path / "students" / "unified").mkdir()
    (tmp_path / "students" / "unified" / "loss.jsonl").write_text(json.dumps({"step": 5, "loss": 0.5}) + "\n")
    files = [pair / "predictions.gsm8k.test.retry.jsonl", pair / "predictions.gsm8k.test.oracle.jsonl"]
    curves = loss_curves([*files, tmp_path / "students" / "unified" / "predictions.gsm8k.test.jsonl"])
    assert curves == {"iterative/qg": [(5, 0.4)], "iterative/qa": [(5, 0.6)], "unified": [(5, 0.5)]}


def test_long_bar_labels_break_at_their_folders():
    def scored(label, method):
        return Score(label, "gsm8k/test", method, 1, 0, {})

    assert bar_label(scored("unified", "unified")) == "unified"
    assert bar_label(scored("iterative/gsm8k.test.oracle", "iterative (oracle)")) == (
        "iterative/\ngsm8k.test.oracle\niterative (oracle)"
    )


def test_calculator_marks_say_which_arithmetic_was_wrong():
    assert calculator_marks("no arithmetic here") is None
    assert calculator_marks("2*3 = <<2*3=6>>6, then <<6*7=41>>41 and <<48*2/day=96>>96") == [
        ["right"],
        ["wrong", "42"],
        ["unread", "not allowed in arithmetic: Name"],
    ]


def test_a_trace_cannot_end_the_pages_script():
    hostile = "</script><script>alert(1)</script><!--"
    page = render_page({"problems": [{"question": hostile}]})
    assert page.count("</script>") == 2  # the data's and the page's own, nothing from the trace
    assert page_blob(page)["problems"][0]["question"] == hostile


# --- a real browser (slow) ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium():
    """The system's headless Chromium under its chromedriver (`apt-get install -y chromium chromium-driver`)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the dev extra")
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        pytest.skip("no chromium/chromedriver on this machine: apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,900",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(driver))
    yield browser
    browser.quit()


@pytest.mark.slow
def test_the_page_in_a_real_browser_filters_and_opens_rows(chromium, tmp_path, capsys):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    files, unified = small_run(tmp_path)
    page = run_report(EvaluateConfig(files, report=str(tmp_path / "report")))
    chromium.get(page.as_uri())
    assert chromium.find_element(By.TAG_NAME, "body").get_attribute("data-ready"), "the script ran to the end"

    def count():
        return chromium.find_element(By.ID, "count").text

    def rows():
        return [r.get_attribute("data-id") for r in chromium.find_elements(By.CSS_SELECTOR, "tr.problem")]

    assert count() == "16 of 16 problems" and len(rows()) == 16
    assert "None" not in chromium.find_element(By.ID, "problems").text
    assert "no answer" in chromium.find_element(By.CSS_SELECTOR, f"tr[data-id='{unified[3].problem_id}']").text

    Select(chromium.find_element(By.ID, "solved-by")).select_by_visible_text("u")
    Select(chromium.find_element(By.ID, "not-by")).select_by_visible_text("a")
    assert count() == "4 of 16 problems"
    assert rows() == [p.problem_id for p in unified[:4]]
    assert "u 4 · a 0" in chromium.find_element(By.ID, "solved").text

    Select(chromium.find_element(By.ID, "solved-by")).select_by_visible_text("—")
    Select(chromium.find_element(By.ID, "not-by")).select_by_visible_text("—")
    Select(chromium.find_element(By.ID, "kind")).select_by_visible_text("no answer")
    assert count() == "1 of 16 problems" and rows() == [unified[3].problem_id]
    Select(chromium.find_element(By.ID, "kind")).select_by_visible_text("any or none")
    chromium.find_element(By.ID, "ran-out").click()
    assert count() == "8 of 16 problems", "as the table says: u ran out of steps or tokens in 8"
    chromium.find_element(By.ID, "ran-out").click()
    chromium.find_element(By.ID, "repeated").click()
    assert count() == "10 of 16 problems", "as the table says: u repeated a step in 10"
    Select(chromium.find_element(By.ID, "scope")).select_by_visible_text("a")
    assert count() == "0 of 16 problems", "the answer-only student has no steps to repeat"
    chromium.find_element(By.ID, "repeated").click()
    Select(chromium.find_element(By.ID, "disagree")).select_by_visible_text("split: some solved it, some not")
    assert count() == "4 of 16 problems"
    Select(chromium.find_element(By.ID, "disagree")).select_by_visible_text("agree or not")
    chromium.find_element(By.ID, "search").send_keys("janet ducks")
    assert count() == "1 of 16 problems" and rows() == ["gsm8k/test/0"]

    chromium.find_element(By.CSS_SELECTOR, "tr.problem").click()
    traces = chromium.find_elements(By.CSS_SELECTOR, "tr.detail .trace")
    assert [t.find_element(By.TAG_NAME, "h3").text for t in traces] == [
        "human decomposition",
        "u · unified",
        "a · answer",
    ]
    assert "How many eggs does Janet sell?" in traces[0].text
    assert traces[1].find_elements(By.CSS_SELECTOR, ".calc"), "the student's calculator annotations are marked"

    # The address keeps the view: the same address in a fresh tab shows the same rows, opened.
    assert chromium.current_url.endswith("#q=janet+ducks&of=a&open=gsm8k%2Ftest%2F0")
    chromium.get("about:blank")
    chromium.get(page.as_uri() + "#solved=u&not=a&page=1")
    assert count() == "4 of 16 problems" and rows() == [p.problem_id for p in unified[:4]]
    assert Select(chromium.find_element(By.ID, "solved-by")).first_selected_option.text == "u"
    chromium.get(page.as_uri() + "#q=janet+ducks&open=gsm8k%2Ftest%2F0&solved=nobody&sort=nothing")
    assert count() == "1 of 16 problems" and chromium.find_elements(By.CSS_SELECTOR, "tr.detail .trace")

    # Sorting: a column's heading orders the rows by it, a second click reverses the order.
    chromium.get(page.as_uri())
    heading = {th.get_attribute("data-column"): th for th in chromium.find_elements(By.CSS_SELECTOR, "#problems th")}
    heading["u"].click()
    assert rows()[:4] == [p.problem_id for p in unified[:4]], "solved first, in the dataset's order"
    assert "sort=u" in chromium.current_url and "▲" in heading["u"].text
    heading["u"].click()
    assert set(rows()[-4:]) == {p.problem_id for p in unified[:4]} and "desc=1" in chromium.current_url
    heading["gold"].click()
    golds = [float(chromium.find_element(By.CSS_SELECTOR, f"tr[data-id='{i}'] td:nth-child(3)").text) for i in rows()]
    assert golds == sorted(golds)
    heading["problem"].click()
    assert rows() == [p.problem_id for p in unified], "the dataset's order again"
    capsys.readouterr()


def test_a_users_own_problems_have_rows_without_question_text(tmp_path, capsys):
    rows = [
        Prediction("mine/test/b", "cot", (), "Answer: 3", "3", True, {"finish": "answer", "gold": "3"}),
        Prediction("mine/test/a", "cot", (), "", None, False, {"finish": "length", "gold": "7"}),
    ]
    path = write_jsonl(tmp_path / "s" / "predictions.mine.test.jsonl", rows)
    page = run_report(EvaluateConfig([str(path)], report=str(tmp_path / "report")))
    data = page_blob(page.read_text())
    assert [(p["id"], p["question"], p["gold"]) for p in data["problems"]] == [
        ("mine/test/b", "", "3"),
        ("mine/test/a", "", "7"),
    ], "the file's order and the predictions' gold answers"
    assert data["cells"][1][0]["kind"] == "no answer" and data["images"]["loss"] is None
    capsys.readouterr()
