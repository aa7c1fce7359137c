/* Per-patient trend charts with the vendored uPlot (static/VENDORED.md).
   Data comes from the page itself (<script type="application/json" id="chart-config">),
   already downsampled by the server (raw, 5-min or 1-h means). */
(function () {
  "use strict";

  var COLOURS = ["#a3001b", "#0b4f8a", "#1b6e20", "#6a1b9a"];
  var DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3]];

  function targetLines(lines) {
    /* Dashed reference lines (targets, ranges, the 7-day mean) with their labels, drawn over
       the plot; a line with "from" starts at that time (a mean over the last days). */
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
          lines.forEach(function (line) {
            var y = u.valToPos(line.value, "y", true);
            var left = line.from ? Math.max(u.valToPos(line.from, "x", true), u.bbox.left) : u.bbox.left;
            ctx.strokeStyle = line.colour || "#333";
            ctx.fillStyle = line.colour || "#222";
            ctx.lineWidth = (line.from ? 2.5 : 1.5) * px;
            ctx.setLineDash(line.from ? [2 * px, 3 * px] : [6 * px, 4 * px]);
            ctx.beginPath();
            ctx.moveTo(left, y);
            ctx.lineTo(right, y);
            ctx.stroke();
            /* Means above their line, targets below theirs, so close values stay legible. */
            ctx.textBaseline = line.from ? "bottom" : "top";
            ctx.fillText(line.label, right - 4 * px, line.from ? y - 3 * px : y + 3 * px);
          });
          ctx.restore();
        }]
      }
    };
  }

  function draw(config, chart, bands) {
    var box = document.getElementById("chart-" + chart.id);
    if (!box) { return null; }
    var lines = (bands[chart.id] && bands[chart.id].lines) || [];
    var series = [{ label: config.time_label || "time" }];
    chart.metrics.forEach(function (metric, i) {
      /* The page gives each line's name in the viewer's language (chart.labels). */
      var name = (chart.labels && chart.labels[i]) || metric.replace("bp_", "");
      series.push({
        label: name + " (" + chart.unit + ")",
        stroke: COLOURS[i % COLOURS.length],
        dash: DASHES[i % DASHES.length],
        width: 2,
        spanGaps: true,
        points: { show: chart.data[0].length <= 100, size: 6 }
      });
    });
    var opts = {
      width: Math.max(box.clientWidth, 280),
      height: 260,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), config.zone); },
      scales: {
        x: { time: true, range: function () { return [config.start, config.end]; } },
        y: {
          range: function (u, min, max) {
            var values = lines.map(function (l) { return l.value; });
            if (min === null || max === null) { min = Math.min.apply(null, values); max = Math.max.apply(null, values); }
            var lo = Math.min.apply(null, values.concat([min]));
            var hi = Math.max.apply(null, values.concat([max]));
            var pad = Math.max((hi - lo) * 0.1, 1);
            return [lo - pad, hi + pad];
          }
        }
      },
      axes: [
        { stroke: "#222", grid: { stroke: "#ddd" }, ticks: { stroke: "#999" } },
        { stroke: "#222", grid: { stroke: "#ddd" }, ticks: { stroke: "#999" }, label: chart.unit }
      ],
      legend: { live: true },
      series: series,
      plugins: [targetLines(lines)]
    };
    return new uPlot(opts, chart.data, box);
  }

  function init() {
    var node = document.getElementById("chart-config");
    if (!node || !window.uPlot) { return; }
    var config = JSON.parse(node.textContent);
    var plots = config.charts.map(function (chart) { return draw(config, chart, config.bands); });
    window.addEventListener("resize", function () {
      plots.forEach(function (plot) {
        if (plot) { plot.setSize({ width: Math.max(plot.root.parentNode.clientWidth, 280), height: 260 }); }
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
