"""The dashboard's measured panels on hand-made rows, on SQLite and PostgreSQL: the fleet
overview's month-to-date peak, demand charge, subsidy and data age; the site page's state,
plan against actual and latest set-points; park scoping; both languages; the cache following
corrections. Every expected number is worked out by hand in the docstrings.

CZ-MG-01 (tariff jiangsu-ci-two-part-1-10kv, July: peak 14-22 h at 0.97, flat 06-11 h at
0.65, valley 11-13 h at 0.39 yuan/kWh; demand 40 yuan/(kW·month), no contract demand;
battery 2000 kW / 4000 kWh, subsidy 0.3 yuan/kWh from 2025-04-01 to 2027-03-31 on discharge
in peak and flat hours) gets 5-minute rows on 2026-07-15:

=========  ============================  ==========  =========  ======
interval   import [kW] (5-min rows)      15-min avg  battery    period
=========  ============================  ==========  =========  ======
10:00      2400, 3600, 3000              3000        300        flat
12:00      1500, 1500, 1500              1500        400        valley
16:00      2000, 2000, 2000              2000        800        peak
=========  ============================  ==========  =========  ======

* month-to-date peak: 3000 kW (the highest 15-minute *average*; a MAX over the stored rows
  would say 3600) -> demand charge 3000 x 40 = 120,000 yuan;
* discharge (300 + 400 + 800) x 0.25 h = 375 kWh, of which 75 + 200 = 275 kWh in flat and
  peak hours -> subsidy 275 x 0.3 = 82.5 yuan;
* energy cost 3000 x 0.25 x 0.65 + 1500 x 0.25 x 0.39 + 2000 x 0.25 x 0.97
  = 487.5 + 146.25 + 485 = 1118.75 yuan;
* SOC 2600 kWh read at 16:10 (65 %); the newest row (16:10, 5 minutes) ends at 16:15, so at
  the page's time, the end of the day (07-16 00:00), the data is 7 h 45 min old;
* the month so far at 07-16 00:00: 15 days x 96 = 1440 intervals, 3 measured, 1437 gaps.

CZ-MG-02 (park 2; same tariff; subsidy window ended 2026-05-31) gets one 15-minute row on
07-10 09:00: import 5000 kW, battery 1000 kW -> peak 5000 kW, demand charge 200,000 yuan,
discharge 250 kWh, subsidy 0.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from test_dashboard import csrf_of, login
from test_subsidy_ledger import ledger_cells

from service.app import create_app
from service.auth import create_key
from service.db import session_factory
from service.operations import add_setpoints
from vpp.operate import Setpoints

DATE = "2026-07-15"
MG01_ROWS = [(f"{h}:{m:02d}", imp, bat) for h, imps, bat in (
    ("10", (2400.0, 3600.0, 3000.0), 300.0), ("12", (1500.0,) * 3, 400.0),
    ("16", (2000.0,) * 3, 800.0)) for m, imp in zip((0, 5, 10), imps, strict=True)]


def mg01_rows() -> list[dict]:
    rows = [{"timestamp": f"{DATE}T{t}:00+08:00", "grid_import_kw": imp, "battery_kw": bat}
            for t, imp, bat in MG01_ROWS]
    rows[-1]["soc_kwh"] = 2600.0
    return rows


def setpoints() -> Setpoints:
    """A control step decided at 09:58 for 12 intervals from 10:00: planned import 2800 kW
    at 10:00 and 1400 kW at 12:00 (2000 kW elsewhere), set-points 350 kW at 10:00 and 300 kW
    at 12:00 (200 kW elsewhere), a defended peak of 2900 kW."""
    t0 = dt.datetime(2026, 7, 15, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    stamps = [(t0 + dt.timedelta(minutes=15 * i)).isoformat() for i in range(12)]
    imp = [2000.0] * 12
    sp = [200.0] * 12
    imp[0], imp[8], sp[0], sp[8] = 2800.0, 1400.0, 350.0, 300.0
    return Setpoints(site_id="CZ-MG-01", decided_at="2026-07-15T09:58:00+08:00",
                     start=stamps[0], interval_minutes=15, timestamps=stamps, setpoint_kw=sp,
                     grid_import_kw=imp, soc_kwh=[3000.0 - 50.0 * i for i in range(12)],
                     defended_peak_kw=2900.0, optimality_gap=0.0004, status="optimal",
                     solve_seconds=0.5, state_relaxed=False, initial={}, notes=[])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory, empty_database):
    """Keys of park 1 (CZ-MG-01), park 2 (CZ-MG-02) and an evaluator; the rows above
    stored through the API, and the control step's set-points."""
    url = empty_database(request.param, tmp_path_factory.mktemp("measured"))
    app = create_app(url, job_slots=0)
    sessions = session_factory(app.state.engine)
    with sessions() as s:
        keys = {"park1": create_key(s, "park", ["CZ-MG-01"]),
                "park2": create_key(s, "park", ["CZ-MG-02"]), "ev": create_key(s, "evaluator"),
                "admin": create_key(s, "admin")}
    api = TestClient(app, raise_server_exceptions=False)
    r = api.post("/v1/sites/CZ-MG-01/measurements", headers={"X-API-Key": keys["park1"]},
                 json={"interval_minutes": 5, "rows": mg01_rows()})
    assert r.status_code == 200, r.text
    r = api.post("/v1/sites/CZ-MG-02/measurements", headers={"X-API-Key": keys["park2"]},
                 json={"rows": [{"timestamp": "2026-07-10T09:00:00+08:00",
                                 "grid_import_kw": 5000.0, "battery_kw": 1000.0}]})
    assert r.status_code == 200, r.text
    with sessions() as s:
        add_setpoints(s, setpoints(), "test")
        s.commit()
    return app, keys, api


