"""A screenshot of a report page in headless Chromium (the picture in README).

    python scripts/report_screenshot.py results/cpu-svamp/report/report.html docs/report-cpu-svamp.png --open 2

Needs Chromium and its driver from the system (`apt-get install -y chromium chromium-driver`) and
selenium (the dev extra). `--open N` opens the first N rows, so their traces side by side are in the
picture; the whole page's height is captured.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def headless_chromium(width: int = 1400, height: int = 900) -> webdriver.Chrome:
    """The system's Chromium driven by the system's chromedriver (selenium downloads nothing)."""
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "chromedriver"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("page", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--open", type=int, default=1, help="rows whose traces are opened")
    parser.add_argument("--width", type=int, default=1700)
    args = parser.parse_args()
    browser = headless_chromium(args.width)
    try:
        browser.get(args.page.resolve().as_uri())
        for n in range(args.open):
            browser.find_elements(By.CSS_SELECTOR, "tr.problem")[n].click()
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(args.width, height + 40)
        browser.execute_script("window.scrollTo(0, 0)")  # opening a row scrolled it into view
        args.out.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(args.out))
    finally:
        browser.quit()
    print(args.out)


if __name__ == "__main__":
    main()
