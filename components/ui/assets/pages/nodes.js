// My nodes: the signed-in operator's nodes, the runs each served, their
// energy and the credits earned.

import { h } from "../vendor/preact.mjs";
import { useEffect, useState } from "../vendor/hooks.mjs";
import htm from "../vendor/htm.mjs";
import { api } from "../api.js";
import { ago, credits, grams, intensity, percent, wh } from "../format.js";

const html = htm.bind(h);

function NodeCard({ node }) {
  const s = node.served;
  return html`<article class="node-card" data-node=${node.id} aria-labelledby=${`n-${node.id}`}>
    <h2 id=${`n-${node.id}`}>${node.name} <span class=${`status ${node.status}`}>${node.status}</span></h2>
    <p class="muted"><code>${node.id}</code>${` · ${node.region || "no region"} · last seen ${ago(node.last_seen)} · ${percent(
      node.energy.clean_share,
    )} clean at ${intensity(node.energy.carbon_intensity)} · reputation ${node.reputation ? node.reputation.value.toFixed(2) : "—"}`}</p>
    <dl class="figures">
      <div><dt>Runs served</dt><dd data-field="runs">${s.runs}</dd></div>
      <div><dt>Failed / interrupted</dt><dd>${s.failed_runs} / ${s.interrupted_runs}</dd></div>
      <div><dt>Energy</dt><dd data-field="energy_wh">${wh(s.energy_wh)}</dd></div>
      <div><dt>Emitted</dt><dd>${grams(s.emitted_g)}</dd></div>
      <div><dt>Earned (credits)</dt><dd data-field="credits_earned">${credits(s.credits_earned)}</dd></div>
    </dl>
    <p>Offers: ${node.capabilities.map((c) => html`<span class="cap">${c.name} ${credits(c.price)}</span> `)}</p>
    ${node.recent_runs.length > 0 &&
    html`<div class="table-wrap"><table class="cards">
      <thead><tr><th scope="col">When</th><th scope="col">Task</th><th scope="col">Run</th><th scope="col">Energy</th>
        <th scope="col">Intensity</th><th scope="col">Credits</th></tr></thead>
      <tbody>${node.recent_runs.map(
        (r) => html`<tr><td data-label="When">${r.executed_at ? new Date(r.executed_at).toLocaleString() : "—"}</td>
          <td data-label="Task"><code>${r.task_id.slice(0, 14)}</code></td><td data-label="Run">${r.run}</td><td class="num" data-label="Energy">${wh(r.energy_wh)}</td>
          <td class="num" data-label="Intensity">${intensity(r.intensity_g_per_kwh)}</td><td class="num" data-label="Credits">${credits(r.credits)}</td></tr>`,
      )}</tbody></table></div>`}
  </article>`;
}

export function Nodes({ user }) {
  const [mine, setMine] = useState(null);
  const [error, setError] = useState("");
  useEffect(() => {
    if (!user) return;
    let live = true;
    const load = () => api("/users/me/nodes").then((r) => live && (setMine(r), setError("")), (e) => live && setError(e.message));
    load();
    const timer = setInterval(load, 5000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [user]);
  if (!user) return html`<p>Sign in to see the nodes you operate.</p>`;
  if (!mine) return error ? html`<p class="error" role="alert">${error}</p>` : html`<p>Loading…</p>`;
  const t = mine.totals;
  return html`
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <dl class="figures" id="nodes-totals">
      <div><dt>Nodes</dt><dd data-field="nodes">${t.nodes}</dd></div>
      <div><dt>Runs served</dt><dd data-field="runs">${t.runs}</dd></div>
      <div><dt>Energy</dt><dd data-field="energy_wh">${wh(t.energy_wh)}</dd></div>
      <div><dt>Earned (credits)</dt><dd data-field="credits_earned">${credits(t.credits_earned)}</dd></div>
    </dl>
    ${mine.nodes.length === 0
      ? html`<p>You operate no node yet: run <code>greenmesh provide --token …</code> on a device.</p>`
      : mine.nodes.map((n) => html`<${NodeCard} key=${n.id} node=${n} />`)}`;
}