def cells(html: str, site: str) -> dict[str, str]:
    """The overview row of ``site``: its measured cells by class, as text."""
    row = re.search(rf'<tr data-site="{site}">(.*?)</tr>', html, re.S).group(1)
    out = {}
    for cls, text in re.findall(r'<td class="[^"]*?(mtd-\w+|no-measurements)[^"]*"[^>]*>(.*?)</td>',
                                row, re.S):
        out[cls] = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()
    return out


def tile(html: str, id_: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", re.search(
        rf'id="{id_}">(.*?)</b>', html, re.S).group(1))).strip()


def test_overview_shows_each_sites_metered_month_by_hand(world):
    app, keys, _ = world
    page = login(app, keys["ev"]).get(f"/ui/?date={DATE}")
    assert page.status_code == 200
    mg01 = cells(page.text, "CZ-MG-01")
    assert mg01["mtd-peak"] == "3,000"  # the 15-minute average, not the 3600 kW row
    assert mg01["mtd-demand"] == "120,000" and mg01["mtd-subsidy"] == "82.5"
    assert mg01["mtd-age"].startswith("8小时 · 数据过时")  # 7 h 45 min, to its largest unit
    assert "数据截至 2026-07-15 16:15" in mg01["mtd-age"]
    mg02 = cells(page.text, "CZ-MG-02")
    assert (mg02["mtd-peak"], mg02["mtd-demand"], mg02["mtd-subsidy"]) == (
        "3,000".replace("3", "5"), "200,000", "0.0")  # window ended in May: no subsidy
    assert cells(page.text, "CZ-MG-03") == {"no-measurements": "本月尚无实测数据"}
    assert tile(page.text, "measured-sites") == "2 / 30"
    assert tile(page.text, "measured-demand") == "320,000 元"
    assert tile(page.text, "measured-subsidy") == "82.5 元"
    assert "截至 2026-07-16 00:00" in page.text  # the page's day is over: its end


def test_overview_numbers_are_the_state_routes(world):
    """The overview's numbers are vpp.state's: the same as GET /v1/sites/{id}/state at the
    page's time."""
    _, keys, api = world
    st = api.get("/v1/sites/CZ-MG-01/state?at=2026-07-16T00:00:00%2B08:00",
                 headers={"X-API-Key": keys["ev"]}).json()
    assert (st["month_peak_kw"], st["demand_charge_yuan"]) == (3000.0, 120000.0)
    assert st["subsidy_yuan"] == pytest.approx(82.5)
    assert st["discharge_kwh"] == 375.0 and st["energy_cost_yuan"] == pytest.approx(1118.75)
    assert st["age_s"] == 7 * 3600 + 45 * 60


