/* The dashboard's little JS: ECharts charts from the data the page embeds, job progress
   polling, a busy note while a plan solves. No framework, no build step. */
"use strict";

function pageLang() { return document.body.dataset.lang === "en" ? "EN" : "ZH"; }

function readData(id) {
  var el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : null;
}

function initChart(id) {
  var el = document.getElementById(id);
  if (!el || typeof echarts === "undefined") return null;
  var chart = echarts.init(el, null, { locale: pageLang(), renderer: "canvas" });
  window.addEventListener("resize", function () { chart.resize(); });
  return chart;
}

function planChart() {
  var d = readData("plan-data");
  var chart = d && initChart("plan-chart");
  if (!chart) return null;
  var n = d.names;
  var bands = d.bands.map(function (b) {
    return [{ name: b.name, xAxis: b.from, itemStyle: { color: b.colour } }, { xAxis: b.to }];
  });
  var series = [
    { name: n.load, type: "line", step: "end", data: d.load_kw, symbol: "none", lineStyle: { width: 1.5, color: "#555" },
      markArea: { silent: true, label: { show: true, position: "insideTop", fontSize: 10, color: "#666" }, data: bands } },
    { name: n.pv_used, type: "line", step: "end", data: d.pv_used_kw, symbol: "none", areaStyle: { opacity: 0.25 }, color: "#e0a000" },
    { name: n.battery, type: "bar", data: d.battery_kw, color: "#3a7bd5", barCategoryGap: "0%" },
    { name: n.import, type: "line", step: "end", data: d.import_kw, symbol: "none", lineStyle: { width: 2.5 }, color: "#c0392b",
      markLine: { symbol: "none", data: [
        { name: n.peak_target, yAxis: d.peak_target_kw, lineStyle: { type: "dashed", color: "#c0392b" }, label: { formatter: n.peak_target + " {c} kW", position: "insideEndTop" } },
        { name: n.import_limit, yAxis: d.import_limit_kw, lineStyle: { type: "dotted", color: "#333" }, label: { formatter: n.import_limit + " {c} kW", position: "insideEndTop" } }] } }
  ];
  if (d.soc_pct) {
    series.push({ name: n.soc, type: "line", yAxisIndex: 1, data: d.soc_pct, symbol: "none", color: "#27ae60", lineStyle: { width: 2 } });
  }
  return powerChart(chart, d, series);
}

/* The plan's chart and plan against actual: power [kW] over the intervals, SOC [%] on the
   second axis, zoomable; returns what linkCharts needs. */
function powerChart(chart, d, series) {
  var n = d.names;
  chart.setOption({
    animation: false,
    tooltip: { trigger: "axis" },
    legend: { top: 0, type: "scroll" },  /* one line that scrolls on a narrow screen */
    grid: { left: 60, right: 60, top: 56, bottom: 60 },
    dataZoom: [{ type: "inside" }, { type: "slider", height: 18, bottom: 8 }],
    xAxis: { type: "category", data: d.labels, boundaryGap: false },
    yAxis: [{ type: "value", name: n.kw }, { type: "value", name: n.soc_axis, min: 0, max: 100, splitLine: { show: false } }],
    series: series
  });
  return { chart: chart, labels: d.labels };
}

/* Plan against actual: planned (dashed) and metered (solid) import, storage and PV power, SOC
   on the second axis; nulls (no data) break the lines. */
function actualChart() {
  var d = readData("actual-data");
  var chart = d && initChart("actual-chart");
  if (!chart) return null;
  var n = d.names;
  var series = [
    { name: n.planned_import, type: "line", step: "end", data: d.planned_import_kw, symbol: "none", color: "#c0392b", lineStyle: { type: "dashed", width: 1.5 } },
    { name: n.actual_import, type: "line", step: "end", data: d.actual_import_kw, symbol: "none", color: "#c0392b", lineStyle: { width: 2.5 } },
    { name: n.planned_battery, type: "line", step: "end", data: d.planned_battery_kw, symbol: "none", color: "#3a7bd5", lineStyle: { type: "dashed", width: 1.5 } },
    { name: n.actual_battery, type: "bar", data: d.actual_battery_kw, color: "#3a7bd5", barCategoryGap: "0%" }
  ];
  if (d.actual_pv_kw.some(function (v) { return v !== null; }) || d.planned_pv_kw.some(function (v) { return v !== null; })) {
    series.push({ name: n.planned_pv, type: "line", step: "end", data: d.planned_pv_kw, symbol: "none", color: "#e6a700", lineStyle: { type: "dashed", width: 1.5 } });
    series.push({ name: n.actual_pv, type: "line", step: "end", data: d.actual_pv_kw, symbol: "none", color: "#e6a700", lineStyle: { width: 2 } });
  }
  if (d.actual_soc_pct) {
    series.push({ name: n.planned_soc, type: "line", yAxisIndex: 1, data: d.planned_soc_pct, symbol: "none", color: "#27ae60", lineStyle: { type: "dashed", width: 1.5 } });
    series.push({ name: n.actual_soc, type: "line", yAxisIndex: 1, data: d.actual_soc_pct, symbol: "none", color: "#27ae60", lineStyle: { width: 2 } });
  }
  return powerChart(chart, d, series);
}

