// Tasks: the signed-in user's tasks with their status, live progress and
// the broker's decision in words; a submission form with a template for
// each task type; the result shown as what it is (an image, boxes drawn on
// the picture, an audio player, a model's metrics, JSON).

import { h } from "../vendor/preact.mjs";
import { useEffect, useRef, useState } from "../vendor/hooks.mjs";
import htm from "../vendor/htm.mjs";
import { api, uploadBlob } from "../api.js";
import { ago, credits } from "../format.js";
import { Training } from "./training.js";

const html = htm.bind(h);
const FINAL = ["completed", "failed", "cancelled"];

/** A File as base64 (no data-URL prefix). */
function fileBase64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).replace(/^data:[^,]*,/, ""));
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

/** Inline inputs are capped (256 KiB with the module): larger files go up as blobs. */
const INLINE_BYTES = 96 * 1024;

/** A file as a task's `data`: base64 inline when small, else a blob reference. */
async function dataOf(file) {
  if (file.size <= INLINE_BYTES) return fileBase64(file);
  const blob = await uploadBlob(file);
  return { blob: `sha256:${blob.sha256}` };
}

/** Each task type's form: its fields, and the task body they make. */
export const TEMPLATES = [
  {
    id: "image-filter",
    title: "Image filter (an uploaded picture)",
    fields: [
      { name: "picture", label: "Picture (PNG)", type: "file", accept: "image/png" },
      { name: "filter", label: "Filter", type: "select", options: ["grayscale", "gaussian_blur", "sharpen", "sobel"] },
    ],
    build: async (v) => ({
      task_type: "image-filter",
      inputs: { data: await dataOf(v.picture), media_type: "image/png", params: { filter: v.filter || "grayscale" } },
    }),
  },
  {
    id: "object-detect",
    title: "Object detection (handwritten digits on a page)",
    fields: [{ name: "picture", label: "Picture (PNG)", type: "file", accept: "image/png" }],
    build: async (v) => ({
      task_type: "object-detect",
      inputs: { data: await dataOf(v.picture), media_type: "image/png" },
    }),
  },
  {
    id: "audio-denoise",
    title: "Audio denoise (a WAV recording)",
    fields: [{ name: "recording", label: "Recording (WAV)", type: "file", accept: "audio/wav,.wav" }],
    build: async (v) => ({
      task_type: "audio-denoise",
      inputs: { data: await dataOf(v.recording), media_type: "audio/wav" },
    }),
  },
  {
    id: "wasm_execution",
    title: "Your own WebAssembly module",
    fields: [
      { name: "module", label: "Kernel component (.wasm)", type: "file", accept: ".wasm,application/wasm" },
      { name: "text", label: "Input text", type: "text" },
    ],
    build: async (v) => ({
      task_type: "wasm_execution",
      wasm_module: await fileBase64(v.module),
      inputs: { text: v.text || "" },
    }),
  },
  {
    id: "sharded",
    title: "Sharded computation (one shard per node)",
    fields: [{ name: "json", label: "Task JSON", type: "json" }],
    // Two 1×1 matrix products (2·3 and 2·3), one per node.
    example: {
      task_type: "computation",
      requirements: { min_nodes: 2 },
      inputs: {
        shards: [
          { data: "AAAAQAAAQEA=", params: { op: "matmul", m: 1, k: 1, n: 1 } },
          { data: "AAAAQAAAQEA=", params: { op: "matmul", m: 1, k: 1, n: 1 } },
        ],
      },
    },
    build: async (v) => JSON.parse(v.json),
  },
  {
    id: "federated",
    title: "Federated training run",
    fields: [{ name: "json", label: "Task JSON", type: "json" }],
    example: {
      task_type: "federated_learning",
      requirements: { min_nodes: 2 },
      inputs: { dataset: "breast-cancer", model_name: "diagnosis", rounds: 3, epsilon: 1.0, delta: 0.001 },
    },
    build: async (v) => JSON.parse(v.json),
  },
];

function Field({ field, value, onChange, example }) {
  const id = `f-${field.name}`;
  if (field.type === "file") {
    return html`<label for=${id}>${field.label}</label>
      <input id=${id} name=${field.name} type="file" accept=${field.accept} required
        onChange=${(e) => onChange(e.target.files[0])} />`;
  }
  if (field.type === "select") {
    return html`<label for=${id}>${field.label}</label>
      <select id=${id} name=${field.name} value=${value || field.options[0]} onChange=${(e) => onChange(e.target.value)}>
        ${field.options.map((o) => html`<option value=${o}>${o}</option>`)}
      </select>`;
  }
  if (field.type === "json") {
    return html`<label for=${id}>${field.label}</label>
      <textarea id=${id} name=${field.name} rows="8" spellcheck="false"
        value=${value ?? JSON.stringify(example, null, 2)} onInput=${(e) => onChange(e.target.value)}></textarea>`;
  }
  return html`<label for=${id}>${field.label}</label>
    <input id=${id} name=${field.name} type="text" value=${value || ""} onInput=${(e) => onChange(e.target.value)} />`;
}

