// Replay: a `greenmesh simulate --export FILE` replay opened from disk
// (nothing is uploaded): the grid intensity of each region at full
// resolution, each job's start, and the grams saved against running at
// submission, a week at a time. Drag across a chart to zoom in; step week
// by week; or see the whole span. Both charts follow one time range.

import { h } from "../vendor/preact.mjs";
import { useEffect, useMemo, useRef, useState } from "../vendor/hooks.mjs";
import htm from "../vendor/htm.mjs";
import { Plot, threeDigits, uPlot } from "../chart.js";
import { grams, hours, percent } from "../format.js";

const html = htm.bind(h);
export const WEEK = 7 * 86400;
const COLOURS = ["#2e7d32", "#1565c0", "#6a1b9a", "#b26a00"];

const numbers = (a) => Array.isArray(a) && a.every((v) => typeof v === "number");

/** The replay in `text`, checked; an Error saying what is wrong otherwise. */
export function parseReplay(text) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error("That file is not JSON: export a replay with greenmesh simulate --export FILE.");
  }
  if (!doc || doc.format !== "greenmesh-replay/1") {
    throw new Error("That file is not a greenmesh replay (format greenmesh-replay/1, from greenmesh simulate --export FILE).");
  }
  const ok =
    Array.isArray(doc.intensity) &&
    doc.intensity.length > 0 &&
    doc.intensity.every((r) => numbers(r.t) && numbers(r.g_per_kwh) && r.t.length === r.g_per_kwh.length) &&
    numbers(doc.starts && doc.starts.t) &&
    numbers(doc.starts.g_per_kwh) &&
    numbers(doc.saved && doc.saved.t) &&
    numbers(doc.saved.cumulative_g) &&
    typeof doc.from === "number" &&
    typeof doc.to === "number";
  if (!ok) throw new Error("The replay is incomplete: its intensity, starts or saved series are missing or uneven.");
  return doc;
}

/** The first week of the span (or all of it, when shorter). */
export function firstWeek(doc) {
  return [doc.from, Math.min(doc.to, doc.from + WEEK)];
}

/** `view` moved by `weeks`, kept inside the span. */
export function shifted(doc, [from, to], weeks) {
  const width = Math.min(to - from, doc.to - doc.from);
  let start = from + weeks * WEEK;
  start = Math.max(doc.from, Math.min(start, doc.to - width));
  return [start, start + width];
}

const day = (s) => new Date(s * 1000).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });

export function Replay() {
  const [doc, setDoc] = useState(null);
  const [error, setError] = useState("");
  const [view, setView] = useState(null);
  const plots = useRef([]);
  const open = async (file) => {
    if (!file) return;
    try {
      const parsed = parseReplay(await file.text());
      plots.current = [];
      setDoc(parsed);
      setView(firstWeek(parsed));
      setError("");
    } catch (e) {
      setError(e.message);
    }
  };
  // Intensity lines and start markers on one time axis; the saving alone.
  const data = useMemo(() => {
    if (!doc) return null;
    const tables = doc.intensity.map((r) => [r.t, r.g_per_kwh]);
    tables.push([doc.starts.t, doc.starts.g_per_kwh]);
    return {
      intensity: uPlot.join(tables),
      saved: [doc.saved.t, doc.saved.cumulative_g],
    };
  }, [doc]);
  // Every chart shows `view`.
  useEffect(() => {
    if (!view) return;
    for (const p of plots.current) {
      if (p.scales.x.min !== view[0] || p.scales.x.max !== view[1]) p.setScale("x", { min: view[0], max: view[1] });
    }
  }, [view]);
  const onPlot = (plot) => {
    plots.current = [...plots.current.filter((p) => p.root.isConnected && p !== plot), plot];
    if (view) plot.setScale("x", { min: view[0], max: view[1] });
    // From now on its zooms are the user's (not its first auto range).
    plot.ready = true;
  };
  // A drag zoom on either chart becomes the view of both.
  const zoomed = (u, key) => {
    if (key !== "x" || u.scales.x.min == null) return;
    // What the chart shows, on its figure (for people's tools and tests).
    Object.assign(u.root.parentElement.dataset, { from: u.scales.x.min, to: u.scales.x.max });
    if (!u.ready) return;
    const next = [u.scales.x.min, u.scales.x.max];
    setView((old) => (old && old[0] === next[0] && old[1] === next[1] ? old : next));
  };
  const common = {
    cursor: {
      sync: { key: "replay" },
      // A double-click shows the whole replay (uPlot's own would show
      // only the extent of the clicked chart's data).
      bind: { dblclick: () => () => (setView([doc.from, doc.to]), null) },
    },
    // The view as asked: never widened to the data (x is not auto).
    scales: { x: { time: true, auto: false, range: (u, min, max) => [min, max] } },
    hooks: { setScale: [zoomed] },
  };
  const f = doc && doc.figures;
  return html`
    <p>Open a replay exported by <code>greenmesh simulate --carbon-trace TRACE.csv --export replay.json</code>.
      It stays in this browser: nothing is uploaded.</p>
    <label for="replay-file">Replay file</label>
    <input id="replay-file" type="file" accept=".json,application/json" onChange=${(e) => open(e.target.files[0])} />
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${doc &&
    html`<section id="replay" data-starts=${doc.starts.t.length} aria-labelledby="replay-h">
      <h2 id="replay-h">${doc.title}</h2>
      <dl class="figures" id="replay-figures">
        <div><dt>Jobs run</dt><dd data-field="finished">${f.finished} of ${f.jobs}</dd></div>
        <div><dt>Saved vs. run-now</dt><dd data-field="saving">${percent(f.saving)}</dd></div>
        <div><dt>Best possible (oracle)</dt><dd data-field="oracle_saving">${percent(f.oracle_saving)}</dd></div>
        <div><dt>Emitted</dt><dd>${grams(f.scheduled_g)} of ${grams(f.run_now_g)}</dd></div>
        <div><dt>Deadline misses</dt><dd data-field="deadline_misses">${f.deadline_misses}</dd></div>
        <div><dt>Mean deferral</dt><dd>${hours(f.mean_deferral_h)}</dd></div>
      </dl>
      <div class="toolbar">
        <button type="button" id="replay-prev" onClick=${() => setView(shifted(doc, view, -1))}>◀ Week before</button>
        <button type="button" id="replay-next" onClick=${() => setView(shifted(doc, view, 1))}>Week after ▶</button>
        <button type="button" class="secondary" id="replay-week" onClick=${() => setView(shifted(doc, [view[0], view[0] + WEEK], 0))}>One week</button>
        <button type="button" class="secondary" id="replay-all" onClick=${() => setView([doc.from, doc.to])}>Whole replay</button>
        <span id="replay-range" aria-live="polite" data-from=${view[0]} data-to=${view[1]}>${day(view[0])} – ${day(view[1])}</span>
      </div>
      <p class="muted">Drag across a chart to zoom in; double-click it to see everything.</p>
      <${Plot} id="chart-replay" title="Grid intensity (gCO₂/kWh) and each job's start" data=${data.intensity} onPlot=${onPlot}
        options=${() => ({
          ...common,
          axes: [{}, { label: "gCO₂/kWh", size: 60, values: threeDigits }],
          series: [
            {},
            ...doc.intensity.map((r, i) => ({ label: `${r.region} intensity`, stroke: COLOURS[i % COLOURS.length], width: 1.5 })),
            { label: "job starts", stroke: "#d81b60", paths: () => null, points: { show: true, size: 5, fill: "#d81b60" } },
          ],
        })} />
      <${Plot} id="chart-replay-saved" title="Grams CO₂ saved against running at submission (cumulative)" data=${data.saved}
        onPlot=${onPlot}
        options=${() => ({
          ...common,
          axes: [{}, { label: "g CO₂", size: 60, values: threeDigits }],
          series: [{}, { label: "saved", stroke: "#2e7d32", width: 2, paths: uPlot.paths.stepped({ align: 1 }) }],
        })} />
      <p class="muted">${doc.signal}; ${doc.job_minutes}-minute jobs at ${doc.power_w} W.</p>
    </section>`}`;
}