def test_the_month_is_read_as_of_the_pages_day(world):
    app, keys, _ = world
    c = login(app, keys["ev"])
    before = c.get("/ui/?date=2026-07-14").text  # as of 07-15 00:00: no row yet
    assert cells(before, "CZ-MG-01") == {"no-measurements": "本月尚无实测数据"}
    assert cells(before, "CZ-MG-02")["mtd-peak"] == "5,000"
    august = c.get("/ui/?date=2026-08-03").text  # a new billing month
    assert cells(august, "CZ-MG-01") == {"no-measurements": "本月尚无实测数据"}


def test_a_park_key_sees_only_its_sites_measurements(world):
    app, keys, _ = world
    c = login(app, keys["park1"])
    page = c.get(f"/ui/?date={DATE}").text
    assert re.findall(r'data-site="([^"]+)"', page) == ["CZ-MG-01"]
    assert "200,000" not in page and tile(page, "measured-sites") == "1 / 1"
    assert tile(page, "measured-demand") == "120,000 元"
    assert c.get(f"/ui/sites/CZ-MG-02?date={DATE}").status_code == 403
    other = login(app, keys["park2"]).get(f"/ui/?date={DATE}").text
    assert "120,000" not in other and cells(other, "CZ-MG-02")["mtd-demand"] == "200,000"


def test_site_page_state_plan_against_actual_and_set_points_by_hand(world):
    """Planned from the set-points at 10:00 and 12:00 (the only metered intervals they
    cover): planned import (2800 + 1400) x 0.25 = 1050 kWh against metered (3000 + 1500) x
    0.25 = 1125 kWh, peaks 2800 and 3000 kW; its energy cost 2800 x 0.25 x 0.65 + 1400 x
    0.25 x 0.39 = 455 + 136.5 = 591.5 yuan against 487.5 + 146.25 = 633.75 yuan (+42.25);
    planned discharge (350 + 300) x 0.25 = 162.5 kWh against (300 + 400) x 0.25 = 175 kWh;
    the subsidy only on the flat 10:00 interval: 350 x 0.25 x 0.3 = 26.25 yuan planned
    against 300 x 0.25 x 0.3 = 22.5 yuan (-3.75). No day-ahead plan: no PV to compare.
    (Numbers shown to the locale's rounding, half to even: 591.5 -> 592, 162.5 -> 162.)"""
    app, keys, _ = world
    page = login(app, keys["park1"]).get(f"/ui/sites/CZ-MG-01?date={DATE}")
    assert page.status_code == 200
    html = page.text
    assert tile(html, "state-soc") == "2,600 kWh (65%)"
    assert tile(html, "state-peak") == "3,000 kW"
    assert tile(html, "state-demand") == "120,000 元"
    assert tile(html, "state-energy") == "1,119 元"
    assert tile(html, "state-discharge") == "375 kWh"
    assert tile(html, "state-subsidy") == "82.5 元"
    assert tile(html, "state-age") == "8小时 · 数据过时"  # beyond the 30-minute mark
    assert tile(html, "state-gaps") == "1,437 / 1,440"
    assert "2026-07-01 00:00 – 2026-07-15 10:00" in html  # the first gap
    totals = {k: (p, a, d) for k, p, a, d in re.findall(
        r'data-total="(\w+)"><td>[^<]*</td>\s*<td class="n">([^<]*)</td><td class="n">'
        r'([^<]*)</td>\s*<td class="n">([^<]*)</td>', html)}
    assert totals == {"import_kwh": ("1,050", "1,125", "75"),
                      "peak_kw": ("2,800", "3,000", "200"),
                      "energy_cost_yuan": ("592", "634", "42"),
                      "discharge_kwh": ("162", "175", "12"),
                      "charge_kwh": ("0", "0", "0"),
                      "subsidy_yuan": ("26.2", "22.5", "-3.8"),
                      "pv_kwh": ("–", "–", "–")}
    assert "对比了 2 个时段（下网、电量电费）、2 个时段（储能、补贴）和 0 个时段" in html
    assert 'id="actual-chart"' in html and 'id="actual-data"' in html
    assert "控制步骤的指令（12 个时段）" in html
    assert tile(html, "sp-peak") == "2,900 kW"
    assert len(re.findall(r"<tr><td>2026-07-15 1[01]:\d\d</td>", html)) == 8


