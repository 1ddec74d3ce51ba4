// One chart per interface: pending value (a stock, left axis, line) and the value completed within each
// interval (a flow, right axis, bars), on a time axis in the portal's zone where a time without summaries
// shows as a gap; a single summary still draws a visible point.
"use strict";

import { showTime, timeZone } from "./lib.js";

const PREFERRED_CURRENCY = "EUR";
const charts = new Map();

// Points further apart than this many typical intervals leave a gap in the line.
const GAP_FACTOR = 2.5;

function typicalStep(xs) {
  const steps = xs.slice(1).map((x, i) => x - xs[i]).filter((d) => d > 0).sort((a, b) => a - b);
  return steps.length ? steps[Math.floor(steps.length / 2)] : null;
}

// The points with a null between two that are too far apart, so the line breaks there.
function withGaps(points, value) {
  const xs = points.map((p) => Date.parse(p.t));
  const step = typicalStep(xs);
  const data = [];
  points.forEach((p, i) => {
    if (i && step && xs[i] - xs[i - 1] > GAP_FACTOR * step) data.push({ x: (xs[i] + xs[i - 1]) / 2, y: null });
    data.push({ x: xs[i], y: Number(p[value]) });
  });
  return data;
}

function tickLabel(ms, spanMs) {
  const text = showTime(new Date(ms).toISOString());
  return spanMs > 36 * 3600 * 1000 ? text.slice(5, 16) : text.slice(11, 16); // MM-DD HH:MM over days, else HH:MM
}

function newChart(canvas) {
  return new Chart(canvas, {
    data: {
      datasets: [
        { type: "line", label: "pending (left)", data: [], yAxisID: "pending", borderColor: "#a86400", backgroundColor: "#a86400",
          pointRadius: 2.5, pointHoverRadius: 4, spanGaps: false, tension: 0 },
        { type: "bar", label: "completed in interval (right)", data: [], yAxisID: "completed", backgroundColor: "rgba(30, 123, 67, 0.55)",
          barThickness: 4, minBarLength: 1 },
      ],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      normalized: true,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 10 } },
        tooltip: { callbacks: { title: (items) => (items.length ? `${showTime(new Date(items[0].parsed.x).toISOString())} ${timeZone}` : "") } },
      },
      scales: {
        x: {
          type: "linear",
          title: { display: true, text: `time (${timeZone})` },
          ticks: { maxTicksLimit: 6, callback(value) { return tickLabel(value, this.max - this.min); } },
        },
        pending: { type: "linear", position: "left", beginAtZero: true, title: { display: true, text: "pending" } },
        completed: { type: "linear", position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, title: { display: true, text: "completed" } },
      },
    },
  });
}

export function renderCharts(series) {
  if (typeof Chart === "undefined") return;
  const container = document.getElementById("charts");
  const byInterface = new Map();
  for (const item of series) {
    if (!byInterface.has(item.interface)) byInterface.set(item.interface, new Map());
    byInterface.get(item.interface).set(item.currency, item.points);
  }
  for (const [code, currencies] of byInterface) {
    let entry = charts.get(code);
    if (!entry) {
      const box = document.createElement("div");
      box.className = "chart-box";
      box.dataset.interface = code;
      const title = document.createElement("h3");
      title.textContent = `${code} `;
      const select = document.createElement("select");
      select.className = "currency";
      select.setAttribute("aria-label", `currency of ${code}`);
      title.append(select);
      const holder = document.createElement("div");
      holder.className = "chart-canvas";
      const canvas = document.createElement("canvas");
      holder.append(canvas);
      box.append(title, holder);
      container.append(box);
      entry = { chart: newChart(canvas), select, currencies, drawn: "" };
      select.addEventListener("change", () => draw(entry));
      charts.set(code, entry);
    }
    entry.currencies = currencies;
    const known = [...entry.select.options].map((o) => o.value);
    for (const currency of [...currencies.keys()].sort()) {
      if (!known.includes(currency)) entry.select.append(new Option(currency, currency));
    }
    if (!known.length && currencies.has(PREFERRED_CURRENCY)) entry.select.value = PREFERRED_CURRENCY;
    draw(entry);
  }
}

function draw(entry) {
  const points = entry.currencies.get(entry.select.value) || [];
  const key = `${entry.select.value}:${points.length}:${points.length ? points[points.length - 1].t : ""}`;
  if (key === entry.drawn) return; // nothing new: the chart (and a tooltip being read) stays as it is
  entry.drawn = key;
  entry.chart.data.datasets[0].data = withGaps(points, "pending_value");
  entry.chart.data.datasets[1].data = points.map((p) => ({ x: Date.parse(p.t), y: Number(p.completed_value) }));
  const xs = points.map((p) => Date.parse(p.t));
  // One point alone still gets an axis around it (Chart.js would squeeze it to nothing).
  const pad = xs.length > 1 ? 0 : 30 * 60 * 1000;
  entry.chart.options.scales.x.min = xs.length ? Math.min(...xs) - pad : undefined;
  entry.chart.options.scales.x.max = xs.length ? Math.max(...xs) + pad : undefined;
  entry.chart.update("none");
}
