"""Screenshot of the `nar serve` page for the README (docs/serve_page.png): generate a scene,
refine a painted region once, paint the next stroke, and shoot the page in headless Chromium.

    .venv/bin/python scripts/serve_screenshot.py [--out docs/serve_page.png] [--prior maskgit] [--size 256] [--steps 12]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "serve"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "serve_page.png")
    ap.add_argument("--prior", default="maskgit")
    ap.add_argument("--scene", default="lake")
    ap.add_argument("--size", default="256")
    ap.add_argument("--steps", default="12")
    ap.add_argument("--seed", default="3")
    args = ap.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import Select
    from test_browser import CHROMIUM, DRIVER, paint, wait_for

    from nar.serve import ServeConfig, create_app
    from nar.serve.server import running

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1180,1150",
                "--force-device-scale-factor=1", "--hide-scrollbars"):
        opts.add_argument(arg)
    app = create_app(ServeConfig(role="all", device="cpu", preload=(args.prior,)))
    with running(app) as url:
        d = webdriver.Chrome(service=Service(DRIVER), options=opts)
        try:
            d.get(url + "/")
            wait_for(d, "return document.getElementById('status').textContent === 'ready'")
            Select(d.find_element("id", "prior")).select_by_value(args.prior)
            Select(d.find_element("id", "scene")).select_by_value(args.scene)
            Select(d.find_element("id", "size")).select_by_value(args.size)
            for field, value in (("steps", args.steps), ("seed", args.seed)):
                el = d.find_element("id", field)
                el.clear()
                el.send_keys(value)
            d.find_element("id", "generate").click()
            wait_for(d, "return window.narState.shown >= 1 && document.body.dataset.busy === '0'", 300)
            d.execute_script("document.getElementById('brush').value = '56'")
            paint(d, [(-160, -150), (-60, -135), (60, -150), (170, -130)])
            d.find_element("id", "inpaint").click()
            wait_for(d, "return window.narState.shown >= 2 && document.body.dataset.busy === '0'", 300)
            paint(d, [(-150, 120), (-90, 170), (-20, 140), (-110, 100)])
            d.execute_script("window.scrollTo(0, 0)")
            time.sleep(0.3)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            d.save_screenshot(str(args.out))
            print(f"wrote {args.out}")
        finally:
            d.quit()


if __name__ == "__main__":
    main()
