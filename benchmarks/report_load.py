"""Load time of a report page in headless Chromium: from navigation to the first rows drawn.

    bash benchmarks/quiet.sh python benchmarks/report_load.py results/cpu-gsm8k/report/report.html --repeat 7

Opens the page --repeat times in the system's Chromium (`apt-get install -y chromium chromium-driver`),
each time in a fresh tab, and prints for each load and as medians: "ready", the page's own clock
(`performance.now()`, milliseconds since the navigation started) when its script has parsed the JSON
blob, built the filters and drawn the first page of rows (it writes it to `body[data-ready]`); "load",
the browser's load event; "wall", the time selenium's `get` took; and "filter", the time to apply a
filter ("students split: some solved it, some not") and redraw, measured in the page.
`--fresh-browser` starts a new Chromium for every load (its start is not timed) instead of a new tab
of one browser. The target (issue 23): a 1,319-problem, four-student page ready in under 2 s on 2 cores.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from report_screenshot import headless_chromium


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("page", type=Path)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--fresh-browser", action="store_true", help="a new Chromium for each load")
    args = parser.parse_args()
    uri = args.page.resolve().as_uri()
    size = args.page.stat().st_size
    browser = headless_chromium()
    found = {"ready": [], "load": [], "wall": [], "filter": []}
    try:
        for n in range(args.repeat):
            if args.fresh_browser and n:
                browser.quit()
                browser = headless_chromium()
            browser.switch_to.new_window("tab")
            started = time.perf_counter()
            browser.get(uri)
            wall = 1000 * (time.perf_counter() - started)
            ready = float(browser.execute_script("return document.body.dataset.ready"))
            load = browser.execute_script("return performance.getEntriesByType('navigation')[0].loadEventEnd")
            rows = browser.execute_script("return document.querySelectorAll('tr.problem').length")
            count = browser.execute_script("return document.getElementById('count').textContent")
            filtered = browser.execute_script(
                "const t = performance.now(), split = document.getElementById('disagree');"
                "split.value = 'solved'; split.dispatchEvent(new Event('change'));"
                "return [performance.now() - t, document.getElementById('count').textContent]"
            )
            print(
                f"load {n + 1}: ready {ready:.0f} ms, load event {load:.0f} ms, wall {wall:.0f} ms ({rows} rows drawn, "
                f"{count}); filter {filtered[0]:.0f} ms ({filtered[1]})"
            )
            for key, value in (("ready", ready), ("load", load), ("wall", wall), ("filter", filtered[0])):
                found[key].append(value)
            browser.close()
            browser.switch_to.window(browser.window_handles[0])
    finally:
        browser.quit()
    medians = ", ".join(f"{key} {statistics.median(values):.0f} ms" for key, values in found.items())
    print(f"{args.page} ({size / 1e6:.1f} MB), median of {args.repeat}: {medians}")


if __name__ == "__main__":
    main()
