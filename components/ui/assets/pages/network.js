// The network: every node with its region, energy, liveness, offers and
// reputation, filterable, refreshed every few seconds.

import { h } from "../vendor/preact.mjs";
import { useEffect, useState } from "../vendor/hooks.mjs";
import htm from "../vendor/htm.mjs";
import { api } from "../api.js";
import { ago, credits, intensity, percent } from "../format.js";

const html = htm.bind(h);
const REFRESH_MS = 5000;

/** Whether `node` matches the filter text (name, region or capability) and status. */
export function matches(node, text, status) {
  if (status !== "all" && node.status !== status) return false;
  const t = text.trim().toLowerCase();
  if (!t) return true;
  return [node.name, node.region, node.id, ...node.capabilities.map((c) => c.name)]
    .some((s) => (s || "").toLowerCase().includes(t));
}

export function Network() {
  const [nodes, setNodes] = useState(null);
  const [error, setError] = useState("");
  const [text, setText] = useState("");
  const [status, setStatus] = useState("all");
  const [updated, setUpdated] = useState(0);
  useEffect(() => {
    let live = true;
    const load = () =>
      api("/nodes").then(
        (r) => live && (setNodes(r.nodes), setError(""), setUpdated(Date.now())),
        (e) => live && setError(e.message),
      );
    load();
    const timer = setInterval(load, REFRESH_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, []);
  if (!nodes) return error ? html`<p class="error" role="alert">${error}</p>` : html`<p>Loading…</p>`;
  const shown = nodes.filter((n) => matches(n, text, status));
  return html`
    <div class="toolbar">
      <label>Filter <input id="node-filter" type="search" placeholder="name, region or capability"
        value=${text} onInput=${(e) => setText(e.target.value)} /></label>
      <label>Status <select id="node-status" value=${status} onChange=${(e) => setStatus(e.target.value)}>
        <option value="all">all</option><option value="online">online</option>
        <option value="offline">offline</option><option value="withdrawn">withdrawn</option>
      </select></label>
      <span class="muted" aria-live="polite">${shown.length} of ${nodes.length} nodes · updated ${ago(updated)}</span>
    </div>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <div class="table-wrap">
    <table id="nodes" class="cards">
      <thead><tr>
        <th scope="col">Node</th><th scope="col">Region</th><th scope="col">Energy mix</th>
        <th scope="col">Clean share</th><th scope="col">Grid intensity</th><th scope="col">Status</th>
        <th scope="col">Capabilities (credits)</th><th scope="col">Reputation</th>
      </tr></thead>
      <tbody>
        ${shown.map(
          (n) => html`<tr data-node=${n.id}>
            <td data-label="Node"><strong>${n.name}</strong><br /><code class="muted">${n.id.slice(0, 12)}</code></td>
            <td data-label="Region">${n.region || "—"}</td>
            <td data-label="Energy mix">${(n.energy.sources || []).map(([s, share]) => `${s} ${percent(share)}`).join(", ") || "—"}</td>
            <td class="num" data-label="Clean share">${percent(n.energy.clean_share)}</td>
            <td class="num" data-label="Grid intensity">${intensity(n.energy.carbon_intensity)}</td>
            <td data-label="Status"><span class=${`status ${n.status}`}>${n.status}</span><br /><span class="muted">${ago(n.last_seen)}</span></td>
            <td data-label="Capabilities">${n.capabilities.map((c) => html`<span class="cap">${c.name} ${credits(c.price)}</span> `)}</td>
            <td class="num" data-label="Reputation">${n.reputation ? n.reputation.value.toFixed(2) : "—"}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    </div>
    <p class="muted">Grid intensity: the average, location-based intensity (gCO₂/kWh) each node reports for its grid.</p>`;
}
