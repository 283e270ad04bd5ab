"""The inspector in a real browser: headless Chromium (Debian's) driven by selenium against `dohost dev`.

One `dohost dev` and one browser serve the whole module; the tests run in
file order on the same notebooks, as a person would click through. They
assert what a person sees (names, rows, states, messages) and click the
buttons. The screenshots in docs/ (shown by the README) are made here.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).with_name("project")
DOCS = Path(__file__).resolve().parents[3] / "docs"


def screenshot(browser: Any, name: str, tmp_dir: Path) -> None:
    """Every run takes the screenshot; it lands in docs/ (the README's) only with DOHOST_SCREENSHOTS=1."""
    folder = DOCS if os.environ.get("DOHOST_SCREENSHOTS") == "1" else tmp_dir
    browser.save_screenshot(str(folder / name))
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
#: Real seconds a page gets to show what is awaited (a real browser on a real server).
WAIT_S = 30


def ensure_chromium() -> None:
    """Install Debian's chromium and chromium-driver if missing (idempotent); fail loudly if impossible."""
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.fail("the inspector's browser tests need Debian's chromium and chromium-driver: "
                    "run `apt-get update && apt-get install -y chromium chromium-driver` as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "chromium", "chromium-driver"]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(f"apt-get installed chromium but {CHROMIUM} or {CHROMEDRIVER} is still missing")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dev:
    def __init__(self, url: str, state: Path, config: Path) -> None:
        self.url, self.state, self.config = url, state, config
        self.http = httpx.Client(base_url=url, timeout=10)


@pytest.fixture(scope="module")
def dev() -> Iterator[Dev]:
    with tempfile.TemporaryDirectory(prefix="dohost-inspector-") as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__", ".dohost"))
        state = Path(tmp) / "state"
        port = _free_port()
        log = open(Path(tmp) / "dev.log", "w+")
        script = Path(sys.executable).parent / "dohost"
        argv = [str(script)] if script.exists() else [sys.executable, "-m", "wrangler_compat.cli"]
        process = subprocess.Popen(
            [*argv, "dev", "--config", str(project), "--port", str(port), "--persist-to", str(state),
             "--idle-timeout", "600"],  # objects leave memory only when a test says so, however slow the machine
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        url = f"http://127.0.0.1:{port}"
        server: Dev | None = None
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(url + "/__dohost/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"dohost dev did not start:\n{log.read()}")
                time.sleep(0.1)
            server = Dev(url, state, project / "wrangler.toml")
            for title, stars in (("alpha", 4), ("beta", 5)):
                server.http.get(f"/ada/add?title={title}&stars={stars}")
            server.http.get("/ada/set?key=theme&value=dark")
            server.http.get("/ada/remind?at=4102444800000")  # 2100-01-01
            server.http.get("/grace/add?title=gamma")
            yield server
        finally:
            if server is not None:
                server.http.close()
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    ensure_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="dohost-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1000", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _texts(driver: Any, selector: str) -> list[str]:
    """The visible text of each match, read in one step in the page (the live refresh redraws tables)."""
    found = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText)", selector)
    return [" ".join(t.split()) for t in found]


def _wait_text(driver: Any, selector: str, text: str) -> None:
    from selenium.common.exceptions import JavascriptException
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT_S, ignored_exceptions=(JavascriptException,)).until(
        lambda d: any(text in t for t in _texts(d, selector)),
        message=f"{selector!r} never showed {text!r}",
    )


def _click(driver: Any, element_id: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, element_id).click()


def test_the_object_list_shows_each_notebook_with_its_state_and_filters_by_name(dev: Dev, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(dev.url + "/__dohost/inspector")
    names = _texts(browser, "#objects td.name")
    assert sorted(names) == ["ada", "grace"]
    assert set(_texts(browser, "#objects .state")) <= {"idle", "active"}
    DOCS.mkdir(exist_ok=True)
    screenshot(browser, "inspector-objects.png", Path(tempfile.gettempdir()))

    box = browser.find_element(By.ID, "filter")
    box.send_keys("gra")
    box.submit()
    _wait_text(browser, "#objects td.name", "grace")
    assert _texts(browser, "#objects td.name") == ["grace"]


def test_a_hibernated_websocket_shows_its_tags_attachment_and_the_auto_response(dev: Dev, browser: Any) -> None:
    # A second tab holds a WebSocket to ada's notebook and uses the auto-response.
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(dev.url + "/ada/count")
    ws_url = dev.url.replace("http://", "ws://") + "/ada/ws?who=grace"
    browser.execute_script(
        "window.seen = []; window.sock = new WebSocket(arguments[0]);"
        "sock.onmessage = e => seen.push(e.data); sock.onopen = () => sock.send('ping');", ws_url)
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, WAIT_S).until(lambda d: d.execute_script("return window.seen.includes('pong')"))
    browser.switch_to.window(first)

    browser.get(dev.url + "/__dohost/inspector/NOTEBOOK/ada")
    _click(browser, "evict")
    _wait_text(browser, "#state", "hibernated")
    sockets = _texts(browser, "#sockets tbody tr")
    assert len(sockets) == 1 and "reader, grace" in sockets[0] and '{"who":"grace"}' in sockets[0].replace(" ", "")
    assert "ping" in _texts(browser, "#auto-response")[0] and "pong" in _texts(browser, "#auto-response")[0]
    # Everything on the page was read without waking it.
    assert dev.http.get("/__dohost/api/objects/NOTEBOOK/ada").json()["state"] == "hibernated"


def test_the_object_page_shows_rows_kv_entries_and_the_alarm_of_a_sleeping_object(dev: Dev, browser: Any) -> None:
    browser.get(dev.url + "/__dohost/inspector/NOTEBOOK/ada")
    rows = _texts(browser, "#rows tbody tr")
    assert [r.split()[1] for r in rows] == ["alpha", "beta"]
    assert any("theme" in r and "dark" in r for r in _texts(browser, "#kv tbody tr"))
    assert _texts(browser, "#alarm") == ["2100-01-01T00:00:00.000Z"]
    assert _texts(browser, "#state") == ["hibernated"]
    browser.set_window_size(1280, 1900)  # the whole page: sockets and events too
    screenshot(browser, "inspector-object.png", Path(tempfile.gettempdir()))
    browser.set_window_size(1280, 1000)


def test_the_query_box_answers_reads_and_refuses_writes(dev: Dev, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(dev.url + "/__dohost/inspector/NOTEBOOK/ada")
    browser.find_element(By.ID, "sql").send_keys("SELECT title, stars FROM notes WHERE stars > 4")
    _click(browser, "run-query")
    _wait_text(browser, "#query-result", "beta")
    assert _texts(browser, "#query-result tbody tr") == ["beta 5.0"]
    screenshot(browser, "inspector-query.png", Path(tempfile.gettempdir()))

    box = browser.find_element(By.ID, "sql")
    box.clear()
    box.send_keys("DELETE FROM notes")
    _click(browser, "run-query")
    _wait_text(browser, "#query-error", "read-only")
    assert dev.http.get("/__dohost/api/objects/NOTEBOOK/ada").json()["state"] == "hibernated"


def test_the_page_follows_the_object_live_without_reloading(dev: Dev, browser: Any) -> None:
    browser.get(dev.url + "/__dohost/inspector/NOTEBOOK/ada")
    browser.execute_script("window.notReloaded = true")
    dev.http.get("/ada/set?key=mood&value=curious")  # wakes it: a request through the Worker
    _wait_text(browser, "#kv tbody", "curious")
    _wait_text(browser, "#events tbody", "fetch")
    assert _texts(browser, "#state")[0] in ("idle", "active")
    assert browser.execute_script("return window.notReloaded") is True


def test_the_alarm_buttons_run_it_now_and_delete_it(dev: Dev, browser: Any) -> None:
    browser.get(dev.url + "/__dohost/inspector/NOTEBOOK/ada")
    _click(browser, "alarm-run")
    _wait_text(browser, "#alarm", "no alarm set")
    _wait_text(browser, "#kv tbody", "reminded")

    dev.http.get("/ada/remind?at=4102444800000")
    browser.get(dev.url + "/__dohost/inspector/NOTEBOOK/ada")
    assert _texts(browser, "#alarm") == ["2100-01-01T00:00:00.000Z"]
    _click(browser, "alarm-delete")
    _wait_text(browser, "#alarm", "no alarm set")


def test_the_abort_button_resets_the_object_and_keeps_its_storage(dev: Dev, browser: Any) -> None:
    dev.http.get("/grace/count")
    browser.get(dev.url + "/__dohost/inspector/NOTEBOOK/grace")
    _click(browser, "abort")
    _wait_text(browser, "#state", "evicted")
    assert [r.split()[1] for r in _texts(browser, "#rows tbody tr")] == ["gamma"]


def test_restore_here_brings_back_the_bookmarked_rows_and_shows_the_undo(dev: Dev, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    mark = dev.http.get("/__dohost/api/objects/NOTEBOOK/grace/bookmark").json()["bookmark"]
    dev.http.get("/grace/add?title=later")
    browser.get(dev.url + "/__dohost/inspector/NOTEBOOK/grace")
    assert any(mark in r for r in _texts(browser, "#bookmarks tbody tr"))
    browser.find_element(By.XPATH, f"//table[@id='bookmarks']//tr[td[text()='{mark}']]//button").click()
    _wait_text(browser, "#restored", "To undo")
    assert _texts(browser, "#state") == ["evicted"]
    assert [r.split()[1] for r in _texts(browser, "#rows tbody tr")] == ["gamma"]
    # The address is the object's again, and the page keeps following it: a new restore point shows up.
    assert "/__dohost/inspector/NOTEBOOK/" in browser.current_url and not browser.current_url.endswith("/restore")
    points = len(_texts(browser, "#bookmarks tbody tr"))
    dev.http.get("/grace/add?title=after")
    WebDriverWait(browser, WAIT_S).until(lambda d: len(_texts(d, "#bookmarks tbody tr")) > points,
                                         message="the new restore point never showed")


def test_dohost_do_finds_the_running_dev_server_and_goes_through_it(dev: Dev, capsys: pytest.CaptureFixture[str]) -> None:
    from wrangler_compat.cli import main

    code = main(["do", "sql", "NOTEBOOK", "ada", "SELECT title FROM notes ORDER BY id", "--json",
                 "--config", str(dev.config), "--persist-to", str(dev.state)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["rows"] == [["alpha"], ["beta"]]
    # The dev server holds ada's file; the write went through it and its gates.
    code = main(["do", "kv", "put", "NOTEBOOK", "ada", "via", "cli", "--config", str(dev.config), "--persist-to", str(dev.state)])
    assert code == 0
    assert {"key": "via", "value": "cli"} in dev.http.get("/__dohost/api/objects/NOTEBOOK/ada/kv").json()["entries"]