def test_site_page_in_english_with_units(world):
    app, keys, _ = world
    html = login(app, keys["park1"], "en").get(f"/ui/sites/CZ-MG-01?date={DATE}").text
    assert "Measured state" in html and "as of 2026-07-16 00:00" in html
    assert tile(html, "state-demand") == "120,000 yuan"
    assert tile(html, "state-subsidy") == "82.5 yuan" and tile(html, "state-age") == "8 hr · stale"
    assert "Grid import [kWh]" in html and "Latest control set-points" in html
    over = login(app, keys["ev"], "en").get(f"/ui/?date={DATE}").text
    assert "Month-to-date peak (metered) [kW]" in over and "Its demand charge [yuan]" in over
    assert cells(over, "CZ-MG-03") == {"no-measurements": "no measurements this month"}


def test_a_site_without_measurements_says_so(world):
    app, keys, _ = world
    html = login(app, keys["ev"]).get(f"/ui/sites/CZ-MG-03?date={DATE}").text
    assert 'id="no-measurements"' in html and "本站本计费月尚无实测数据" in html
    assert 'id="no-actual"' in html and 'id="no-setpoints"' in html


def test_a_correction_of_an_old_row_reaches_the_overview(world):
    """The 10:05 row corrected from 3600 to 4500 kW: the 10:00 interval averages
    (2400 + 4500 + 3000) / 3 = 3300 kW -> demand charge 132,000 yuan. The newest row is
    unchanged, so only the site's measurement version says the month changed."""
    app, keys, api = world
    c = login(app, keys["ev"])
    assert cells(c.get(f"/ui/?date={DATE}").text, "CZ-MG-01")["mtd-peak"] == "3,000"
    r = api.post("/v1/sites/CZ-MG-01/measurements", headers={"X-API-Key": keys["park1"]},
                 json={"interval_minutes": 5, "rows": [
                     {"timestamp": f"{DATE}T10:05:00+08:00", "grid_import_kw": 4500.0}]})
    assert r.status_code == 200, r.text
    row = cells(c.get(f"/ui/?date={DATE}").text, "CZ-MG-01")
    assert (row["mtd-peak"], row["mtd-demand"]) == ("3,300", "132,000")
    api.post("/v1/sites/CZ-MG-01/measurements", headers={"X-API-Key": keys["park1"]},
             json={"interval_minutes": 5, "rows": [
                 {"timestamp": f"{DATE}T10:05:00+08:00", "grid_import_kw": 3600.0}]})
    assert cells(c.get(f"/ui/?date={DATE}").text, "CZ-MG-01")["mtd-peak"] == "3,000"


def test_the_overview_reads_unchanged_sites_from_the_cache(world):
    app, keys, _ = world
    c = login(app, keys["ev"])
    c.get(f"/ui/?date={DATE}")
    cache = app.state.dashboard.cache
    hits, misses = cache.hits, cache.misses
    c.get(f"/ui/?date={DATE}")
    assert (cache.hits - hits, cache.misses - misses) == (2, 0)  # the two measured sites


