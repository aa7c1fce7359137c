/* The ER board (docs/handoff.md): "last data N s ago" ticking every second and turning amber
   or red as the gap grows, live trend charts (vendored uPlot) fed by server-sent events,
   and the board/pre-alert parts reloaded by htmx when they change. No inline scripts (CSP). */
(function () {
  "use strict";

  var COLOURS = ["#a3001b", "#0b4f8a", "#1b6e20", "#6a1b9a"];
  var DASHES = [[], [8, 4]];
  var AMBER = 30;
  var RED = 120;
  /* Server clock minus browser clock, so ages do not depend on the ER PC's clock. */
  var skew = 0;

  /* Texts in the page's language: app.js reads them from #vs-messages (base.html). */
  var ENGLISH = {
    er_no_data_yet: "no data yet",
    er_last_data_s: "last data {n} s ago",
    er_last_data_min: "last data {n} min ago",
    er_last_data_h: "last data {n} h ago",
    js_reload_incidents: "Reload the page for new incidents.",
    js_board_updated: "The board was updated.",
    js_live_stopped: "Live updates stopped; reload the page.",
    js_reload_vitals: "Reload the page for new vitals.",
    js_prealerts_changed: "Pre-alerts or timeline changed.",
    er_no_value_short: "no value"
  };
  var given = null;

  function msg(key, values) {
    if (given === null) {
      given = {};
      try {
        var node = document.getElementById("vs-messages");
        if (node) { given = JSON.parse(node.textContent); }
      } catch (ignored) { given = {}; }
    }
    var text = given[key] || ENGLISH[key] || key;
    Object.keys(values || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(String(values[name]));
    });
    return text;
  }

  function say(text) {
    var status = document.getElementById("status");
    if (status) { status.textContent = text; }
  }

  function serverNow() { return Date.now() / 1000 + skew; }

  function ageText(age) {
    var s = Math.max(Math.floor(age), 0);
    if (s < 120) { return msg("er_last_data_s", { n: s }); }
    if (s < 7200) { return msg("er_last_data_min", { n: Math.floor(s / 60) }); }
    return msg("er_last_data_h", { n: Math.floor(s / 3600) });
  }

  function tick() {
    var nodes = document.querySelectorAll(".last-data[data-last-data]");
    Array.prototype.forEach.call(nodes, function (node) {
      var last = parseFloat(node.getAttribute("data-last-data"));
      var cls = "stale-none";
      if (isNaN(last)) {
        node.textContent = msg("er_no_data_yet");
      } else {
        var age = serverNow() - last;
        node.textContent = ageText(age);
        cls = age >= RED ? "stale-red" : age >= AMBER ? "stale-amber" : "stale-fresh";
      }
      node.classList.remove("stale-none", "stale-fresh", "stale-amber", "stale-red");
      node.classList.add(cls);
    });
  }

  function syncClock() {
    var node = document.querySelector("[data-now]");
    if (node) { skew = parseFloat(node.getAttribute("data-now")) - Date.now() / 1000; }
  }

  /* ------------------------------------------------------------------ the board */
  function liveBoard() {
    var table = document.querySelector("[data-live-board]");
    var note = document.getElementById("live-note");
    if (!table) { return; }
    if (!window.EventSource || !window.htmx) {
      if (note) { note.textContent = msg("js_reload_incidents"); }
      return;
    }
    var source = new EventSource(table.getAttribute("data-live-board"));
    source.addEventListener("incidents", function () {
      window.htmx.ajax("GET", "/er/rows", { target: "#er-rows", swap: "outerHTML" });
      say(msg("js_board_updated"));
    });
    source.addEventListener("lastdata", function (event) {
      var last = JSON.parse(event.data);
      Object.keys(last).forEach(function (incident) {
        var node = document.querySelector('.last-data[data-incident="' + incident + '"]');
        if (node) { node.setAttribute("data-last-data", String(last[incident])); }
      });
      tick();
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED && note) {
        note.textContent = msg("js_live_stopped");
      }
    };
  }

  /* -------------------------------------------------------------- one incident */
  function makeChart(config, chart) {
    var box = document.getElementById("chart-" + chart.id);
    if (!box || !window.uPlot) { return null; }
    var series = [{ label: config.timeLabel || "time" }];
    chart.metrics.forEach(function (metric, i) {
      series.push({
        label: (chart.labels ? chart.labels[i] : metric.replace("bp_", "")) + " (" + chart.unit + ")",
        stroke: COLOURS[i % COLOURS.length],
        dash: DASHES[i % DASHES.length],
        width: 2,
        spanGaps: true,
        points: { show: chart.data[0].length <= 60, size: 5 }
      });
    });
    var state = { chart: chart, rows: {}, plot: null };
    chart.data[0].forEach(function (t, i) {
      state.rows[t] = chart.metrics.map(function (_, m) { return chart.data[m + 1][i]; });
    });
    var opts = {
      width: Math.max(box.clientWidth, 280),
      height: 200,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), config.zone); },
      scales: {
        x: { time: true, range: function () { return [config.start, Math.max(serverNow(), config.now)]; } },
        y: {
          range: function (u, min, max) {
            if (min === null || max === null) { return [0, 1]; }
            var pad = Math.max((max - min) * 0.15, 2);
            return [min - pad, max + pad];
          }
        }
      },
      axes: [
        { stroke: "#222", grid: { stroke: "#ddd" }, ticks: { stroke: "#999" } },
        { stroke: "#222", grid: { stroke: "#ddd" }, ticks: { stroke: "#999" }, label: chart.unit }
      ],
      legend: { live: true },
      series: series
    };
    state.plot = new uPlot(opts, chart.data, box);
    return state;
  }

  function redraw(state) {
    var times = Object.keys(state.rows).map(parseFloat).sort(function (a, b) { return a - b; });
    var data = [times];
    state.chart.metrics.forEach(function (_, m) {
      data.push(times.map(function (t) { return state.rows[t][m]; }));
    });
    state.plot.setData(data);
  }

  function showLatest(metric, value, t, config) {
    var item = document.querySelector('.vital[data-metric="' + metric + '"]');
    if (!item) { return; }
    var valueNode = item.querySelector(".value");
    var whenNode = item.querySelector(".when");
    if (valueNode) {
      valueNode.textContent = value === null ? msg("er_no_value_short") : value >= 20 ? value.toFixed(0) : value.toFixed(1);
    }
    if (whenNode) {
      whenNode.textContent = new Date(t * 1000).toLocaleTimeString("en-GB", { timeZone: config.zone });
    }
  }

  function liveIncident() {
    var node = document.getElementById("chart-config");
    if (!node) { return; }
    var config = JSON.parse(node.textContent);
    var charts = config.charts.map(function (chart) { return makeChart(config, chart); })
      .filter(function (s) { return s !== null; });
    window.addEventListener("resize", function () {
      charts.forEach(function (s) {
        s.plot.setSize({ width: Math.max(s.plot.root.parentNode.clientWidth, 280), height: 200 });
      });
    });
    var side = document.querySelector("[data-live-incident]");
    var note = document.getElementById("live-note");
    if (!side) { return; }
    if (!window.EventSource) {
      if (note) { note.textContent = msg("js_reload_vitals"); }
      return;
    }
    var source = new EventSource(side.getAttribute("data-live-incident"));
    source.addEventListener("vitals", function (event) {
      var data = JSON.parse(event.data);
      skew = data.now - Date.now() / 1000;
      var touched = {};
      data.points.forEach(function (p) {
        var t = p[0], metric = p[1], value = p[2];
        showLatest(metric, value, t, config);
        charts.forEach(function (s) {
          var m = s.chart.metrics.indexOf(metric);
          if (m < 0 || value === null) { return; }
          if (!s.rows[t]) { s.rows[t] = s.chart.metrics.map(function () { return null; }); }
          s.rows[t][m] = value;
          touched[s.chart.id] = s;
        });
      });
      Object.keys(touched).forEach(function (id) { redraw(touched[id]); });
      var last = document.getElementById("last-data");
      if (last && data.lastData) { last.setAttribute("data-last-data", String(data.lastData)); }
      tick();
    });
    source.addEventListener("incident", function () {
      if (window.htmx) {
        window.htmx.ajax("GET", side.getAttribute("data-refresh"),
          { target: "#incident-live-part", swap: "outerHTML" });
        say(msg("js_prealerts_changed"));
      }
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED && note) {
        note.textContent = msg("js_live_stopped");
      }
    };
  }

  function init() {
    syncClock();
    tick();
    window.setInterval(tick, 1000);
    liveBoard();
    liveIncident();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
