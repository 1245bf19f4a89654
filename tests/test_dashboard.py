"""The dashboard over HTTP (no browser): login and sessions, CSRF, scoping, forms derived
from the option schemas with localised errors, both languages, the vendored chart library.
The browser tests are in tests/test_dashboard_browser.py."""

from __future__ import annotations

import logging
import re
import tomllib
from itertools import pairwise
from json import loads as json_loads
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import create_key, revoke_key
from service.dashboard import HERE as DASHBOARD
from service.dashboard.routes import PlanForm, SimulationForm
from service.db import session_factory
from vpp.i18n import LOCALES, Translator

DATE = "2026-07-15"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory, empty_database):
    """An app with a park key for CZ-MG-01, one for CZ-MG-02, an evaluator and an admin; a
    plan of CZ-MG-02 stored through the API; on SQLite and PostgreSQL."""
    tmp = tmp_path_factory.mktemp("dash")
    url = empty_database(request.param, tmp)
    app = create_app(url, job_slots=0, simulations_dir=str(tmp / "sims"))
    with session_factory(app.state.engine)() as s:
        keys = {"park1": create_key(s, "park", ["CZ-MG-01"]),
                "park2": create_key(s, "park", ["CZ-MG-02"]),
                "ev": create_key(s, "evaluator"), "admin": create_key(s, "admin")}
    api = TestClient(app, raise_server_exceptions=False)
    r = api.post("/v1/plans", headers={"X-API-Key": keys["park2"]},
                 json={"site_id": "CZ-MG-02", "date": DATE})
    assert r.status_code == 201, r.text
    return app, keys, r.json()["id"]


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(app, key: str, lang: str | None = None) -> TestClient:
    c = TestClient(app, raise_server_exceptions=False)
    if lang:
        c.get(f"/ui/lang?to={lang}")
    page = c.get("/ui/login")
    r = c.post("/ui/login", data={"csrf": csrf_of(page.text), "api_key": key, "next": "/ui/"})
    assert r.status_code == 200 and r.url.path == "/ui/", r.text[:500]
    return c