def test_fresh_data_is_not_marked_stale(world):
    """CZ-MG-04 gets 5-minute rows up to the newest 5 minutes that are over (by the real
    clock): the newest ends at that boundary, so at the page's time (now) the data is less
    than 5 minutes old, under the 30-minute mark: a green age without the stale word, on the
    overview and the site page (the day's page; the day of the rows if it just ended)."""
    app, keys, api = world
    now = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8)))
    last = now.replace(second=0, microsecond=0) - dt.timedelta(minutes=now.minute % 5 + 5)
    rows = [{"timestamp": (last - dt.timedelta(minutes=m)).isoformat(), "grid_import_kw": 1000.0}
            for m in (10, 5, 0)]
    r = api.post("/v1/sites/CZ-MG-04/measurements", headers={"X-API-Key": keys["admin"]},
                 json={"interval_minutes": 5, "rows": rows})
    assert r.status_code == 200, r.text
    c = login(app, keys["ev"])
    day = last.date().isoformat()
    over = c.get(f"/ui/?date={day}").text
    age = re.search(r'<tr data-site="CZ-MG-04">.*?(<span class="tag[^>]*data-stale[^>]*>'
                    r'[^<]*</span>)', over, re.S).group(1)
    assert 'class="tag green"' in age and 'data-stale="no"' in age and "过时" not in age
    site = c.get(f"/ui/sites/CZ-MG-04?date={day}").text
    assert 'data-stale="no"' in re.search(r'id="state-age">(.*?)</b>', site, re.S).group(1)


# ------------------------------------------------------------------- a month's last day


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def monthend(request, tmp_path_factory, empty_database):
    """15-minute rows stored through the API (same tariff and policy as above):

    CZ-MG-01 in July 2026 (subsidy window 2025-04-01 to 2027-03-31):

    ===========  ===========  ===========  ======================
    row          import [kW]  battery [kW] period: counted [kWh]
    ===========  ===========  ===========  ======================
    07-10 16:00  3000         400          peak: 100
    07-30 08:00  3500         200          flat: 50
    07-31 20:00  4200         800          critical peak: 200
    ===========  ===========  ===========  ======================

    * as of the end of 07-30 (07-31 00:00): peak 3500 kW -> 3500 x 40 = 140,000 yuan;
      subsidy (100 + 50) x 0.3 = 45 yuan; discharge 150 kWh; 30 x 96 = 2880 intervals,
      2 measured;
    * as of the end of 07-31 (08-01 00:00): still July, with the 31st's row: peak 4200 kW
      -> 168,000 yuan; subsidy 350 x 0.3 = 105 yuan; discharge 350 kWh; 31 x 96 = 2976
      intervals, 3 measured;
    * 08-01: August has no row (none in its read range, 07-31 23:00 on): no measurements.

    For the evaluator's ledger of 2025: CZ-MG-05 (window 2024-10-01 to 2026-09-30) discharges
    200 kW on 2025-06-10 16:00 (peak: 50 kWh, 15 yuan) and 400 kW on 2025-12-31 08:00 (flat:
    100 kWh, 30 yuan), in all 150 kWh and 45 yuan; CZ-MG-06 has one row, 2025-12-31 23:30
    (import 500 kW, battery at rest): in the 2025 ledger as December, and in the hour that
    2026's ledger reads before January, where it makes no month of 2026."""
    url = empty_database(request.param, tmp_path_factory.mktemp("monthend"))
    app = create_app(url, job_slots=0)
    with session_factory(app.state.engine)() as s:
        keys = {"ev": create_key(s, "evaluator"), "admin": create_key(s, "admin"),
                "park1": create_key(s, "park", ["CZ-MG-01"])}
    api = TestClient(app, raise_server_exceptions=False)
    for site, rows in (
            ("CZ-MG-01", [("2026-07-10T16:00", 3000.0, 400.0), ("2026-07-30T08:00", 3500.0, 200.0),
                          ("2026-07-31T20:00", 4200.0, 800.0)]),
            ("CZ-MG-05", [("2025-06-10T16:00", 1000.0, 200.0),
                          ("2025-12-31T08:00", 1000.0, 400.0)]),
            ("CZ-MG-06", [("2025-12-31T23:30", 500.0, 0.0)])):
        r = api.post(f"/v1/sites/{site}/measurements", headers={"X-API-Key": keys["admin"]},
                     json={"rows": [{"timestamp": f"{t}:00+08:00", "grid_import_kw": imp,
                                     "battery_kw": bat} for t, imp, bat in rows]})
        assert r.status_code == 200, r.text
    return app, keys


