// The llmledger dashboard. Every figure is an exact decimal string from /api/usage, shown as is; the
// chart alone converts to Number (bar heights). Every label is set with textContent, never parsed as
// markup: user ids, models and projects are user-supplied text.
"use strict";

const token = new URLSearchParams(location.hash.slice(1)).get("token");
const $ = (id) => document.getElementById(id);
let chart = null;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function settings() {
  return {
    since: $("since").value, until: $("until").value, tz: $("tz").value.trim() || "UTC",
    currency: $("currency").value.trim().toUpperCase() || "USD", rate: $("rate").value.trim(),
  };
}

async function usage(params) {
  const s = settings();
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...s, ...params })) if (v !== "" && v !== undefined) q.set(k, v);
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const r = await fetch("api/usage?" + q.toString(), { headers });
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).message; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return r.json();
}

// Sorting key only: displayed costs are never rounded.
const costNum = (row) => Number(row.cost);
const byCostDesc = (a, b) => costNum(b) - costNum(a);

function csv(columns, rows) {
  const cell = (v) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  };
  return [columns.map(cell).join(","), ...rows.map((r) => columns.map((c) => cell(r[c])).join(","))].join("\n") + "\n";
}

function download(name, text) {
  const a = el("a");
  a.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
}

// A table of `rows` under `title`, with a CSV button; `onRow` makes rows clickable.
function table(container, title, columns, rows, onRow) {
  container.replaceChildren();
  const h = el("h3", title);
  const button = el("button", "CSV");
  button.type = "button";
  button.className = "csv";
  button.addEventListener("click", () => download(title.replace(/\W+/g, "-").toLowerCase() + ".csv", csv(columns, rows)));
  h.appendChild(button);
  container.appendChild(h);
  const t = el("table");
  const head = el("tr");
  for (const c of columns) head.appendChild(el("th", c));
  t.appendChild(el("thead")).appendChild(head);
  const body = el("tbody");
  for (const r of rows) {
    const tr = el("tr");
    for (const c of columns) tr.appendChild(el("td", r[c] === "" ? "(none)" : r[c]));
    if (onRow) {
      tr.className = "link";
      tr.addEventListener("click", () => onRow(r));
    }
    body.appendChild(tr);
  }
  t.appendChild(body);
  container.appendChild(t);
}

// Cost first after the label: the column a reader looks for, visible on a narrow screen.
const COLS = ["cost", "requests", "failed", "unpriced", "input_tokens", "output_tokens"];

async function totals() {
  const [row] = await usage({});
  const t = row || { cost: "0", currency: settings().currency, requests: 0, failed: 0, unpriced: 0, input_tokens: 0, output_tokens: 0 };
  $("total-cost").textContent = t.cost;
  $("total-currency").textContent = t.currency;
  $("total-requests").textContent = t.requests;
  $("total-failed").textContent = t.failed;
  $("total-unpriced").textContent = t.unpriced;
  $("total-input").textContent = t.input_tokens;
  $("total-output").textContent = t.output_tokens;
}

async function spendChart() {
  const period = $("period").value, stack = $("stack").value;
  const rows = await usage({ group_by: period + "," + stack });
  const periods = [...new Set(rows.map((r) => r[period]))].sort();
  const series = [...new Set(rows.map((r) => r[stack]))].sort();
  const datasets = series.map((name) => ({
    label: name === "" ? "(none)" : name,
    data: periods.map((p) => {
      const r = rows.find((x) => x[period] === p && x[stack] === name);
      return r ? Number(r.cost) : 0;
    }),
  }));
  if (chart) chart.destroy();
  chart = new Chart($("spend-chart"), {
    type: "bar",
    data: { labels: periods, datasets },
    options: {
      animation: false, maintainAspectRatio: false,
      scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: settings().currency } } },
    },
  });
}

async function tops() {
  for (const dim of ["user", "workspace", "project"]) {
    const rows = (await usage({ group_by: dim })).sort(byCostDesc).slice(0, 20);
    table($("top-" + dim), "Top " + dim + "s", [dim, ...COLS], rows, dim === "user" ? (r) => drill(r.user) : null);
  }
}

async function drill(user) {
  $("drill").hidden = false;
  $("drill-user").textContent = user === "" ? "(none)" : user;
  const models = (await usage({ user_id: user, group_by: "model", p95: "true" })).sort(byCostDesc);
  const cols = ["model", "cost", "requests", "successful", "failed", "input_tokens", "cache_read_tokens",
    "cache_write_tokens", "output_tokens", "reasoning_tokens", "avg_latency_ms", "p95_latency_ms"];
  table($("drill-models"), "Models", cols, models);
  const days = await usage({ user_id: user, group_by: "day" });
  table($("drill-days"), "Days", ["day", ...COLS], days);
}

async function unpriced() {
  const rows = (await usage({ group_by: "provider,model" })).filter((r) => r.unpriced > 0);
  table($("unpriced"), "Unpriced events", ["provider", "model", "requests", "unpriced"], rows);
}

async function refresh() {
  $("error").hidden = true;
  try {
    await totals();
    await Promise.all([spendChart(), tops(), unpriced()]);
    // Chart.js sizes its canvas on the next frame: ready once that frame is painted.
    await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
    document.body.dataset.ready = "true";
  } catch (e) {
    $("error").textContent = e.message;
    $("error").hidden = false;
  }
}

$("controls").addEventListener("submit", (ev) => { ev.preventDefault(); document.body.dataset.ready = ""; $("drill").hidden = true; refresh(); });
$("drill-close").addEventListener("click", () => { $("drill").hidden = true; });
refresh();