/* The plan's chart and plan against actual share their zoom and tooltip when they show
   the same intervals (a one-day plan). */
function linkCharts(a, b) {
  if (!a || !b || a.labels.length !== b.labels.length) return;
  for (var i = 0; i < a.labels.length; i++) { if (a.labels[i] !== b.labels[i]) return; }
  a.chart.group = b.chart.group = "site-day";
  echarts.connect("site-day");
}

function fleetChart() {
  var d = readData("fleet-data");
  var chart = d && initChart("fleet-chart");
  if (!chart) return;
  var n = d.names;
  var series = [
    { name: n.fleet_import, type: "line", step: "end", data: d.import_kw, symbol: "none", lineStyle: { width: 2.5 }, color: "#c0392b" },
    { name: n.pv_used, type: "line", step: "end", data: d.pv_used_kw, symbol: "none", areaStyle: { opacity: 0.2 }, color: "#e0a000" },
    { name: n.battery, type: "bar", data: d.battery_kw, color: "#3a7bd5" }
  ];
  if (d.env_up_kw) {
    series.push({ name: n.env_up, type: "line", step: "end", data: d.env_up_kw, symbol: "none", lineStyle: { type: "dashed" }, color: "#8e44ad" });
    series.push({ name: n.env_down, type: "line", step: "end", data: d.env_down_kw, symbol: "none", lineStyle: { type: "dashed" }, color: "#16a085" });
  }
  chart.setOption({
    animation: false, tooltip: { trigger: "axis" }, legend: { top: 0, type: "scroll" },
    grid: { left: 70, right: 30, top: 56, bottom: 60 },
    dataZoom: [{ type: "inside" }, { type: "slider", height: 18, bottom: 8 }],
    xAxis: { type: "category", data: d.labels, boundaryGap: false },
    yAxis: { type: "value", name: n.kw }, series: series
  });
}

function pollJobs() {
  document.querySelectorAll(".job[data-job]").forEach(function (row) {
    var st = row.dataset.status;
    if (st !== "queued" && st !== "running") return;
    var timer = setInterval(function () {
      fetch("/ui/jobs/" + row.dataset.job + "/status.json", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (j) {
          if (!j) { clearInterval(timer); return; }
          row.dataset.status = j.status;
          row.querySelectorAll(".status").forEach(function (e) { e.textContent = j.status_text; });
          row.querySelectorAll(".progress-text").forEach(function (e) { e.textContent = j.progress; });
          var bar = document.getElementById("job-bar");
          if (bar && j.fraction !== null) bar.value = j.fraction;
          if (j.status !== "queued" && j.status !== "running") {
            clearInterval(timer);
            if (row.dataset.reload) window.location.reload();
          }
        })
        .catch(function () { clearInterval(timer); });
    }, 1000);
  });
}

function busyForms() {
  var form = document.getElementById("plan-form");
  if (!form) return;
  form.addEventListener("submit", function () {
    var b = document.getElementById("plan-submit");
    if (b) b.disabled = true;
    form.querySelectorAll(".busy").forEach(function (e) { e.hidden = false; });
  });
}

/* A page sent back with errors: bring the first one into view and put the cursor in its
   field (or on the list of problems), so the user does not have to look for it. */
function focusFirstError() {
  var bad = document.querySelector(".field.bad input, .field.bad select, .field.bad textarea");
  var target = bad || document.querySelector(".problems");
  if (!target) return;
  target.scrollIntoView({ block: "center" });
  if (!bad) target.setAttribute("tabindex", "-1");
  target.focus({ preventScroll: true });
}

document.addEventListener("DOMContentLoaded", function () {
  linkCharts(planChart(), actualChart());
  fleetChart();
  pollJobs();
  busyForms();
  focusFirstError();
});