@pytest.mark.parametrize(("date", "peak", "demand", "subsidy", "discharge", "gaps", "as_of"), [
    ("2026-07-30", "3,500", "140,000", "45.0", "150 kWh", "2,878 / 2,880", "2026-07-31 00:00"),
    ("2026-07-31", "4,200", "168,000", "105.0", "350 kWh", "2,973 / 2,976", "2026-08-01 00:00"),
])
def test_a_months_last_day_shows_that_month_to_its_end(monthend, date, peak, demand, subsidy,
                                                       discharge, gaps, as_of):
    """The page of 07-31 is as of 08-01 00:00 and still shows July, the 31st's row
    included (numbers in the fixture's docstring), on the overview and the site page."""
    app, keys = monthend
    over = login(app, keys["ev"]).get(f"/ui/?date={date}")
    assert over.status_code == 200
    mg01 = cells(over.text, "CZ-MG-01")
    assert (mg01["mtd-peak"], mg01["mtd-demand"], mg01["mtd-subsidy"]) == (peak, demand,
                                                                           subsidy)
    assert tile(over.text, "measured-demand") == f"{demand} 元"
    assert tile(over.text, "measured-subsidy") == f"{subsidy} 元"
    assert f"本月截至 {as_of}" in over.text
    site = login(app, keys["park1"]).get(f"/ui/sites/CZ-MG-01?date={date}")
    assert site.status_code == 200
    assert tile(site.text, "state-peak") == f"{peak} kW"
    assert tile(site.text, "state-demand") == f"{demand} 元"
    assert tile(site.text, "state-subsidy") == f"{subsidy} 元"
    assert tile(site.text, "state-discharge") == discharge
    assert tile(site.text, "state-gaps") == gaps
    assert f"截至 {as_of}" in site.text


def test_the_next_months_first_day_starts_a_new_month(monthend):
    app, keys = monthend
    over = login(app, keys["ev"]).get("/ui/?date=2026-08-01").text
    assert cells(over, "CZ-MG-01") == {"no-measurements": "本月尚无实测数据"}
    assert tile(over, "measured-sites") == "0 / 30"
    site = login(app, keys["park1"]).get("/ui/sites/CZ-MG-01?date=2026-08-01").text
    assert 'id="no-measurements"' in site and 'id="state-peak"' not in site


def test_the_evaluators_page_of_new_years_eve_shows_that_years_ledger(monthend):
    """As of 2026-01-01 00:00, the ledger of 2025 (numbers in the fixture's docstring)."""
    app, keys = monthend
    page = login(app, keys["ev"]).get("/ui/evaluator?date=2025-12-31")
    assert page.status_code == 200 and 'id="no-ledger"' not in page.text
    assert "2025 年，截至 2026-01-01 00:00" in page.text
    mg05 = ledger_cells(page.text, "CZ-MG-05")
    assert list(mg05) == ["2025-06", "2025-12"]
    assert mg05["2025-06"][1:7] == ["是", "50.0", "50.0", "0.30", "15.00", "1 / 2,880"]
    assert mg05["2025-12"][1:7] == ["是", "100.0", "100.0", "0.30", "30.00", "1 / 2,976"]
    total = re.search(r'<tbody data-site="CZ-MG-05">.*?<tr class="total">(.*?)</tr>',
                      page.text, re.S).group(1)
    assert [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(
        r"<td[^>]*>(.*?)</td>", total, re.S)][1:4] == ["150.0", "150.0", ""]
    assert "45.00" in total
    assert list(ledger_cells(page.text, "CZ-MG-06")) == ["2025-12"]
    assert 'data-site="CZ-MG-01"' not in page.text  # its rows are of 2026


