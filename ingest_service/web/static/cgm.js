/* CGM charts with the vendored uPlot (static/VENDORED.md); data from the page itself
   (<script type="application/json" id="cgm-config">), never inline script (CSP).
   kind "agp": the ambulatory glucose profile, x = seconds after local midnight, series
   p5, p25, median, p75, p95 with the 5-95 % and 25-75 % bands filled between them.
   kind "day": one day's readings against the 3.9-10.0 mmol/L range. */
(function () {
  "use strict";

  function rangeLines(lines) {
    return {
      hooks: {
        draw: [function (u) {
          var ctx = u.ctx;
          var px = devicePixelRatio;
          var right = u.bbox.left + u.bbox.width;
          ctx.save();
          ctx.font = 12 * px + "px sans-serif";
          ctx.textAlign = "right";
          ctx.textBaseline = "bottom";
          ctx.strokeStyle = "#1b6e20";
          ctx.fillStyle = "#124d18";
          ctx.lineWidth = 1.5 * px;
          ctx.setLineDash([6 * px, 4 * px]);
          lines.forEach(function (line) {
            var y = u.valToPos(line.value, "y", true);
            ctx.beginPath();
            ctx.moveTo(u.bbox.left, y);
            ctx.lineTo(right, y);
            ctx.stroke();
            ctx.fillText(line.label, right - 4 * px, y - 3 * px);
          });
          ctx.restore();
        }]
      }
    };
  }

  function yRange(lines) {
    return function (u, min, max) {
      var values = lines.map(function (l) { return l.value; });
      var lo = Math.min.apply(null, values.concat(min === null ? [] : [min]));
      var hi = Math.max.apply(null, values.concat(max === null ? [] : [max]));
      return [Math.max(lo - 1, 0), hi + 1];
    };
  }

  function clock(seconds) {
    var h = Math.floor(seconds / 3600) % 24;
    var m = Math.floor((seconds % 3600) / 60);
    return (h < 10 ? "0" : "") + h + ":" + (m < 10 ? "0" : "") + m;
  }

  function agpOptions(config, width) {
    var labels = config.labels;
    var blue = "#0b4f8a";
    return {
      width: width,
      height: 320,
      scales: {
        x: { time: false, range: function () { return [0, 86400]; } },
        y: { range: yRange(config.lines) }
      },
      axes: [
        { stroke: "#222", grid: { stroke: "#ddd" }, ticks: { stroke: "#999" },
          splits: function () { var s = []; for (var h = 0; h <= 24; h += 3) { s.push(h * 3600); } return s; },
          values: function (u, splits) { return splits.map(clock); } },
        { stroke: "#222", grid: { stroke: "#ddd" }, ticks: { stroke: "#999" }, label: config.unit }
      ],
      series: [
        { label: config.time_label || "time", value: function (u, v) { return v === null ? "" : clock(v); } },
        { label: labels[0], stroke: blue, width: 1, dash: [2, 3] },
        { label: labels[1], stroke: blue, width: 1 },
        { label: labels[2], stroke: "#111", width: 3 },
        { label: labels[3], stroke: blue, width: 1 },
        { label: labels[4], stroke: blue, width: 1, dash: [2, 3] }
      ],
      bands: [
        { series: [5, 1], fill: "rgba(11, 79, 138, 0.15)" },
        { series: [4, 2], fill: "rgba(11, 79, 138, 0.35)" }
      ],
      plugins: [rangeLines(config.lines)]
    };
  }

  function dayOptions(config, width) {
    return {
      width: width,
      height: 280,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), config.zone); },
      scales: {
        x: { time: true, range: function () { return [config.start, config.end]; } },
        y: { range: yRange(config.lines) }
      },
      axes: [
        { stroke: "#222", grid: { stroke: "#ddd" }, ticks: { stroke: "#999" } },
        { stroke: "#222", grid: { stroke: "#ddd" }, ticks: { stroke: "#999" }, label: config.unit }
      ],
      series: [
        { label: config.time_label || "time" },
        { label: config.labels[0] + " (" + config.unit + ")", stroke: "#a3001b", width: 2,
          points: { show: config.data[0].length <= 100, size: 6 } }
      ],
      plugins: [rangeLines(config.lines)]
    };
  }

  function init() {
    var node = document.getElementById("cgm-config");
    var box = document.getElementById("cgm-chart");
    if (!node || !box || !window.uPlot) { return; }
    var config = JSON.parse(node.textContent);
    var width = Math.max(box.clientWidth, 280);
    var opts = config.kind === "agp" ? agpOptions(config, width) : dayOptions(config, width);
    var plot = new uPlot(opts, config.data, box);
    window.addEventListener("resize", function () {
      plot.setSize({ width: Math.max(box.clientWidth, 280), height: opts.height });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
