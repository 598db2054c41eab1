/* DB Architect dashboard: draws the charts from the page's JSON and follows a running audit. */
(function () {
  "use strict";

  var STATUS_COLORS = {
    proposed: "#79aec8",
    approved: "#417690",
    applying: "#c98b00",
    applied: "#5b9e30",
    rejected: "#ba2121",
    superseded: "#a0a0a0",
  };
  // How often the progress endpoint is polled while an audit runs.
  var POLL_MS = 1500;

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function drawCharts(data) {
    if (typeof Chart === "undefined") {
      return;
    }
    var text = cssVar("--body-fg", "#333");
    var grid = cssVar("--hairline-color", "#e8e8e8");
    Chart.defaults.color = text;
    Chart.defaults.borderColor = grid;
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.maintainAspectRatio = false;

    new Chart(document.getElementById("dba-chart-status"), {
      type: "bar",
      data: {
        labels: data.byStatus.labels,
        datasets: [{
          label: "recommendations",
          data: data.byStatus.values,
          backgroundColor: data.byStatus.labels.map(function (s) { return STATUS_COLORS[s] || "#79aec8"; }),
        }],
      },
      options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });

    new Chart(document.getElementById("dba-chart-gain"), {
      type: "line",
      data: {
        labels: data.gain.labels,
        datasets: [
          { label: "estimated (planner cost)", data: data.gain.estimated, borderColor: "#79aec8", backgroundColor: "#79aec8", spanGaps: true, tension: 0.2 },
          { label: "measured (EXPLAIN ANALYZE)", data: data.gain.measured, borderColor: "#417690", backgroundColor: "#417690", spanGaps: true, tension: 0.2 },
        ],
      },
      options: {
        elements: { point: { radius: 4, hoverRadius: 6 } },
        scales: { y: { suggestedMin: 0, suggestedMax: 100, title: { display: true, text: "%" } } },
      },
    });

    new Chart(document.getElementById("dba-chart-confidence"), {
      type: "bar",
      data: {
        labels: data.confidence.labels,
        datasets: [{
          label: "recommendations",
          data: data.confidence.values,
          backgroundColor: data.confidence.labels.map(function (_, i) { return i >= 8 ? "#417690" : i >= 6 ? "#79aec8" : "#c4dce8"; }),
        }],
      },
      options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });

    new Chart(document.getElementById("dba-chart-slow"), {
      type: "bar",
      data: {
        labels: data.slowQueries.labels,
        datasets: [
          { label: "last week", data: data.slowQueries.lastWeek, backgroundColor: "#c4dce8" },
          { label: "now", data: data.slowQueries.now, backgroundColor: "#417690" },
        ],
      },
      options: {
        indexAxis: "y",
        plugins: { tooltip: { callbacks: { afterTitle: function (items) { return data.slowQueries.queries[items[0].dataIndex]; } } } },
        scales: { x: { beginAtZero: true, title: { display: true, text: "mean ms" } } },
      },
    });
  }

  function followAudit(box, auditId) {
    var url = box.dataset.urlTemplate.replace("00000000-0000-0000-0000-000000000000", auditId);
    function show(state) {
      box.textContent = "";
      var line = document.createElement("p");
      var badge = document.createElement("span");
      badge.className = "dba-badge dba-" + state.status;
      badge.textContent = state.status;
      line.appendChild(badge);
      var detail = " audit " + state.id.slice(0, 8);
      if (state.target) { detail += " of " + state.target; }
      if (state.exists) {
        detail += ": " + state.queries_collected + " queries collected, " + state.queries_analyzed +
          " analyzed, " + state.recommendations_count + " recommendation" + (state.recommendations_count === 1 ? "" : "s");
      } else if (!state.finished) {
        detail += ": waiting for a worker";
      }
      line.appendChild(document.createTextNode(detail));
      box.appendChild(line);
      if (state.error) {
        var error = document.createElement("p");
        error.className = "errornote";
        error.textContent = state.error;
        box.appendChild(error);
      }
      if (state.finished && state.report_url) {
        var links = document.createElement("p");
        var report = document.createElement("a");
        report.href = state.report_url;
        report.textContent = "Open the report";
        report.id = "dba-progress-report";
        var refresh = document.createElement("a");
        refresh.href = window.location.pathname;
        refresh.textContent = "Refresh the dashboard";
        links.appendChild(report);
        links.appendChild(document.createTextNode(" · "));
        links.appendChild(refresh);
        box.appendChild(links);
      }
    }
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error("progress: HTTP " + response.status); }
          return response.json();
        })
        .then(function (state) {
          show(state);
          if (!state.finished) { window.setTimeout(poll, POLL_MS); }
        })
        .catch(function (error) {
          box.textContent = String(error.message || error);
          window.setTimeout(poll, POLL_MS * 4);
        });
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var script = document.getElementById("dba-chart-data");
    if (script) { drawCharts(JSON.parse(script.textContent)); }
    var box = document.getElementById("dba-progress");
    if (box && box.dataset.follow) { followAudit(box, box.dataset.follow); }
  });
})();
