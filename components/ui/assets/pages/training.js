// A federated training run as it goes: each closed round's training loss
// and hold-out accuracy (from the task's `round_closed` events while it
// runs, from its result once done), the privacy spent, the rounds' carbon,
// and the model to download for `greenmesh fl predict`.

import { h } from "../vendor/preact.mjs";
import { useEffect, useMemo } from "../vendor/hooks.mjs";
import htm from "../vendor/htm.mjs";
import { Plot, threeDigits } from "../chart.js";
import { grams, percent } from "../format.js";

const html = htm.bind(h);

/** The closed rounds: the result's when the task is done, else its events'. */
export function roundsOf(task, events) {
  const result = task.result || {};
  if (Array.isArray(result.rounds)) return result.rounds;
  return events.filter((e) => e.event_type === "round_closed" && e.data).map((e) => e.data);
}

/** uPlot's columns: round number, loss, hold-out accuracy (%). */
export function columns(rounds) {
  return [
    rounds.map((r) => r.round),
    rounds.map((r) => r.loss ?? null),
    rounds.map((r) => (r.holdout_accuracy == null ? null : r.holdout_accuracy * 100)),
  ];
}

const fixed = (v, digits) => (v == null ? "—" : v.toFixed(digits));

/** The model as a file (`greenmesh fl predict MODEL.json rows.csv`). */
function Download({ model }) {
  const href = useMemo(
    () => URL.createObjectURL(new Blob([JSON.stringify(model)], { type: "application/json" })),
    [model],
  );
  useEffect(() => () => URL.revokeObjectURL(href), [href]);
  return html`<a id="model-download" href=${href} download=${`${model.name || "model"}.json`}>
    Download the model (${model.parameters} parameters)</a>`;
}

export function Training({ task, events }) {
  const rounds = roundsOf(task, events);
  const data = useMemo(() => columns(rounds), [rounds.length, task.status]);
  const inputs = (task.group && task.group.shards) || null;
  const result = task.result || {};
  const privacy = result.privacy;
  return html`<section class="training" id="training" data-rounds=${rounds.length} aria-labelledby="training-h">
    <h3 id="training-h">Training${inputs ? ` · ${inputs} rounds planned` : ""}</h3>
    ${rounds.length === 0
      ? html`<p class="muted">No round has closed yet: the members are training.</p>`
      : html`
        <${Plot} id="chart-rounds" title="Each round: training loss and hold-out accuracy" data=${data}
          options=${() => ({
            scales: { x: { time: false }, loss: { range: (u, lo, hi) => [0, hi > 0 ? hi * 1.15 : 1] }, acc: { range: [0, 100] } },
            axes: [
              { label: "round", values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? v : "")) },
              { scale: "loss", label: "loss", size: 60, values: threeDigits },
              { scale: "acc", label: "hold-out accuracy, %", side: 1, size: 60, grid: { show: false } },
            ],
            series: [
              { label: "round" },
              { label: "loss", scale: "loss", stroke: "#b26a00", width: 2, points: { show: true } },
              { label: "accuracy %", scale: "acc", stroke: "#2e7d32", width: 2, points: { show: true } },
            ],
          })} />
        <div class="table-wrap"><table id="rounds" class="cards">
          <thead><tr><th scope="col">Round</th><th scope="col">Members</th><th scope="col">Rows</th>
            <th scope="col">Loss</th><th scope="col">Hold-out accuracy</th><th scope="col">Emitted</th></tr></thead>
          <tbody>${rounds.map(
            (r) => html`<tr data-round=${r.round}><td data-label="Round">${r.round}${r.attempt > 1 ? ` (attempt ${r.attempt})` : ""}</td>
              <td class="num" data-label="Members">${r.members}</td><td class="num" data-label="Rows">${r.samples}</td>
              <td class="num" data-label="Loss">${fixed(r.loss, 4)}</td>
              <td class="num" data-label="Hold-out accuracy" data-field="accuracy">${percent(r.holdout_accuracy)}</td>
              <td class="num" data-label="Emitted">${r.carbon ? grams(r.carbon.emitted_g) : "—"}</td></tr>`,
          )}</tbody></table></div>`}
    ${privacy &&
    html`<p id="privacy">${`Differential privacy: ε ${fixed(privacy.epsilon_spent, 3)} spent of ${privacy.epsilon}, δ ${privacy.delta}, noise multiplier ${fixed(privacy.noise_multiplier, 2)}, over ${privacy.steps} steps; it protects ${privacy.protects}.`}</p>`}
    ${result.secure_aggregation &&
    html`<p class="muted">${`Secure aggregation: ${result.secure_aggregation.scheme}; ${result.secure_aggregation.attempts} attempt(s) for ${result.secure_aggregation.rounds} round(s).`}</p>`}
    ${result.model && html`<p><${Download} model=${result.model} /></p>`}
  </section>`;
}
