// Impact: the signed-in user's carbon dashboard (seed 001's fields, overall
// and this month), their runs' grams against the run-now baseline over
// time, and the public ledger with its totals.

import { h } from "../vendor/preact.mjs";
import { useEffect, useRef, useState } from "../vendor/hooks.mjs";
import htm from "../vendor/htm.mjs";
import uPlot from "../vendor/uPlot.esm.js";
import { api } from "../api.js";
import { grams, hours, intensity, percent, wh } from "../format.js";

const html = htm.bind(h);

const FIELDS = [
  ["tasks_executed", "Tasks executed", (v) => v],
  ["carbon_saved_g", "Carbon saved", grams],
  ["carbon_emitted_g", "Carbon emitted", grams],
  ["energy_clean_wh", "Clean energy", wh],
  ["energy_dirty_wh", "Dirty energy", wh],
  ["renewable_share", "Renewable share", percent],
  ["average_deferral_h", "Average deferral", hours],
];

function Figures({ impact, id }) {
  return html`<dl class="figures" id=${id}>
    ${FIELDS.map(
      ([key, label, fmt]) => html`<div><dt>${label}</dt><dd data-field=${key}>${fmt(impact[key])}</dd></div>`,
    )}
  </dl>`;
}

/** Cumulative grams emitted and at the run-now baseline, by run time, for `entries` (newest first). */
export function cumulative(entries) {
  const runs = entries.filter((e) => e.run === "completed" && e.emitted_g != null).reverse();
  const xs = [], emitted = [], baseline = [];
  let e = 0, b = 0;
  for (const r of runs) {
    e += r.emitted_g;
    b += r.baseline_g_per_kwh == null ? r.emitted_g : (r.energy_wh * r.baseline_g_per_kwh) / 1000;
    xs.push(r.executed_at / 1000);
    emitted.push(e);
    baseline.push(b);
  }
  return [xs, emitted, baseline];
}

function Chart({ data }) {
  const box = useRef(null);
  useEffect(() => {
    if (!box.current || data[0].length === 0) return;
    const plot = new uPlot(
      {
        title: "Your runs: grams CO₂ emitted vs. running at once at home (cumulative)",
        width: Math.min(box.current.clientWidth || 600, 900),
        height: 260,
        // One run alone would span years: show at least an hour around it.
        scales: { x: { time: true, range: (u, min, max) => (max - min < 3600 ? [min - 1800, max + 1800] : [min, max]) } },
        axes: [{}, { label: "g CO₂", size: 60 }],
        series: [
          {},
          { label: "emitted", stroke: "#2e7d32", width: 2 },
          { label: "run-now baseline", stroke: "#b26a00", width: 2, dash: [6, 4] },
        ],
      },
      data,
      box.current,
    );
    return () => plot.destroy();
  }, [data]);
  return html`<figure class="chart" ref=${box} aria-label="Cumulative grams emitted against the run-now baseline"></figure>`;
}

export function Impact({ user }) {
  const [impact, setImpact] = useState(null);
  const [ledger, setLedger] = useState(null);
  const [error, setError] = useState("");
  useEffect(() => {
    api("/ledger?limit=500").then(setLedger, (e) => setError(e.message));
    if (user) api("/users/me/impact").then(setImpact, (e) => setError(e.message));
  }, [user]);
  const mine = ledger && user ? ledger.entries.filter((e) => e.from_user === user.id) : [];
  return html`
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <section aria-labelledby="mine">
      <h2 id="mine">Your impact</h2>
      ${!user
        ? html`<p>Sign in to see your own figures.</p>`
        : !impact
          ? html`<p>Loading…</p>`
          : html`
            <h3>All time</h3>
            <${Figures} impact=${impact} id="impact-all" />
            <h3>This month (UTC)</h3>
            <${Figures} impact=${impact.this_month} id="impact-month" />
            <p class="muted">${`${impact.tasks_deferred} task(s) waited an hour or more for cleaner power; ${impact.runs_interrupted} run(s) interrupted.`}</p>
            ${mine.length > 0 ? html`<${Chart} data=${cumulative(mine)} />` : html`<p class="muted">No completed runs yet to chart.</p>`}
          `}
    </section>
    <section aria-labelledby="ledger">
      <h2 id="ledger">Public ledger</h2>
      ${ledger &&
      html`
        <dl class="figures" id="ledger-totals">
          <div><dt>Runs completed</dt><dd data-field="runs">${ledger.totals.runs}</dd></div>
          <div><dt>Failed / interrupted</dt><dd>${ledger.totals.failed_runs} / ${ledger.totals.interrupted_runs}</dd></div>
          <div><dt>Delegations</dt><dd data-field="delegations">${ledger.totals.delegations}</dd></div>
          <div><dt>Energy</dt><dd data-field="energy_wh">${wh(ledger.totals.energy_wh)}</dd></div>
          <div><dt>Emitted</dt><dd data-field="emitted_g">${grams(ledger.totals.emitted_g)}</dd></div>
          <div><dt>Saved</dt><dd data-field="saved_g">${grams(ledger.totals.saved_g)}</dd></div>
        </dl>
        <div class="table-wrap"><table id="ledger-entries">
          <thead><tr><th scope="col">When</th><th scope="col">Task</th><th scope="col">Node</th><th scope="col">Run</th>
            <th scope="col">Energy</th><th scope="col">Intensity</th><th scope="col">Emitted</th><th scope="col">Saved</th></tr></thead>
          <tbody>
            ${ledger.entries.slice(0, 50).map(
              (e) => html`<tr>
                <td>${new Date(e.executed_at).toLocaleString()}</td><td><code>${(e.task_id || "").slice(0, 10)}</code></td>
                <td><code>${(e.to_node || "").slice(0, 10)}</code></td><td>${e.run}</td>
                <td class="num">${wh(e.energy_wh)}</td><td class="num">${intensity(e.intensity_g_per_kwh)}</td>
                <td class="num">${grams(e.emitted_g)}</td><td class="num">${grams(e.saved_g)}</td></tr>`,
            )}
          </tbody></table></div>`}
    </section>
    <p class="muted" id="signal">Every carbon figure here: ${(impact || ledger || {}).signal ||
      "average, location-based grid intensity (gCO₂/kWh)"}. Grams = Wh × g/kWh ÷ 1000.</p>`;
}