function SubmitForm({ onSubmitted }) {
  const [templateId, setTemplateId] = useState(TEMPLATES[0].id);
  const [values, setValues] = useState({});
  const [maxPrice, setMaxPrice] = useState("50");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const template = TEMPLATES.find((t) => t.id === templateId);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      const v = { ...values };
      for (const f of template.fields) {
        if (f.type === "json" && v[f.name] === undefined) v[f.name] = JSON.stringify(template.example);
      }
      const body = await template.build(v);
      if (maxPrice) body.max_price = Number(maxPrice);
      const task = await api("/tasks", { method: "POST", body });
      setError("");
      onSubmitted(task, values);
    } catch (err) {
      setError(err instanceof SyntaxError ? `Task JSON: ${err.message}` : err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="submit" id="submit-task" onSubmit=${submit} aria-labelledby="submit-h">
    <h2 id="submit-h">Submit a task</h2>
    <label for="template">Template</label>
    <select id="template" value=${templateId} onChange=${(e) => (setTemplateId(e.target.value), setValues({}))}>
      ${TEMPLATES.map((t) => html`<option value=${t.id}>${t.title}</option>`)}
    </select>
    ${template.fields.map(
      (f) => html`<${Field} key=${`${templateId}-${f.name}`} field=${f} value=${values[f.name]} example=${template.example}
        onChange=${(v) => setValues({ ...values, [f.name]: v })} />`,
    )}
    <label for="max-price">Most you pay (credits)</label>
    <input id="max-price" type="number" min="0" step="0.01" value=${maxPrice} onInput=${(e) => setMaxPrice(e.target.value)} />
    <div><button type="submit" disabled=${busy}>${busy ? "Submitting…" : "Submit"}</button></div>
    ${error && html`<p class="error" role="alert">${error}</p>`}
  </form>`;
}

/** A task's output (`result.output`, JSON text) as what it is. */
function Output({ task, picture }) {
  let out;
  try {
    out = JSON.parse(task.result.output);
  } catch {
    return html`<pre id="task-output">${task.result.output}</pre>`;
  }
  const type = out.media_type || "";
  if (out.base64 && type.startsWith("image/")) {
    return html`<img id="task-output" class="output" alt="The task's output image" src=${`data:${type};base64,${out.base64}`} />`;
  }
  if (out.base64 && type.startsWith("audio/")) {
    return html`<audio id="task-output" controls src=${`data:${type};base64,${out.base64}`}></audio>`;
  }
  if (out.json && Array.isArray(out.json.bounding_boxes) && picture) {
    return html`<${Boxes} report=${out.json} picture=${picture} />`;
  }
  if (out.text !== undefined) return html`<pre id="task-output">${out.text}</pre>`;
  return html`<pre id="task-output">${JSON.stringify(out.json ?? out, null, 2)}</pre>`;
}

/** Detected boxes drawn over the submitted picture. */
function Boxes({ report, picture }) {
  const box = useRef(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const scale = () => el.querySelector("img").clientWidth / report.image.width;
    for (const d of el.querySelectorAll(".box")) d.remove();
    const draw = () => {
      const s = scale();
      for (const b of report.bounding_boxes) {
        const d = document.createElement("div");
        d.className = "box";
        d.textContent = `${b.label} ${Math.round(b.score * 100)}%`;
        Object.assign(d.style, { left: `${b.x * s}px`, top: `${b.y * s}px`, width: `${b.width * s}px`, height: `${b.height * s}px` });
        el.appendChild(d);
      }
    };
    const img = el.querySelector("img");
    if (img.complete) draw();
    else img.addEventListener("load", draw, { once: true });
  }, [report, picture]);
  return html`<div class="boxes" id="task-output" ref=${box}>
    <img alt="The submitted picture with the detections" src=${picture} />
  </div>`;
}

function Detail({ id, pictures, onTask }) {
  const [task, setTask] = useState(null);
  const [events, setEvents] = useState([]);
  const [error, setError] = useState("");
  useEffect(() => {
    let live = true;
    let after = 0;
    const seen = new Set();
    const readEvents = async () => {
      const ev = await api(`/events?task_id=${id}&after=${after}&limit=100`);
      if (ev.events.length) {
        after = ev.events[ev.events.length - 1].id;
        ev.events.forEach((e) => seen.add(e.event_type));
        live && setEvents((old) => [...old, ...ev.events]);
      }
    };
    const step = async () => {
      while (live) {
        try {
          await readEvents();
          const t = await api(`/tasks/${id}?wait=2`);
          if (!live) return;
          setTask(t);
          onTask(t);
          if (FINAL.includes(t.status)) {
            // The end is committed before its event (ADR 0015): read the
            // log until the event that ends the task is in it (seconds at
            // most on a busy coordinator), then stop.
            for (let i = 0; i < 30 && live; i++) {
              await readEvents();
              if (seen.has(`task_${t.status}`)) break;
              await new Promise((r) => setTimeout(r, 500));
            }
            return;
          }
        } catch (e) {
          live && setError(e.message);
          await new Promise((r) => setTimeout(r, 2000));
        }
      }
    };
    setTask(null);
    setEvents([]);
    step();
    return () => {
      live = false;
    };
  }, [id]);
  if (!task) return error ? html`<p class="error" role="alert">${error}</p>` : html`<p>Loading…</p>`;
  const d = task.decision || {};
  return html`<section class="detail" id="task-detail" data-status=${task.status} aria-labelledby="detail-h">
    <h2 id="detail-h">${task.task_type} <code>${task.id}</code></h2>
    <p>Status <strong id="task-status">${task.status}</strong>${task.reason ? ` — ${task.reason}` : ""}
      ${task.node_id && html` · on <code>${task.node_id}</code> for ${credits(task.price)} credits`}</p>
    ${d.chosen && d.chosen.why && html`<p id="task-why">Why this node: ${d.chosen.why}</p>`}
    ${(d.declined || []).length > 0 &&
    html`<details><summary>Why not the others (${d.declined.length})</summary><ul>
      ${d.declined.map((x) => html`<li><code>${x.node_id}</code>: ${x.reason}</li>`)}</ul></details>`}
    <ol class="events" id="task-events" aria-live="polite">
      ${events.map((e) => html`<li>${e.event_type.replace(/_/g, " ")}${e.node_id ? ` on ${e.node_id}` : ""} <span class="muted">${ago(e.at)}</span></li>`)}
    </ol>
    ${task.task_type === "federated_learning"
      ? html`<${Training} task=${task} events=${events} />`
      : task.status === "completed" && task.result && html`<h3>Result</h3><${Output} task=${task} picture=${pictures[task.id]} />`}
    ${task.status === "failed" && html`<p class="error">Failed: ${task.reason || (task.result && task.result.error) || "see the events"}</p>`}
  </section>`;
}

export function Tasks({ user }) {
  const [tasks, setTasks] = useState(null);
  const [selected, setSelected] = useState(null);
  const [pictures, setPictures] = useState({});
  const [error, setError] = useState("");
  useEffect(() => {
    if (!user) return;
    let live = true;
    const load = () =>
      api("/tasks").then((r) => live && (setTasks(r.tasks), setError("")), (e) => live && setError(e.message));
    load();
    const timer = setInterval(load, 3000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [user]);
  if (!user) return html`<p>Sign in to submit tasks and follow them.</p>`;
  // The followed task's latest state, in the list too.
  const seen = (task) => setTasks((old) => (old || []).map((t) => (t.id === task.id ? task : t)));
  const submitted = async (task, values) => {
    const picture = values.picture ? `data:image/png;base64,${await fileBase64(values.picture)}` : null;
    if (picture) setPictures((p) => ({ ...p, [task.id]: picture }));
    setTasks((old) => [task, ...(old || []).filter((t) => t.id !== task.id)]);
    setSelected(task.id);
  };
  return html`
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <div class="columns">
      <div>
        <${SubmitForm} onSubmitted=${submitted} />
        <h2>Your tasks</h2>
        ${tasks == null
          ? html`<p>Loading…</p>`
          : tasks.length === 0
            ? html`<p>No tasks yet.</p>`
            : html`<ul class="task-list" id="tasks">${tasks.map(
                (t) => html`<li data-task=${t.id}><button type="button" class=${selected === t.id ? "chosen" : "secondary"}
                  onClick=${() => setSelected(t.id)}>${t.task_type} · ${t.status}</button></li>`,
              )}</ul>`}
      </div>
      <div>${selected ? html`<${Detail} id=${selected} pictures=${pictures} onTask=${seen} />` : html`<p class="muted">Submit a task or pick one to follow it.</p>`}</div>
    </div>`;
}
