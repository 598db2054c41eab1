/* Draws every <canvas data-dba-chart="ID"> from the chart spec in the JSON script #ID
   (dbarchitect.charts.ChartSpec: kind, labels, series, axis titles). Data only, no code. */
(function () {
  "use strict";

  var COLORS = ["#417690", "#79aec8", "#c98b00", "#5b9e30", "#ba2121", "#a0a0a0"];

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function axis(title) {
    return title ? { title: { display: true, text: title } } : {};
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.dbaChart);
    if (!source || typeof Chart === "undefined") {
      return;
    }
    var spec = JSON.parse(source.textContent);
    var line = spec.kind === "line";
    var datasets = spec.series.map(function (series, i) {
      var color = COLORS[i % COLORS.length];
      return {
        label: series.label,
        data: series.data,
        borderColor: color,
        backgroundColor: color,
        spanGaps: true,
        tension: 0,
      };
    });
    var options = {
      maintainAspectRatio: false,
      animation: false,
      indexAxis: spec.horizontal ? "y" : "x",
      plugins: { legend: { display: spec.series.length > 1 } },
      scales: {
        x: Object.assign({ beginAtZero: !line || spec.horizontal }, axis(spec.x_title)),
        y: Object.assign({ beginAtZero: !line }, axis(spec.y_title)),
      },
    };
    if (spec.extra && spec.extra.indexes) {
      options.plugins.tooltip = {
        callbacks: {
          afterLabel: function (item) { return spec.extra.indexes[item.dataIndex] + " indexes"; },
        },
      };
    }
    Chart.defaults.color = cssVar("--body-fg", "#333");
    Chart.defaults.borderColor = cssVar("--hairline-color", "#e8e8e8");
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    canvas.dbaChart = new Chart(canvas, {
      type: spec.kind,
      data: { labels: spec.labels, datasets: datasets },
      options: options,
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas[data-dba-chart]").forEach(draw);
  });
})();
