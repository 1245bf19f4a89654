"""The monthly storage-subsidy ledger (vpp/ledger.py) on numbers derived by hand, and its API.

CZ-MG-04: 1000 kW storage, connected 2026-07-08, so paid from 2026-08-01 to 2028-07-31.
Tariff su-fagaijiage-2025-426, summer (Jun-Aug, Dec-Feb): peak 14-22 (critical peak Jul-Aug
14-15 and 19:30-21:30), flat 06-11, 13-14, 22-24, valley 00-06, 11-13.

* July 2026 (month of connection): 400 kW for one interval at 16:00 -> 100 kWh, not paid.
* August 2026: 400 kW at 16:00 (peak, 100 kWh), 200 kW at 08:00 (flat, 50 kWh), 800 kW at
  12:00 (valley, 200 kWh): metered 350 kWh; peak_flat counts 150 kWh -> 45 yuan at 0.3.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import create_key
from service.db import session_factory
from vpp.ledger import parse_month, subsidy_ledger
from vpp.measurements import validate_batch
from vpp.subsidy import PolicyBook

NOW = pd.Timestamp("2026-12-01T08:00:00+08:00")
AT = "2026-12-01T08:00:00%2B08:00"
ROWS = [("2026-07-20T16:00", 400.0), ("2026-08-10T08:00", 200.0),
        ("2026-08-10T12:00", 800.0), ("2026-08-10T16:00", 400.0)]


def rows_of(pairs=ROWS) -> list[dict]:
    return [{"timestamp": f"{t}:00+08:00", "battery_kw": b, "grid_import_kw": 300.0}
            for t, b in pairs]


def frame(catalog, site_id="CZ-MG-04", pairs=ROWS, now=NOW) -> pd.DataFrame:
    site = catalog.fleet.site(site_id)
    return validate_batch(site, rows_of(pairs), interval_minutes=15, now=now).frame


def test_the_month_of_connection_is_not_paid_and_the_next_counts_peak_and_flat(catalog):
    led = subsidy_ledger(catalog, "CZ-MG-04", frame(catalog), NOW)
    jul, aug = led.months
    assert (jul.month, jul.in_window, jul.discharge_kwh, jul.counted_discharge_kwh,
            jul.rate_yuan_per_kwh, jul.subsidy_yuan) == ("2026-07", False, 100.0, 0.0, 0.0, 0.0)
    assert (aug.month, aug.in_window, aug.discharge_kwh, aug.rate_yuan_per_kwh) == (
        "2026-08", True, 350.0, 0.3)
    assert aug.counted_discharge_kwh == pytest.approx(150.0)  # 100 peak + 50 flat
    assert aug.subsidy_yuan == pytest.approx(45.0)
    assert (aug.intervals_measured, aug.intervals_in_month, aug.complete) == (3, 31 * 96, True)
    assert aug.counting_rule == "peak_flat" and aug.tariff_version == "su-fagaijiage-2025-426"
    assert led.window_first_day == "2026-08-01" and led.window_last_day == "2028-07-31"
    assert led.subsidy_in_window_yuan == pytest.approx(45.0)
    assert led.window_months_left == 20  # Dec 2026 (running) to Jul 2028
    # the running month agrees with the measured state's month-to-date
    from vpp.state import month_to_date

    mtd = month_to_date(catalog, "CZ-MG-04", frame(catalog), pd.Timestamp(
        "2026-08-20T00:00:00+08:00"))
    assert mtd.subsidy_yuan == pytest.approx(aug.subsidy_yuan)


def test_a_window_opened_inside_a_month_counts_only_its_days_in_the_totals(catalog):
    """CZ-MG-06 (connected 2024-03-05) is paid from the policy's effective date 2024-07-11:
    400 kW at 09:00 (peak under 555号) on 5 and 20 July is 100 + 100 kWh metered, of which
    only the 20th's 100 kWh lie in the window: counted 100 kWh, 30 yuan, and 100 kWh of
    discharge in the window (the totals said 200, the whole month's)."""
    now = pd.Timestamp("2024-08-01T08:00:00+08:00")
    rows = frame(catalog, "CZ-MG-06", [("2024-07-05T09:00", 400.0),
                                       ("2024-07-20T09:00", 400.0)], now)
    led = subsidy_ledger(catalog, "CZ-MG-06", rows, now)
    (jul,) = led.months
    assert (jul.in_window, jul.discharge_kwh) == (True, 200.0)
    assert jul.counted_discharge_kwh == pytest.approx(100.0)
    assert led.discharge_in_window_kwh == pytest.approx(100.0)
    assert led.counted_discharge_in_window_kwh == pytest.approx(100.0)
    assert led.subsidy_in_window_yuan == pytest.approx(30.0)


def test_a_station_below_half_a_megawatt_earns_nothing(catalog):
    led = subsidy_ledger(catalog, "CZ-MG-07", frame(catalog, "CZ-MG-07",
                                                    [(t, b / 4) for t, b in ROWS]), NOW)
    assert not led.eligible and led.window_first_day is None and led.window_months_left == 0
    assert [m.in_window for m in led.months] == [False, False]
    assert led.months[1].discharge_kwh == 87.5 and led.months[1].subsidy_yuan == 0.0
    assert led.subsidy_in_window_yuan == 0.0


def test_the_annual_hours_cap_carries_over_months_and_resets_in_january(catalog):
    policy = dataclasses.replace(catalog.policy, rule="annual_hours_cap", annual_hours=0.3)
    cat = dataclasses.replace(catalog, policies=PolicyBook([policy]))  # 0.3 h x 1000 kW
    # = 300 kWh a year
    pairs = [*ROWS, ("2026-09-10T16:00", 400.0), ("2027-01-10T16:00", 400.0)]
    now = pd.Timestamp("2027-02-01T00:00:00+08:00")
    rows = frame(cat, pairs=pairs, now=now)
    led = subsidy_ledger(cat, "CZ-MG-04", rows, now)
    got = {m.month: (m.discharge_kwh, round(m.counted_discharge_kwh, 6),
                     round(m.subsidy_yuan, 6)) for m in led.months}
    assert got == {"2026-07": (100.0, 0.0, 0.0),          # before the window
                   "2026-08": (350.0, 300.0, 90.0),       # every kWh, up to the budget
                   "2026-09": (100.0, 0.0, 0.0),          # the year's budget is spent
                   "2027-01": (100.0, 100.0, 30.0)}       # a new year, a new budget
    later = subsidy_ledger(cat, "CZ-MG-04", rows, now,
                           first=dt.date(2026, 9, 1), last=dt.date(2026, 9, 1))
    assert [(m.month, m.counted_discharge_kwh) for m in later.months] == [("2026-09", 0.0)]


@pytest.mark.parametrize("load_metered", [True, False])
def test_net_of_grid_charging_counts_no_grid_charged_energy_without_a_load_meter(
        catalog, load_metered):
    """August 2026, net_of_grid_charging: at 10:00 the battery charges 400 kW while PV makes
    400 kW and the site imports 600 kW for a 600 kW load - all of the charge comes from the
    grid (PV surplus = max(0, 400 - 600) = 0); at 16:00 it discharges 400 kW (100 kWh). The
    day's discharge net of grid charging is 100 - 100 = 0 kWh: 0 yuan, whether the load was
    metered or is taken from the meter's balance 600 - 0 + 400 + 0 - 400 = 600 kW (export
    not metered: 0)."""
    cat = dataclasses.replace(catalog, policies=PolicyBook([dataclasses.replace(
        catalog.policy, rule="net_of_grid_charging")]))
    charge = {"timestamp": "2026-08-10T10:00:00+08:00", "battery_kw": -400.0,
              "pv_kw": 400.0, "grid_import_kw": 600.0}  # no export meter either
    dis = {"timestamp": "2026-08-10T16:00:00+08:00", "battery_kw": 400.0, "pv_kw": 0.0,
           "grid_import_kw": 0.0}
    if load_metered:
        charge["load_kw"], dis["load_kw"] = 600.0, 400.0
    site = cat.fleet.site("CZ-MG-04")
    rows = validate_batch(site, [charge, dis], interval_minutes=15, now=NOW).frame
    (aug,) = subsidy_ledger(cat, "CZ-MG-04", rows, NOW).months
    assert aug.discharge_kwh == 100.0
    assert aug.counted_discharge_kwh == pytest.approx(0.0, abs=1e-9)
    assert aug.subsidy_yuan == pytest.approx(0.0, abs=1e-9)


def test_months_are_parsed_strictly():
    assert parse_month("2026-08") == dt.date(2026, 8, 1)
    for bad in ("2026-13", "2026-8", "2026-08-01", "", "x"):
        with pytest.raises(ValueError):
            parse_month(bad)


# ------------------------------------------------------------------------------ API


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def svc(request, tmp_path_factory, empty_database):
    url = empty_database(request.param, tmp_path_factory.mktemp("ledger"))
    app = create_app(url, job_slots=0)
    with session_factory(app.state.engine)() as s:
        keys = {"park4": create_key(s, "park", ["CZ-MG-04"]),
                "park3": create_key(s, "park", ["CZ-MG-03"]),
                "ev": create_key(s, "evaluator"), "admin": create_key(s, "admin")}
    client = TestClient(app, raise_server_exceptions=False)
    r = client.post("/v1/sites/CZ-MG-04/measurements", headers={"X-API-Key": keys["park4"]},
                    json={"rows": rows_of()})
    assert r.status_code == 200, r.text
    return client, keys, app


def test_the_ledger_api_gives_the_months_with_units_and_totals(svc):
    client, keys, _ = svc
    for who in ("park4", "ev", "admin"):
        r = client.get(f"/v1/sites/CZ-MG-04/subsidy-ledger?at={AT}",
                       headers={"X-API-Key": keys[who]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert [(m["month"], m["in_window"], m["discharge_kwh"], m["counted_discharge_kwh"],
                 m["subsidy_yuan"]) for m in body["months"]] == [
            ("2026-07", False, 100.0, 0.0, 0.0), ("2026-08", True, 350.0, 150.0, 45.0)]
        assert body["subsidy_in_window_yuan"] == 45.0 and body["window_months_left"] == 20
    r = client.get(f"/v1/sites/CZ-MG-04/subsidy-ledger?at={AT}&from=2026-08&to=2026-08",
                   headers={"X-API-Key": keys["ev"]})
    assert [m["month"] for m in r.json()["months"]] == ["2026-08"]
    r = client.get(f"/v1/sites/CZ-MG-03/subsidy-ledger?at={AT}",
                   headers={"X-API-Key": keys["ev"]})
    assert r.status_code == 200 and r.json()["months"] == []


def test_without_from_the_ledger_starts_at_the_month_of_grid_connection(svc):
    """CZ-MG-01 is connected on 2025-03-17: a row of February 2025 is not read without
    ``from`` (nothing before the connection is paid), and is with ``from=2025-02``."""
    client, keys, _ = svc
    head = {"X-API-Key": keys["admin"]}
    rows = [{"timestamp": f"{t}:00+08:00", "battery_kw": 400.0, "grid_import_kw": 300.0}
            for t in ("2025-02-10T16:00", "2025-04-10T16:00")]
    r = client.post("/v1/sites/CZ-MG-01/measurements", headers=head, json={"rows": rows})
    assert r.status_code == 200, r.text
    at = "2025-05-01T00:00:00%2B08:00"
    got = client.get(f"/v1/sites/CZ-MG-01/subsidy-ledger?at={at}", headers=head).json()
    assert [(m["month"], m["in_window"]) for m in got["months"]] == [("2025-04", True)]
    got = client.get(f"/v1/sites/CZ-MG-01/subsidy-ledger?at={at}&from=2025-02",
                     headers=head).json()
    assert [(m["month"], m["in_window"]) for m in got["months"]] == [("2025-02", False),
                                                                      ("2025-04", True)]


def test_the_ledger_api_is_scoped_and_names_bad_months(svc):
    client, keys, _ = svc
    url = "/v1/sites/CZ-MG-04/subsidy-ledger"
    assert client.get(url, headers={"X-API-Key": keys["park3"]}).status_code == 403
    assert client.get(url).status_code == 401
    assert client.get("/v1/sites/CZ-MG-99/subsidy-ledger",
                      headers={"X-API-Key": keys["admin"]}).status_code == 404
    for query, name in (("from=2026-13", "from"), ("from=202608", "from"),
                        ("to=1999-12", "to")):
        r = client.get(f"{url}?{query}", headers={"X-API-Key": keys["ev"]})
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == [f"query.{name}"]
    r = client.get(f"{url}?from=2026-09&to=2026-08", headers={"X-API-Key": keys["ev"]})
    assert r.status_code == 422 and "from=2026-09" in r.text


# ------------------------------------------------------------------------ dashboard


def ledger_cells(html: str, site: str) -> dict[str, list[str]]:
    """The evaluator page's ledger rows of ``site``: month -> its 8 month cells as text
    (the first row also holds the site's cell)."""
    body = re.search(rf'<tbody data-site="{site}">(.*?)</tbody>', html, re.S).group(1)
    out = {}
    for month, row in re.findall(r'<tr class="ledger-month" data-month="([\d-]+)">(.*?)</tr>',
                                 body, re.S):
        out[month] = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", c)).strip()
                      for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)][-8:]
    return out


def test_the_evaluator_page_shows_the_ledger_in_both_languages(svc):
    from test_dashboard import login

    _, keys, app = svc
    page = login(app, keys["ev"]).get("/ui/evaluator?date=2026-12-01")
    assert page.status_code == 200 and 'id="no-ledger"' not in page.text
    rows = ledger_cells(page.text, "CZ-MG-04")
    assert list(rows) == ["2026-07", "2026-08"]
    assert rows["2026-07"][:7] == ["2026年7月", "否", "100.0", "0.0", "0.00", "0.00",
                                    "1 / 2,976"]
    assert rows["2026-08"][:7] == ["2026年8月", "是", "350.0", "150.0", "0.30", "45.00",
                                    "3 / 2,976"]
    assert "补贴期 2026年8月1日 至 2028年7月31日，剩余 20 个月" in page.text
    assert 'data-site="CZ-MG-03"' not in page.text  # no measurements: no rows
    en = login(app, keys["ev"], "en").get("/ui/evaluator?date=2026-12-01")
    assert "Subsidy [yuan]" in en.text and "Counted discharge [kWh]" in en.text
    assert ledger_cells(en.text, "CZ-MG-04")["2026-08"][:2] == ["Aug 2026", "yes"]
    # a park key sees its own sites only: CZ-MG-03 has no measurements, so the note
    park = login(app, keys["park3"]).get("/ui/evaluator?date=2026-12-01")
    assert 'data-site="CZ-MG-04"' not in park.text and 'id="no-ledger"' in park.text
    bad = login(app, keys["ev"]).get("/ui/evaluator?date=2026-13-01")
    assert bad.status_code == 422 and 'role="alert"' in bad.text


# ------------------------------------------------------------------------------ CLI


def test_vpp_ledger_prints_the_months_with_units_as_table_csv_and_json(tmp_path):
    import json

    from click.testing import CliRunner

    from service.cli import main

    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    csv_file = tmp_path / "m.csv"
    csv_file.write_text("timestamp,grid_import_kw,battery_kw\n" + "".join(
        f"{r['timestamp']},300,{r['battery_kw']}\n" for r in rows_of()), "utf-8")
    now = ["--db", url, "--now", "2026-12-01T08:00:00+08:00"]
    run = CliRunner().invoke
    r = run(main, ["measurements", "import", str(csv_file), "--site", "CZ-MG-04", *now])
    assert r.exit_code == 0, r.output
    r = run(main, ["ledger", "--site", "CZ-MG-04", *now])
    assert r.exit_code == 0, r.output
    assert "discharge [kWh]" in r.output and "subsidy [yuan]" in r.output
    assert "paid 2026-08-01 to 2028-07-31" in r.output
    assert "subsidy 45.00 yuan; 20 month(s) of the window left" in r.output
    r = run(main, ["ledger", "--site", "CZ-MG-04", "--format", "csv", *now])
    lines = r.output.splitlines()
    assert lines[0].startswith("site_id,month,in_window,complete,discharge_kwh,")
    assert lines[2].startswith("CZ-MG-04,2026-08,True,True,350.0,150.0,0.3,45.0,3,2976,")
    r = run(main, ["ledger", "--site", "CZ-MG-04", "--format", "json", "--from", "2026-08",
                   *now])
    assert [m["month"] for m in json.loads(r.output)["months"]] == ["2026-08"]
    r = run(main, ["ledger", "--site", "CZ-MG-04", "--from", "2026-8", *now])
    assert r.exit_code == 2 and "--from" in r.output
