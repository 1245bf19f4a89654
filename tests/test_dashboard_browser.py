"""The dashboard in a real browser (Debian's chromium, Playwright; see tests/browser.py):
login, park scoping, every page free of console errors with its charts drawn, the measured
data on the overview and the site page, a plan requested from the site page, the language
switch, a simulation's progress and report.

With ``VPP_SCREENSHOT_DIR`` set, each page is also saved there as a PNG (the README's
pictures are made so: ``VPP_SCREENSHOT_DIR=docs pytest tests/test_dashboard_browser.py``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import numpy as np
import pytest
from browser import LiveServer, ensure_browser

from service.app import create_app
from service.auth import create_key
from service.db import session_factory

DATE = "2026-07-15"
CST = dt.timezone(dt.timedelta(hours=8))
SHOTS = os.environ.get("VPP_SCREENSHOT_DIR")


@pytest.fixture(scope="module")
def chromium():
    path = ensure_browser()
    if path.startswith("unavailable"):
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {path}")
        pytest.skip(f"browser tests skipped: {path}")
    return path


#: The measured data of the fixture ends here (the day's plan runs on, the measurements
#: stop: the site page shows plan against actual up to it, and a control step decided then).
MEASURED_UNTIL = dt.datetime(2026, 7, 15, 14, 0, tzinfo=CST)


def measured_rows(plan: dict, days: int) -> list[dict]:
    """15-minute rows of the plan's site from 2026-07-01 to :data:`MEASURED_UNTIL`: each day
    the plan of 2026-07-15 as it came true, with a few per cent of deterministic noise on
    import and PV (import [kW], PV [kW], battery [kW, discharge +], SOC [kWh])."""
    rng = np.random.default_rng(7)
    iv = plan["intervals"]
    first = dt.datetime(2026, 7, 1, tzinfo=CST)
    rows = []
    for i in range(days * 96):
        t = first + dt.timedelta(minutes=15 * i)
        if t >= MEASURED_UNTIL:
            break
        k = i % 96
        rows.append({"timestamp": t.isoformat(),
                     "grid_import_kw": round(max(0.0, iv["grid_import_kw"][k]
                                                 * (1 + 0.06 * rng.standard_normal())), 1),
                     "pv_kw": round(iv["pv_used_kw"][k] * (0.9 + 0.1 * rng.random()), 1),
                     "battery_kw": round(iv["discharge_kw"][k] - iv["charge_kw"][k], 1),
                     "soc_kwh": round(iv["soc_kwh"][k], 1)})
    return rows


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A live server (one job slot) with keys and plans of CZ-MG-01 and CZ-MG-02, each
    site's measurements from 2026-07-01 to 07-15 14:00 stored through the API, and a
    control step of CZ-MG-01 decided at 14:05 (the set-points on its page)."""
    from fastapi.testclient import TestClient

    from service.scheduler import run_step
    from vpp.catalog import Catalog
    from vpp.operate import Operator

    tmp = tmp_path_factory.mktemp("browser")
    app = create_app(f"sqlite:///{tmp / 'vpp.sqlite3'}", job_slots=1,
                     simulations_dir=str(tmp / "sims"))
    sessions = session_factory(app.state.engine)
    with sessions() as s:
        keys = {"park1": create_key(s, "park", ["CZ-MG-01"]),
                "park2": create_key(s, "park", ["CZ-MG-02"]),
                "ev": create_key(s, "evaluator"), "admin": create_key(s, "admin")}
    api = TestClient(app)
    plans = {}
    for key, sid in (("park1", "CZ-MG-01"), ("park2", "CZ-MG-02")):
        r = api.post("/v1/plans", headers={"X-API-Key": keys[key]},
                     json={"site_id": sid, "date": DATE})
        assert r.status_code == 201, r.text
        plans[sid] = r.json()["id"]
        rows = measured_rows(r.json(), 15)
        r = api.post(f"/v1/sites/{sid}/measurements", headers={"X-API-Key": keys[key]},
                     json={"interval_minutes": 15, "rows": rows})
        assert r.status_code == 200, r.text
    now = MEASURED_UNTIL + dt.timedelta(minutes=5)
    step = run_step(sessions, Operator(Catalog.load()), "CZ-MG-01", now, MEASURED_UNTIL,
                    "browser-test", 300.0, "test")
    assert step is not None
    with LiveServer(app) as server:
        yield server, keys, plans


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium,
                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