def test_a_site_without_a_month_in_the_year_is_left_out_of_the_ledger(monthend):
    """The page of 2026-01-05 reads 2026's rows from 2025-12-31 23:00 on: CZ-MG-06's row at
    23:30 is among them but is December 2025's, so CZ-MG-06 has no month of 2026 and no
    row (not a totals row without its site); no other site has a row by 01-06 00:00."""
    app, keys = monthend
    page = login(app, keys["ev"]).get("/ui/evaluator?date=2026-01-05").text
    assert "<tbody data-site=" not in page and 'id="no-ledger"' in page
    july = login(app, keys["ev"]).get("/ui/evaluator?date=2026-07-31").text
    assert re.findall(r'<tbody data-site="([^"]+)"', july) == ["CZ-MG-01"]
    assert list(ledger_cells(july, "CZ-MG-01")) == ["2026-07"]


def test_the_overview_months_are_computed_into_the_cache_at_start_up(tmp_path):
    """A server that starts on a database with this month's rows counts every site's month
    in a thread of its own, so the first overview reads only the marks: after the start the
    cache holds CZ-MG-01's month, its peak the 1234 kW of the one row stored."""
    import time

    url = f"sqlite:///{tmp_path / 'vpp.sqlite3'}"
    first = create_app(url, job_slots=0)
    with session_factory(first.state.engine)() as s:
        key = create_key(s, "admin")
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=8)))
    t = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    t = max(t - dt.timedelta(minutes=15), t.replace(day=1, hour=0, minute=0))
    r = TestClient(first).post("/v1/sites/CZ-MG-01/measurements",
                               headers={"X-API-Key": key},
                               json={"rows": [{"timestamp": t.isoformat(),
                                               "grid_import_kw": 1234.0}]})
    assert r.status_code == 200, r.text
    first.state.engine.dispose()
    app = create_app(url, job_slots=0)
    cache = app.state.dashboard.cache
    assert len(cache) == 0
    with TestClient(app):  # runs the start-up
        deadline = time.monotonic() + 60
        while len(cache) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(cache) == 1
        (month,) = list(cache._data.values())
        assert month.site_id == "CZ-MG-01" and month.month_peak_kw == 1234.0


def test_a_plan_from_the_blank_form_starts_from_the_stored_state(world):
    """The plan form leaves the month-to-date peak blank (it used to show 0.0, which then
    overrode the meter): submitted as rendered, a plan of 2026-07-16 starts from the July
    peak metered so far, 3000 kW, as the API and the CLI do; the SOC read at 16:10 is more
    than 60 minutes before the plan's start, so the site's nominal 50 % (2000 kWh) is used
    and the plan says why. A number typed in still wins."""
    app, keys, _ = world
    c = login(app, keys["park1"])
    page = c.get("/ui/sites/CZ-MG-01?date=2026-07-16").text
    peak_input = re.search(r'<input type="number" id="f-month_peak_kw"[^>]*>', page).group(0)
    assert 'value=""' in peak_input and "placeholder=" in peak_input
    form = {"csrf": csrf_of(page), "date": "2026-07-16", "subsidy_aware": "on",
            "month_peak_kw": "", "soc_initial_frac": "", "method": "auto",
            "pv_quantile": "p50", "days": "1"}
    r = c.post("/ui/sites/CZ-MG-01/plans", data=form)
    assert r.status_code == 200 and r.url.path == "/ui/sites/CZ-MG-01", r.text[-800:]
    plan_id = re.search(r'href="/ui/plans/([0-9a-f-]+)\.json"', r.text).group(1)
    init = c.get(f"/ui/plans/{plan_id}.json").json()["initial_state"]
    assert init["month_peak_kw"] == 3000.0
    assert init["month_peak_source"].startswith("stored measurements")
    assert init["soc_initial_kwh"] == pytest.approx(2000.0)
    assert "no SOC measured within 60 min" in init["soc_initial_source"]
    r = c.post("/ui/sites/CZ-MG-01/plans", data={**form, "csrf": csrf_of(r.text),
                                                 "month_peak_kw": "3500"})
    plan_id = re.search(r'href="/ui/plans/([0-9a-f-]+)\.json"', r.text).group(1)
    init = c.get(f"/ui/plans/{plan_id}.json").json()["initial_state"]
    assert init["month_peak_kw"] == 3500.0 and init["month_peak_source"] == (
        "option month_peak_kw")
