"""The page in a real browser: headless Chromium (Debian's `chromium` + `chromium-driver`, driven
by selenium) loads / from a uvicorn server on 127.0.0.1, generates, paints a mask with the
mouse, regenerates the masked part twice, and the image changes only under the mask.

Set NAR_SERVE_SCREENSHOT=path.png to keep a screenshot of the page (docs/serve_page.png)."""
from __future__ import annotations

import base64
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import png_array

CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)
DRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
INSTALL = ("headless Chromium is not installed: `apt-get update && apt-get install -y chromium chromium-driver` "
           "(and `pip install selenium`, in the test extra) to run the browser test")


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip(INSTALL)
    if CHROMIUM is None or DRIVER is None:
        pytest.skip(INSTALL)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1180,980", "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server():
    from nar.serve import ServeConfig, create_app
    from nar.serve.server import running
    app = create_app(ServeConfig(role="all", device="cpu", max_wait_ms=1, preload=("sundae",)))
    with running(app) as url:
        yield url


def wait_for(driver, script, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    status = driver.execute_script("return document.getElementById('status').textContent")
    raise AssertionError(f"timed out waiting for: {script}; page status: {status}")


def data_url_array(url: str) -> np.ndarray:
    return png_array(base64.b64decode(url.split(",", 1)[1]))


def current(driver) -> np.ndarray:
    return data_url_array(driver.execute_script("return window.narState.current.url"))


def paint(driver, points):
    """Drag the mouse over the overlay canvas through ``points`` (offsets from its centre, px)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    canvas = driver.find_element(By.ID, "overlay")
    chain = ActionChains(driver).move_to_element_with_offset(canvas, *points[0]).click_and_hold()
    last = points[0]
    for p in points[1:]:
        chain = chain.move_by_offset(p[0] - last[0], p[1] - last[1])
        last = p
    chain.release().perform()


def refine(driver, shown):
    mask = data_url_array(driver.execute_script("return window.narMaskDataURL()"))[..., 0] >= 128
    before = current(driver)
    driver.find_element("id", "inpaint").click()
    wait_for(driver, f"return window.narState.shown >= {shown} && document.body.dataset.busy === '0'")
    after = current(driver)
    return before, after, mask


def test_generate_paint_and_regenerate_only_the_masked_part(browser, server):
    from selenium.webdriver.support.ui import Select
    d = browser
    d.get(server + "/")
    wait_for(d, "return document.getElementById('prior').options.length > 0 && "
                "document.getElementById('status').textContent === 'ready'")
    Select(d.find_element("id", "prior")).select_by_value("sundae")
    Select(d.find_element("id", "scene")).select_by_value("lake")
    Select(d.find_element("id", "size")).select_by_value("256")
    for field, value in (("steps", "3"), ("seed", "7")):
        el = d.find_element("id", field)
        el.clear()
        el.send_keys(value)
    d.find_element("id", "generate").click()
    wait_for(d, "return window.narState.shown >= 1 && document.body.dataset.busy === '0'")
    first = current(d)
    assert first.shape == (256, 256, 3) and first.std() > 5
    assert d.execute_script("return document.querySelectorAll('#timings tr').length") >= 3

    # refine 1: a stroke across the upper middle (the stage shows 256² at 512 css px)
    d.execute_script("document.getElementById('brush').value = '48'")
    paint(d, [(-150, -120), (-60, -100), (40, -110), (150, -90)])
    from nar.sampling import INPAINT_TEMPERATURE
    assert float(d.find_element("id", "fill-temperature").get_attribute("value")) == INPAINT_TEMPERATURE
    d.execute_script("window.narBodies = []; const f = window.fetch; window.fetch = (u, o) => "
                     "{ if (o && o.body) window.narBodies.push([String(u), o.body]); return f(u, o); }")
    before, after, mask = refine(d, 2)
    assert np.array_equal(before, first) and 0.02 < mask.mean() < 0.6
    sent = [json.loads(b) for u, b in d.execute_script("return window.narBodies") if u.endswith("/inpaint")]
    assert sent and sent[0]["temperature"] == INPAINT_TEMPERATURE   # the fill's own, not Generate's 1
    changed = (after != before).any(axis=2)
    assert not changed[~mask].any(), "pixels outside the painted mask changed"
    assert changed[mask].mean() > 0.3

    # refine 2 (repeatable): a blob lower left, on top of the refined image
    paint(d, [(-120, 80), (-80, 140), (-20, 100), (-100, 60)])
    before, after2, mask2 = refine(d, 3)
    assert np.array_equal(before, after)
    changed = (after2 != before).any(axis=2)
    assert not changed[~mask2].any() and changed[mask2].mean() > 0.3
    assert d.execute_script("return document.querySelectorAll('#history figure').length") == 3
    assert "error" not in d.find_element("id", "status").get_attribute("class")

    # going back in the history strip shows the first image again
    d.find_element("css selector", "#history figure:first-child").click()
    wait_for(d, "return window.narState.shown >= 4")
    assert np.array_equal(current(d), first)
    d.find_element("css selector", "#history figure:last-child").click()
    wait_for(d, "return window.narState.shown >= 5")
    if os.environ.get("NAR_SERVE_SCREENSHOT"):
        d.save_screenshot(os.environ["NAR_SERVE_SCREENSHOT"])


def test_page_shows_a_server_error_in_one_line(browser, server):
    d = browser
    d.get(server + "/")
    wait_for(d, "return document.getElementById('status').textContent === 'ready'")
    d.execute_script("document.getElementById('steps').value = '0'")
    d.find_element("id", "generate").click()
    wait_for(d, "return document.getElementById('status').classList.contains('error')")
    assert d.find_element("id", "status").text.startswith("422: steps")