class Page:
    """A browser tab that records console errors and uncaught exceptions."""

    def __init__(self, browser, base: str) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 900},
                                           locale="zh-CN")
        self.page = self.context.new_page()
        self.base = base
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def goto(self, path: str):
        return self.page.goto(self.base + path)

    def login(self, key: str) -> None:
        self.goto("/ui/login")
        self.page.fill("#api_key", key)
        self.page.click("#login")
        self.page.wait_for_url(re.compile(r".*/ui/.*"))
        assert "/ui/login" not in self.page.url

    def shot(self, name: str) -> None:
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(SHOTS) / f"dashboard-{name}.png"),
                                 full_page=True)

    def close(self) -> None:
        self.context.close()


def test_login_and_every_page_renders_without_console_errors(site, browser):
    server, keys, _ = site
    tab = Page(browser, server.url)
    tab.goto("/ui/")
    assert "/ui/login" in tab.page.url  # no session: the login page
    tab.shot("login")
    tab.page.fill("#api_key", "vpp_0000_wrong")
    tab.page.click("#login")
    assert "无效" in tab.page.inner_text(".error")
    assert "vpp_0000_wrong" not in tab.page.url
    assert tab.errors == ["Failed to load resource: the server responded with a status of "
                          "401 (Unauthorized)"]  # the refused login, nothing else
    tab.errors.clear()
    tab.login(keys["ev"])
    assert "vpp_" not in tab.page.url
    pages = {"overview": f"/ui/?date={DATE}", "site": f"/ui/sites/CZ-MG-01?date={DATE}",
             "vpp": f"/ui/vpp?date={DATE}", "simulations": "/ui/simulations",
             "evaluator": "/ui/evaluator"}
    for name, path in pages.items():
        r = tab.goto(path)
        assert r.status == 200, (path, r.status)
        tab.page.wait_for_load_state("networkidle")
        assert tab.page.locator("h1").count() == 1
        if name in ("site", "vpp"):
            chart = "#plan-chart canvas" if name == "site" else "#fleet-chart canvas"
            tab.page.wait_for_selector(chart, timeout=10_000)
        tab.shot(name if name != "overview" else "overview-zh")
    assert tab.errors == [], tab.errors
    cookies = {c["name"]: c for c in tab.context.cookies()}
    assert cookies["vpp_session"]["httpOnly"] and cookies["vpp_session"]["sameSite"] == "Lax"
    assert tab.page.evaluate("document.cookie").find("vpp_session") < 0  # not readable by JS
    tab.page.click("#logout")
    tab.page.wait_for_url(re.compile(r".*/ui/login.*"))
    tab.close()


