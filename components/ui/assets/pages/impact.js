// Impact: the signed-in user's carbon dashboard (seed 001's fields, overall
// and this month), their runs' grams against the run-now baseline over
// time, and the public ledger with its totals.

import { h } from "../vendor/preact.mjs";
import { useEffect, useState } from "../vendor/hooks.mjs";
import htm from "../vendor/htm.mjs";
import { Plot, threeDigits, uPlot } from "../chart.js";
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

/** Clean and dirty Wh of `entries`' completed runs per UTC day. */
export function energyByDay(entries) {
  const days = new Map();
  for (const r of entries) {
    if (r.run !== "completed") continue;
    const day = Math.floor(r.executed_at / 86400000) * 86400;
    const d = days.get(day) || [0, 0];
    d[0] += r.clean_wh || 0;
    d[1] += r.dirty_wh || 0;
    days.set(day, d);
  }
  const xs = [...days.keys()].sort((a, b) => a - b);
  return [xs, xs.map((x) => days.get(x)[0]), xs.map((x) => days.get(x)[1])];
}

/** Each completed run's deferral (hours waited for cleaner power), by run time. */
export function deferrals(entries) {
  const runs = entries.filter((e) => e.run === "completed").reverse();
  return [runs.map((r) => r.executed_at / 1000), runs.map((r) => (r.deferral_ms || 0) / 3600000)];
}

/** The time axis' range (s): the data's, at least an hour wide, so one run alone does not span years. */
export function xRange(xs) {
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  const pad = Math.max(0, 3600 - (hi - lo)) / 2;
  return [lo - pad, hi + pad];
}

function Chart({ id, title, yLabel, series, data, bars = false }) {
  const paths = bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined;
  return html`<${Plot} id=${id} title=${title} data=${data} options=${() => ({
    scales: {
      x: { time: true, auto: false, range: xRange(data[0]) },
      // From zero, with room above the highest value (and a unit range
      // when every value is zero).
      y: { range: (u, lo, hi) => [Math.min(0, lo), hi > 0 ? hi * 1.15 : 1] },
    },
    axes: [{}, { label: yLabel, size: 60, values: threeDigits }],
    series: [{}, ...series.map((s) => ({ width: 2, paths, ...s }))],
  })} />`;
}

function Charts({ mine }) {
  if (mine.length === 0) return html`<p class="muted">No completed runs yet to chart.</p>`;
  return html`
    <${Chart} id="chart-grams" data=${cumulative(mine)} yLabel="g CO₂"
      title="Your runs: grams CO₂ emitted vs. running at once at home (cumulative)"
      series=${[
        { label: "emitted", stroke: "#2e7d32" },
        { label: "run-now baseline", stroke: "#b26a00", dash: [6, 4] },
      ]} />
    <${Chart} id="chart-energy" data=${energyByDay(mine)} yLabel="Wh" bars=${true}
      title="Clean and dirty energy per day (Wh)"
      series=${[
        { label: "clean", stroke: "#2e7d32", fill: "rgba(46,125,50,.35)" },
        { label: "dirty", stroke: "#6d4c41", fill: "rgba(109,76,65,.35)" },
      ]} />
    <${Chart} id="chart-deferral" data=${deferrals(mine)} yLabel="hours"
      title="How long each run waited for cleaner power (hours)"
      series=${[{ label: "deferral", stroke: "#1565c0", points: { show: true } }]} />`;
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
            <${Charts} mine=${mine} />
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
        <div class="table-wrap"><table id="ledger-entries" class="cards">
          <thead><tr><th scope="col">When</th><th scope="col">Task</th><th scope="col">Node</th><th scope="col">Run</th>
            <th scope="col">Energy</th><th scope="col">Intensity</th><th scope="col">Emitted</th><th scope="col">Saved</th></tr></thead>
          <tbody>
            ${ledger.entries.slice(0, 50).map(
              (e) => html`<tr>
                <td data-label="When">${new Date(e.executed_at).toLocaleString()}</td><td data-label="Task"><code>${(e.task_id || "").slice(0, 10)}</code></td>
                <td data-label="Node"><code>${(e.to_node || "").slice(0, 10)}</code></td><td data-label="Run">${e.run}</td>
                <td class="num" data-label="Energy">${wh(e.energy_wh)}</td><td class="num" data-label="Intensity">${intensity(e.intensity_g_per_kwh)}</td>
                <td class="num" data-label="Emitted">${grams(e.emitted_g)}</td><td class="num" data-label="Saved">${grams(e.saved_g)}</td></tr>`,
            )}
          </tbody></table></div>`}
    </section>
    <p class="muted" id="signal">Every carbon figure here: ${(impact || ledger || {}).signal ||
      "average, location-based grid intensity (gCO₂/kWh)"}. Grams = Wh × g/kWh ÷ 1000.</p>`;
}