def test_pages_need_a_session_and_login_sets_a_safe_cookie(world, caplog):
    app, keys, _ = world
    c = TestClient(app, raise_server_exceptions=False)
    r = c.get("/ui/sites/CZ-MG-01", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=/ui/sites/CZ-MG-01"
    assert c.get("/", follow_redirects=False).headers["location"] == "/ui/"
    page = c.get("/ui/login")
    assert 'type="password"' in page.text and 'method="post"' in page.text
    caplog.set_level(logging.DEBUG)
    r = c.post("/ui/login", data={"csrf": csrf_of(page.text), "api_key": keys["park1"],
                                  "next": "/ui/sites/CZ-MG-01"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/sites/CZ-MG-01"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("vpp_session="))
    low = cookie.lower()
    assert "httponly" in low and "samesite=lax" in low and "path=/ui" in low
    secret = keys["park1"].split("_", 2)[2]
    assert secret not in cookie and keys["park1"] not in r.headers["location"]
    page = c.get("/ui/sites/CZ-MG-01")
    assert page.status_code == 200 and keys["park1"] not in page.text
    assert all(secret not in rec.getMessage() for rec in caplog.records)


def test_login_refuses_bad_keys_and_forms_without_the_token(world):
    app, keys, _ = world
    c = TestClient(app, raise_server_exceptions=False)
    page = c.get("/ui/login")
    r = c.post("/ui/login", data={"csrf": csrf_of(page.text), "api_key": "vpp_dead_beef"})
    assert r.status_code == 401 and "API 密钥无效或已被撤销" in r.text
    assert "vpp_dead_beef" not in r.text  # never echoed
    r = c.post("/ui/login", data={"csrf": "forged", "api_key": keys["admin"]})
    assert r.status_code == 403 and "vpp_session" not in r.headers.get("set-cookie", "")
    fresh = TestClient(app, raise_server_exceptions=False)  # no login cookie at all
    r = fresh.post("/ui/login", data={"csrf": "x", "api_key": keys["admin"]})
    assert r.status_code == 403
    r = c.post("/ui/login", data={"csrf": csrf_of(page.text), "api_key": keys["admin"],
                                  "next": "https://evil.example/"}, follow_redirects=False)
    assert r.headers["location"] == "/ui/"  # no open redirect


def test_every_change_needs_the_session_csrf_token(world):
    app, keys, _ = world
    c = login(app, keys["park1"])
    r = c.post("/ui/sites/CZ-MG-01/plans", data={"date": DATE})
    assert r.status_code == 403 and "安全" in r.text
    r = c.post("/ui/sites/CZ-MG-01/plans", data={"date": DATE, "csrf": "forged"})
    assert r.status_code == 403
    ev = login(app, keys["ev"])
    for path in ("/ui/simulations", "/ui/vpp/fleet-plans", "/ui/logout"):
        assert ev.post(path, data={"start": "2025-07-01"}).status_code == 403, path
    assert ev.get("/ui/").status_code == 200  # still logged in: logout needed its token


def test_logout_and_revocation_end_the_session(world):
    app, _, _ = world
    with session_factory(app.state.engine)() as s:
        key = create_key(s, "park", ["CZ-MG-01"])
    c = login(app, key)
    page = c.get("/ui/")
    # signed-in pages are never cached: Back after logging out cannot show them
    assert page.headers["cache-control"] == "no-store"
    assert "no-store" not in c.get("/ui/login").headers.get("cache-control", "")
    r = c.post("/ui/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    assert c.get("/ui/", follow_redirects=False).status_code == 303
    c = login(app, key)
    with session_factory(app.state.engine)() as s:
        assert revoke_key(s, key.split("_")[1])
    assert c.get("/ui/", follow_redirects=False).status_code == 303


def test_a_park_key_sees_only_its_sites(world):
    app, keys, other_plan = world
    c = login(app, keys["park1"])
    page = c.get(f"/ui/?date={DATE}").text
    assert re.findall(r'data-site="([^"]+)"', page) == ["CZ-MG-01"]
    assert c.get("/ui/sites/CZ-MG-02").status_code == 403
    assert c.get(f"/ui/plans/{other_plan}.json").status_code == 404
    assert c.get(f"/ui/plans/{other_plan}.csv").status_code == 404
    r = c.post("/ui/sites/CZ-MG-02/plans", data={"csrf": csrf_of(page), "date": DATE})
    assert r.status_code == 403
    r = c.post("/ui/simulations", data={"csrf": csrf_of(page), "start": "2025-07-01"})
    assert r.status_code == 403
    vpp = c.get(f"/ui/vpp?date={DATE}").text
    assert "fleet-data" not in vpp  # CZ-MG-02's plan is not part of park 1's VPP view
    owner = login(app, keys["park2"])
    assert owner.get(f"/ui/plans/{other_plan}.json").json()["site_id"] == "CZ-MG-02"
    ev = login(app, keys["ev"])
    assert len(re.findall(r'data-site="', ev.get("/ui/").text)) == 30
    assert ev.get(f"/ui/plans/{other_plan}.csv").status_code == 200


def test_plan_form_is_derived_from_the_options_and_names_bad_fields(world):
    app, keys, _ = world
    c = login(app, keys["park1"])
    page = c.get(f"/ui/sites/CZ-MG-01?date={DATE}").text
    for name in PlanForm.model_fields:  # every option is an input of the form
        assert f'name="{name}"' in page, name
    assert re.search(r'name="days"[^>]*min="1"[^>]*max="7"', page)
    assert re.search(r'name="subsidy_rate_yuan_per_kwh"[^>]*max="0.3"', page)  # policy's max
    bad = {"csrf": csrf_of(page), "date": DATE, "days": "9", "mip_rel_gap": "abc",
           "subsidy_rate_yuan_per_kwh": "0.5", "soc_initial_frac": "\x00",
           "method": "simplex"}
    r = c.post("/ui/sites/CZ-MG-01/plans", data=bad)
    assert r.status_code == 422
    errors = dict(re.findall(r'data-field="([^"]+)">([^<]+)<', r.text))
    assert errors["days"] == "计划天数：超出允许范围 [1, 7] 天"
    assert errors["mip_rel_gap"].startswith("最优性间隙：应为数字")
    assert errors["subsidy_rate_yuan_per_kwh"] == "补贴标准：超出允许范围 [0, 0.3] 元/kWh"
    assert "不允许的字符" in errors["soc_initial_frac"]
    assert "auto, milp" in errors["method"]
    assert 'value="9"' in r.text  # the user's input is kept
    # the bad inputs are marked for assistive technology and point at their message
    assert re.search(r'name="days"[^>]*aria-invalid="true" aria-describedby="err-days"', r.text)
    assert 'id="err-days"' in r.text and 'name="date"' in r.text
    assert not re.search(r'name="date"[^>]*aria-invalid', r.text)
    en = login(app, keys["park1"], "en")
    r = en.post("/ui/sites/CZ-MG-01/plans", data={**bad, "csrf": csrf_of(en.get(
        "/ui/sites/CZ-MG-01").text)})
    errors = dict(re.findall(r'data-field="([^"]+)">([^<]+)<', r.text))
    assert errors["days"] == "Horizon: outside the allowed range [1, 7] days"
    # a fraction where a whole number is asked says so (it said "must be a number")
    r = c.post("/ui/sites/CZ-MG-01/plans", data={**bad, "days": "2.5"})
    errors = dict(re.findall(r'data-field="([^"]+)">([^<]+)<', r.text))
    assert errors["days"].startswith("计划天数：应为整数")
    r = c.get("/ui/sites/CZ-MG-01?date=2026-13-01")
    assert r.status_code == 422 and "日期应为 YYYY-MM-DD" in r.text


def test_plan_requested_from_the_form_is_stored_and_downloadable(world):
    app, keys, _ = world
    c = login(app, keys["park1"])
    page = c.get(f"/ui/sites/CZ-MG-01?date={DATE}").text
    r = c.post("/ui/sites/CZ-MG-01/plans", data={
        "csrf": csrf_of(page), "date": DATE, "subsidy_aware": "on", "month_peak_kw": "4000",
        "method": "auto", "pv_quantile": "p10", "days": "1"})
    assert r.status_code == 200 and r.url.path == "/ui/sites/CZ-MG-01", r.text[-800:]
    assert 'id="plan-chart"' in r.text and 'id="plan-data"' in r.text
    origin = re.search(r'id="plan-origin">(.*?)</p>', r.text, re.S).group(1)
    assert "由园区密钥生成" in origin and "仅针对本站点求解" in origin
    plan_id = re.search(r'href="/ui/plans/([0-9a-f-]+)\.json"', r.text).group(1)
    plan = c.get(f"/ui/plans/{plan_id}.json").json()
    assert plan["options"]["month_peak_kw"] == 4000 and plan["options"]["pv_quantile"] == "p10"
    csv = c.get(f"/ui/plans/{plan_id}.csv")
    assert csv.headers["content-type"].startswith("text/csv") and len(csv.text.splitlines()) == 97


def test_hostile_inputs_never_give_a_server_error(world):
    app, keys, _ = world
    c = login(app, keys["admin"])
    token = csrf_of(c.get("/ui/").text)
    probes = [("get", "/ui/?date=%00"), ("get", "/ui/sites/..%2F..%2Fetc"),
              ("get", "/ui/sites/CZ-MG-99"), ("get", "/ui/simulations/nope"),
              ("get", "/ui/jobs/nope/status.json"), ("get", "/ui/lang?to=xx&next=//evil"),
              ("get", "/ui/vpp?date=1999-01-01"), ("get", "/ui/plans/x.json")]
    for method, path in probes:
        assert c.request(method, path).status_code < 500, path
    forms = [("/ui/simulations", {"start": "2025-07-01", "months": "1e400", "sites": "X"}),
             ("/ui/simulations", {"start": "1999-01-01", "days": "-1", "seed": "1.5"}),
             ("/ui/vpp/fleet-plans", {"date": DATE, "events": "{not json"}),
             ("/ui/vpp/fleet-plans", {"date": DATE, "events": '[{"id": 1}]'}),
             ("/ui/sites/CZ-MG-01/plans", {"date": "x" * 5000, "days": "1\x00"})]
    for path, data in forms:
        r = c.post(path, data={"csrf": token, **data})
        assert r.status_code in (403, 404, 422), (path, r.status_code, r.text[-500:])
    raw = f"csrf={token}&date=2026-07-15&days=%ED%A0%80&mip_rel_gap=%FF".encode()
    r = c.post("/ui/sites/CZ-MG-01/plans", content=raw,
               headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422, r.text[-500:]  # bytes that are not UTF-8
    r = c.post("/ui/simulations", data={"csrf": token, "start": "2025-07-01", "days": "2",
                                        "sites": "CZ-MG-99"})
    assert r.status_code == 422 and "CZ-MG-99" in r.text


def test_both_languages_label_sites_numbers_and_units(world):
    app, keys, _ = world
    zh = login(app, keys["ev"]).get(f"/ui/?date={DATE}")
    assert '<html lang="zh-CN">' in zh.text and "新北高新区北区" in zh.text
    assert "站点总览" in zh.text and "[元]" in zh.text and "2026年7月15日" in zh.text
    en = login(app, keys["ev"], "en").get(f"/ui/?date={DATE}")
    assert '<html lang="en">' in en.text and "Xinbei High-Tech Park North" in en.text
    assert "新北高新区北区" not in en.text and "[yuan]" in en.text and "July 15, 2026" in en.text


def test_catalogues_cover_every_key_and_option_in_both_languages():
    for folder in (LOCALES, DASHBOARD / "locales"):
        zh = Translator("zh-CN", (folder,)).words
        en = Translator("en", (folder,)).words
        assert set(zh) == set(en), set(zh) ^ set(en)
    for model in (PlanForm, SimulationForm):
        for name in model.model_fields:
            for lang in ("zh-CN", "en"):
                assert f"option.{name}.label" in Translator(lang).words, (lang, name)
    data = tomllib.loads((LOCALES / "zh-CN.toml").read_text(encoding="utf-8"))
    assert data["unit"]["yuan"] == "元"


def test_charts_come_from_the_package_not_a_cdn(world):
    app, keys, _ = world
    c = login(app, keys["ev"])
    js = c.get("/ui/static/echarts/echarts.min.js")
    assert js.status_code == 200 and len(js.content) > 500_000
    assert "Apache License" in (DASHBOARD / "static/echarts/LICENSE").read_text()
    for path in ("/ui/", f"/ui/sites/CZ-MG-02?date={DATE}", "/ui/vpp", "/ui/simulations",
                 "/ui/evaluator"):
        html = c.get(path).text
        assert not re.search(r'(src|href)="(https?:)?//', html), path
    assert Path(DASHBOARD / "static/echarts/NOTICE").is_file()


#: Every dashboard route and who may use it; the test fails for a route without a rule.
DASH_RULES = {
    ("GET", "/ui/login"): "public", ("POST", "/ui/login"): "public (form token)",
    ("GET", "/ui/lang"): "public", ("POST", "/ui/logout"): "session",
    ("GET", "/ui/"): "session", ("GET", "/ui/sites/{site_id}"): "session: read-site",
    ("POST", "/ui/sites/{site_id}/plans"): "session: plan-site",
    ("GET", "/ui/plans/{plan_id}.json"): "session: read-plan",
    ("GET", "/ui/plans/{plan_id}.csv"): "session: read-plan",
    ("GET", "/ui/vpp"): "session", ("POST", "/ui/vpp/fleet-plans"): "session: evaluator-or-admin",
    ("GET", "/ui/simulations"): "session",
    ("POST", "/ui/simulations"): "session: evaluator-or-admin",
    ("GET", "/ui/simulations/{job_id}"): "session: read-job",
    ("POST", "/ui/simulations/{job_id}/cancel"): "session: job-owner-or-admin",
    ("GET", "/ui/simulations/{job_id}/files/{name}"): "session: read-job",
    ("GET", "/ui/jobs/{job_id}/status.json"): "session: read-job",
    ("GET", "/ui/evaluator"): "session",
}


def test_every_dashboard_route_has_a_rule_and_needs_a_session(world):
    app, _, plan_id = world
    from service.dashboard.routes import router

    routes = {(m, r.path) for r in router.routes for m in r.methods if m != "HEAD"}
    assert routes == set(DASH_RULES)
    c = TestClient(app, raise_server_exceptions=False)
    for (method, path), rule in DASH_RULES.items():
        if not rule.startswith("session"):
            continue
        url = (path.replace("{site_id}", "CZ-MG-01").replace("{plan_id}", plan_id)
               .replace("{job_id}", "x").replace("{name}", "report.md"))
        r = c.request(method, url, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login"), url


def test_vpp_page_shows_the_days_finished_fleet_plan_events_and_settlement(world):
    """A fleet-plan job as the runner stores it (its request as params), finished with an
    event and a settlement: the VPP page of its day shows both, other days do not."""
    import json

    from service.db import JobRecord
    from service.schemas import FleetPlanRequest

    app, keys, _ = world
    req = FleetPlanRequest.model_validate({"date": DATE})
    job = app.state.jobs.submit("fleet-plan", req.model_dump(mode="json"), None)
    event = {"id": "DR-test", "type": "peak_shaving", "start": f"{DATE}T17:00:00+08:00",
             "end": f"{DATE}T19:00:00+08:00", "requested_kw": 5000.0, "delivered_kwh": 9000.0,
             "shortfall_kwh": 1000.0, "compensation_yuan": 27000.0,
             "shortfall_penalty_yuan": 5000.0}
    cols = ["delivered [kWh]", "compensation [yuan]", "baseline cost [yuan]",
            "event plan cost [yuan]", "extra cost [yuan]", "net benefit [yuan]"]
    settlement = {"CZ-MG-01": dict(zip(cols, [9000.0, 27000.0, 1.0, 2.0, 1.0, 26999.0],
                                       strict=True)),
                  "TOTAL": dict(zip(cols, [9000.0, 27000.0, 1.0, 2.0, 1.0, 26999.0],
                                    strict=True))}
    with session_factory(app.state.engine)() as s:
        rec = s.get(JobRecord, job.id)
        rec.status, rec.progress = "done", "done"
        rec.result = json.dumps({"events": [event], "settlement": settlement, "plans": {}})
        s.commit()
    c = login(app, keys["ev"])
    page = c.get(f"/ui/vpp?date={DATE}").text
    assert "DR-test" in page and "27,000" in page and "新北高新区北区" in page
    assert 'class="total"' in page
    assert "DR-test" not in c.get("/ui/vpp?date=2026-07-16").text
    assert "DR-test" not in login(app, keys["park1"]).get(f"/ui/vpp?date={DATE}").text


def test_plan_chart_tariff_bands_meet_at_the_period_boundaries():
    """CZ-MG-01 on 2026-07-15 (`vpp tariff --date 2026-07-15`): valley 00:00-06:00, flat
    06:00-11:00, valley 11:00-13:00, flat 13:00-14:00, critical peak 14:00-15:00, peak
    15:00-19:30, critical peak 19:30-21:30, peak 21:30-22:00, flat 22:00-24:00. Each band
    ends on the axis point where the next one starts (the chart used to stop every band one
    interval early, leaving white gaps at 05:45-06:00, 12:45-13:00, ...), the last at the
    axis' end."""
    import datetime as dt

    from service.dashboard import views
    from service.dashboard.routes import LOCALES as DASH_LOCALES
    from vpp.catalog import default_catalog
    from vpp.planning import plan_site

    plan = plan_site(default_catalog(), "CZ-MG-01", dt.date(2026, 7, 15))
    chart = views.plan_chart(plan, Translator("en", (DASH_LOCALES,)))
    labels, bands, periods = chart["labels"], chart["bands"], plan["inputs"]["period"]
    assert len(labels) == 96
    assert bands[0]["from"] == "00:00" and bands[-1]["to"] == "23:45"
    for a, b in pairwise(bands):
        assert a["to"] == b["from"]
    starts = [labels[i] for i in range(1, 96) if periods[i] != periods[i - 1]]
    assert [b["from"] for b in bands[1:]] == starts
    assert starts == ["06:00", "11:00", "13:00", "14:00", "15:00", "19:30", "21:30", "22:00"]


def test_vpp_events_box_takes_its_own_example_and_names_a_lone_events_fields(world):
    """The events box's placeholder is a valid event list; one event object sent without
    the list is read as that event (it used to queue a fleet plan without any event): with
    ``start`` missing and ``requested_kw`` instead of ``requested_mw`` it is refused, 422,
    naming both fields."""
    from vpp.network import EventFile

    app, keys, _ = world
    c = login(app, keys["ev"], "en")
    page = c.get(f"/ui/vpp?date={DATE}").text
    example = re.search(r"placeholder='(\[.*?\])'", page).group(1)
    assert EventFile.model_validate({"events": json_loads(example)}).events[0].requested_mw == 3
    lone = ('{"id": "DR-1", "type": "peak_shaving", "end": "2026-07-15T19:00", '
            '"requested_kw": 3000}')
    r = c.post("/ui/vpp/fleet-plans", data={"csrf": csrf_of(page), "date": DATE,
                                            "events": lone})
    assert r.status_code == 422
    assert "events.0.start" in r.text and "events.0.requested_mw" in r.text


def test_a_plan_made_in_a_vpp_day_says_so_on_the_site_page(world):
    """The site page shows the newest plan of the day, whoever made it: one solved in the
    evaluator's VPP day (jointly with 29 sites, answering event DR-1) says so, with the
    key's role, instead of passing for the park's own plan."""
    import datetime as dt
    import json
    import uuid

    from service.db import ApiKey, PlanRecord
    from vpp.catalog import default_catalog
    from vpp.planning import plan_site

    app, keys, _ = world
    plan = plan_site(default_catalog(), "CZ-MG-01", dt.date(2026, 7, 20))
    plan["id"] = str(uuid.uuid4())
    plan["coupling"] = {"solved_with": [f"CZ-MG-{i:02d}" for i in range(2, 31)],
                        "events": [{"id": "DR-1"}]}
    with session_factory(app.state.engine)() as db:
        ev = db.query(ApiKey).filter(ApiKey.role == "evaluator").first()
        db.add(PlanRecord(id=plan["id"], site_id="CZ-MG-01", start_date="2026-07-20",
                          created_by=ev.id, body=json.dumps(plan)))
        db.commit()
    page = login(app, keys["park1"], "en").get("/ui/sites/CZ-MG-01?date=2026-07-20").text
    origin = re.sub(r"\s+", " ", re.search(r'id="plan-origin">(.*?)</p>', page, re.S).group(1))
    assert "with a key of role Evaluator, jointly" in origin
    assert "jointly with 29 other sites" in origin and "Demand-response events: DR-1." in origin


def test_the_simulation_forms_defaults_are_what_an_empty_field_means(world):
    """The simulations form shows a year of day-ahead control; emptying the months field
    still means that year (it meant the API's 24 months, a run twice as long as the page
    said), and the queued job holds months 12 and day-ahead control."""
    import json

    from service.db import JobRecord

    app, keys, _ = world
    c = login(app, keys["ev"], "en")
    page = c.get("/ui/simulations").text
    assert re.search(r'name="months" value="12"', page)
    assert re.search(r'<option value="day-ahead" selected>', page)
    r = c.post("/ui/simulations", data={"csrf": csrf_of(page), "start": "2025-07-01",
                                        "months": "", "control": "day-ahead",
                                        "sites[]": "CZ-MG-02"}, follow_redirects=False)
    assert r.status_code == 303, r.text[-500:]
    job_id = r.headers["location"].rsplit("/", 1)[1]
    with session_factory(app.state.engine)() as db:
        params = json.loads(db.get(JobRecord, job_id).params)
    assert params["months"] == 12 and params["control"] == "day-ahead", params
    # the job's page has a cancel button for the key that started it, not for another
    # evaluator; it cancels the job (it could only be cancelled through the API)
    job_page = c.get(f"/ui/simulations/{job_id}").text
    assert 'id="cancel-job"' in job_page
    with session_factory(app.state.engine)() as s:
        other = create_key(s, "evaluator")
    c2 = login(app, other, "en")
    assert 'id="cancel-job"' not in c2.get(f"/ui/simulations/{job_id}").text
    r = c2.post(f"/ui/simulations/{job_id}/cancel", data={"csrf": csrf_of(c2.get(
        "/ui/simulations").text)}, follow_redirects=False)
    assert r.status_code == 403
    r = c.post(f"/ui/simulations/{job_id}/cancel", data={"csrf": csrf_of(job_page)})
    assert r.status_code == 200 and r.url.path == f"/ui/simulations/{job_id}"
    with session_factory(app.state.engine)() as db:
        assert db.get(JobRecord, job_id).status == "cancelled"
    assert 'id="cancel-job"' not in r.text


def test_a_rule_across_fields_is_listed_without_a_stray_colon(world):
    """A simulation whose period runs past the supported dates fails a rule of the whole
    request, not of one field: its message is listed as it is (it read ': Value error,
    the simulated period ends ...')."""
    app, keys, _ = world
    c = login(app, keys["ev"], "en")
    page = c.get("/ui/simulations").text
    r = c.post("/ui/simulations", data={"csrf": csrf_of(page), "start": "2099-12-01",
                                        "months": "12", "control": "day-ahead"})
    assert r.status_code == 422
    items = re.findall(r'<div class="problems" role="alert">.*?<ul>(.*?)</ul>', r.text, re.S)
    listed = re.findall(r"<li>(.*?)</li>", items[0], re.S) if items else []
    errors = dict(re.findall(r'data-field="([^"]+)">([^<]+)<', r.text))
    shown = listed + list(errors.values())
    assert shown, r.text[-1500:]
    assert not any(t.strip().startswith(":") or "Value error," in t for t in shown), shown


def test_percentages_never_show_minus_zero():
    """A peak reduction of -0.0004 % is shown as 0.0 % (it read -0.0%), a certified gap of
    1.93e-07 as a percentage, and real negatives keep their sign."""
    from vpp.i18n import LOCALES as CORE

    en = Translator("en", (CORE,))
    assert en.pct(-4e-6, 1) == "0.0%" and en.pct(1.93e-07, 4) == "0.0000%"
    assert en.pct(-0.012, 1) == "-1.2%" and en.pct(0.00098, 4) == "0.0980%"


def test_the_evaluator_chooses_which_finished_simulation_is_graded(world):
    """Two finished simulations (a one-site July run, then a two-site one): the page grades
    the newest and lists both with their period, sites and control; ?sim= picks the older
    (it could only follow whichever finished last); an unknown id says so."""
    import csv
    import datetime as dt
    import io

    from service.db import JobFile, JobRecord
    from vpp.catalog import default_catalog
    from vpp.sim_report import load_indicators

    app, keys, _ = world
    keys_ = [ind.key for ind in load_indicators(default_catalog())]

    def finished(sites: list[str], start: str, value: float, at: dt.datetime) -> str:
        job = app.state.jobs.submit("simulation", {"request": {
            "start": start, "months": 1, "sites": sites, "control": "day-ahead"}}, None)
        buf = io.StringIO()
        w = csv.DictWriter(buf, ["site_id", "subsidy_yuan", *keys_])
        w.writeheader()
        for s in sites:
            w.writerow({"site_id": s, "subsidy_yuan": 100.0, **dict.fromkeys(keys_, value)})
        with session_factory(app.state.engine)() as s:
            rec = s.get(JobRecord, job.id)
            rec.status, rec.progress, rec.finished_at = "done", "done", at
            s.add(JobFile(job_id=job.id, name="sites.csv", media_type="text/csv",
                          content=buf.getvalue().encode()))
            s.commit()
        return job.id

    old = finished(["CZ-MG-02"], "2025-07-01", 0.5, dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    new = finished(["CZ-MG-01", "CZ-MG-03"], "2025-08-01", 0.01,
                   dt.datetime(2030, 1, 2, tzinfo=dt.UTC))
    c = login(app, keys["ev"], "en")
    page = c.get("/ui/evaluator").text
    assert re.findall(r'<tr data-site="([^"]+)">', page) == ["CZ-MG-01", "CZ-MG-03"]
    options = dict(re.findall(r'<option value="([0-9a-f-]+)" (?:selected)?>([^<]+)<', page))
    assert options[new].startswith(f"{new[:8]}: from 2025-08-01, 1 month(s), 2 site(s), "
                                   "day-ahead control")
    assert re.search(rf'<option value="{new}" selected>', page)
    picked = c.get(f"/ui/evaluator?sim={old}").text
    assert re.findall(r'<tr data-site="([^"]+)">', picked) == ["CZ-MG-02"]
    assert re.search(rf'<option value="{old}" selected>', picked)
    nope = c.get("/ui/evaluator?sim=nope").text
    assert 'id="unknown-sim"' in nope
    assert 'id="no-simulation"' not in nope  # "none finished yet" contradicted the list