def test_measured_data_on_the_overview_and_the_site_page(site, browser):
    """The overview's measured columns for both sites (month-to-date peak, its demand
    charge, the subsidy, the data's age: stale at the day's end, 10 h after the last
    reading) and the site page's measured state, plan against actual (chart drawn, totals
    with kWh and yuan) and the control step's set-points, with units, in Chinese."""
    server, keys, _ = site
    tab = Page(browser, server.url)
    tab.login(keys["ev"])
    tab.goto(f"/ui/?date={DATE}")
    tab.page.wait_for_load_state("networkidle")
    for sid in ("CZ-MG-01", "CZ-MG-02"):
        row = tab.page.locator(f"#sites tr[data-site={sid}]")
        peak = row.locator(".mtd-peak").inner_text()
        assert re.fullmatch(r"\d{1,3}(,\d{3})*", peak), peak
        assert re.fullmatch(r"\d{1,3}(,\d{3})*", row.locator(".mtd-demand").inner_text())
        assert "数据过时" in row.locator(".mtd-age").inner_text()  # 10 h old at the day's end
        assert "数据截至 2026-07-15 14:00" in row.locator(".mtd-age").inner_text()
    assert tab.page.locator("#sites .no-measurements").count() == 28
    assert tab.page.inner_text("#measured-sites") == "2 / 30"
    assert "元" in tab.page.inner_text("#measured-demand")
    tab.shot("overview-zh")
    tab.goto(f"/ui/sites/CZ-MG-01?date={DATE}")
    tab.page.wait_for_selector("#actual-chart canvas", timeout=10_000)
    tab.page.wait_for_selector("#plan-chart canvas", timeout=10_000)
    tab.page.wait_for_load_state("networkidle")
    assert re.search(r"kWh \(\d+%\)$", tab.page.inner_text("#state-soc"))
    assert tab.page.inner_text("#state-peak").endswith("kW")
    assert tab.page.inner_text("#state-demand").endswith("元")
    totals = tab.page.locator("#actual-totals tbody tr")
    assert totals.count() == 7
    assert "[元]" in tab.page.inner_text("#actual-totals")
    assert tab.page.locator("#setpoint-table tbody tr").count() == 8
    assert "2026-07-15 14:00" in tab.page.inner_text("#setpoint-table")
    tab.shot("site")
    assert tab.errors == [], tab.errors
    tab.close()


def test_a_park_key_cannot_open_another_sites_page_or_data(site, browser):
    server, keys, plans = site
    tab = Page(browser, server.url)
    tab.login(keys["park1"])
    rows = tab.page.locator("#sites tbody tr")
    assert rows.count() == 1 and rows.first.get_attribute("data-site") == "CZ-MG-01"
    r = tab.goto("/ui/sites/CZ-MG-02")
    assert r.status == 403 and "无权访问" in tab.page.inner_text("#error-title")
    get = tab.context.request.get  # the tab's cookies; downloads do not open as pages
    for ext in ("json", "csv"):
        assert get(f"{server.url}/ui/plans/{plans['CZ-MG-02']}.{ext}").status == 404
    own = get(f"{server.url}/ui/plans/{plans['CZ-MG-01']}.json")
    assert own.status == 200 and own.json()["site_id"] == "CZ-MG-01"
    tab.goto(f"/ui/sites/CZ-MG-01?date={DATE}")
    with tab.page.expect_download() as dl:
        tab.page.click("#dl-csv")
    assert dl.value.suggested_filename.startswith("plan-CZ-MG-01-2026-07-15")
    tab.close()


def test_request_a_plan_from_the_site_page(site, browser):
    server, keys, _ = site
    tab = Page(browser, server.url)
    tab.login(keys["park1"])
    tab.goto("/ui/sites/CZ-MG-01?date=2026-07-16")
    assert tab.page.locator("#no-plan").count() == 1
    tab.page.fill("#f-days", "9")  # refused by the server, named with its range
    tab.page.evaluate("document.getElementById('f-days').removeAttribute('max')")
    tab.page.click("#plan-submit")
    tab.page.wait_for_selector(".error[data-field=days]")
    assert "[1, 7]" in tab.page.inner_text(".error[data-field=days]")
    # the cursor is in the refused field, which is in view (it was far below the top)
    assert tab.page.evaluate("document.activeElement.id") == "f-days"
    assert tab.page.evaluate("(() => { const r = document.getElementById('f-days')"
                             ".getBoundingClientRect(); return r.top >= 0 && r.bottom <= "
                             "window.innerHeight; })()")
    assert [e[-36:] for e in tab.errors] == ["status of 422 (Unprocessable Entity)"]
    tab.errors.clear()  # the refused form's status, nothing else
    tab.page.fill("#f-days", "1")
    tab.page.fill("#f-date", "2026-07-16")
    tab.page.fill("#f-month_peak_kw", "3500")
    tab.page.select_option("#f-pv_quantile", "p10")
    tab.page.click("#plan-submit")
    tab.page.wait_for_selector("#plan-chart canvas", timeout=60_000)
    assert "date=2026-07-16" in tab.page.url
    assert re.search(r"\d", tab.page.inner_text("#kpi-net_cost_yuan"))
    assert "元" in tab.page.inner_text("#kpi-net_cost_yuan")
    assert tab.errors == [], tab.errors
    tab.close()


def test_language_switch(site, browser):
    server, keys, _ = site
    tab = Page(browser, server.url)
    tab.login(keys["ev"])
    tab.goto(f"/ui/sites/CZ-MG-01?date={DATE}")
    assert "新北高新区北区" in tab.page.inner_text("h1")
    tab.page.click("#lang-en")
    tab.page.wait_for_selector("html[lang=en]")
    assert "/ui/sites/CZ-MG-01" in tab.page.url  # back on the same page
    assert "Xinbei High-Tech Park North" in tab.page.inner_text("h1")
    assert "yuan" in tab.page.inner_text("#kpi-net_cost_yuan")
    tab.page.wait_for_selector("#plan-chart canvas")
    tab.shot("site-en")
    tab.goto(f"/ui/?date={DATE}")
    assert "Fleet overview" in tab.page.inner_text("h1")
    tab.shot("overview-en")
    tab.page.click("#lang-zh-CN")
    tab.page.wait_for_selector("html[lang=zh-CN]")
    assert "站点总览" in tab.page.inner_text("h1")
    assert tab.errors == [], tab.errors
    tab.close()


def test_a_simulation_shows_progress_then_its_report(site, browser):
    server, keys, _ = site
    tab = Page(browser, server.url)
    tab.login(keys["ev"])
    tab.goto("/ui/simulations")
    tab.page.fill("#f-start", "2025-07-01")
    tab.page.fill("#f-days", "2")
    tab.page.select_option("#f-control", "day-ahead")
    tab.page.check("input[name=sites][value=CZ-MG-01]")
    tab.page.click("#sim-submit")
    tab.page.wait_for_url(re.compile(r".*/ui/simulations/[0-9a-f-]+$"))
    seen = set()
    for _ in range(1800):  # the page polls and reloads itself when the job ends
        seen.add(tab.page.inner_text("#job-status"))
        if tab.page.locator("#report").count():
            break
        tab.page.wait_for_timeout(100)
    assert "已完成" in tab.page.inner_text("#job-status"), seen
    assert seen & {"排队中", "运行中"}, seen  # it was seen before it ended
    assert tab.page.get_attribute("#job-bar", "value") == "1"
    report = tab.page.frame_locator("#report")
    assert "试点评估" in report.locator("h1").inner_text()
    assert report.locator("table").count() >= 2
    tab.page.wait_for_load_state("networkidle")
    tab.shot("simulation")
    tab.goto("/ui/evaluator")
    assert tab.page.locator("#indicators tbody tr[data-site=CZ-MG-01]").count() == 1
    tab.shot("evaluator")
    assert tab.errors == [], tab.errors
    tab.close()


def test_the_vpp_page_runs_the_day_with_an_event_and_shows_its_settlement(site, browser):
    server, keys, _ = site
    tab = Page(browser, server.url)
    tab.login(keys["admin"])
    tab.goto(f"/ui/vpp?date={DATE}")
    events = (Path(__file__).parents[1] / "docs" / "events-example.json").read_text()
    tab.page.fill("#f-events", "{not json")
    tab.page.click("#fleet-form button[type=submit]")
    assert "JSON" in tab.page.inner_text(".problems")  # named, in the page's language
    tab.errors.clear()  # the refused form's 422
    tab.page.fill("#f-events", events)
    tab.page.click("#fleet-form button[type=submit]")
    tab.page.wait_for_selector("#events", timeout=600_000)  # the page reloads when done
    assert "DR-0715-evening" in tab.page.inner_text("#events")
    assert tab.page.locator("#settlement tr.total").count() == 1
    tab.page.wait_for_selector("#fleet-chart canvas")
    tab.page.wait_for_load_state("networkidle")
    tab.shot("vpp")
    tab.goto(f"/ui/?date={DATE}")
    tab.shot("overview-zh")  # every site planned now
    assert tab.errors == [], tab.errors
    tab.close()
