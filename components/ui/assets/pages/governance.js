// Governance: open importance polls with what each task is, casting and
// changing a ballot, outcomes with their confidence; the signed-in user's
// quota, tier and next reset in their own timezone.

import { h } from "../vendor/preact.mjs";
import { useEffect, useState } from "../vendor/hooks.mjs";
import htm from "../vendor/htm.mjs";
import { api } from "../api.js";
import { percent } from "../format.js";

const html = htm.bind(h);
const REFRESH_MS = 5000;

/** `ms` as a date and time in `timeZone` (the user's quota zone). */
export function inZone(ms, timeZone) {
  try {
    return new Date(ms).toLocaleString(undefined, { timeZone, dateStyle: "medium", timeStyle: "short" });
  } catch {
    return new Date(ms).toLocaleString();
  }
}

function Quota({ quota }) {
  const limit = quota.limits.tasks_per_day;
  return html`<dl class="figures" id="quota">
    <div><dt>Tier</dt><dd data-field="tier">${quota.tier}</dd></div>
    <div><dt>Used today</dt><dd data-field="used_today">${quota.used_today}${limit != null ? ` / ${limit}` : ""}</dd></div>
    <div><dt>Remaining</dt><dd data-field="remaining">${quota.remaining ?? "unlimited"}</dd></div>
    <div><dt>Next reset (${quota.timezone})</dt><dd data-field="next_reset">${inZone(quota.next_reset_at, quota.timezone)}</dd></div>
  </dl>
  ${quota.next_tier && html`<p class="muted">Next tier: ${typeof quota.next_tier === "string" ? quota.next_tier : JSON.stringify(quota.next_tier)}</p>`}`;
}

function Tally({ outcome }) {
  const weights = Object.entries(outcome.weights || {}).filter(([, w]) => w > 0);
  return html`<span class="tally" data-ballots=${outcome.ballots}>
    ${outcome.ballots} ballot(s)${weights.length > 0 ? ": " : ""}${weights.map(([l, w]) => `${l} ${w}`).join(", ")}
    ${outcome.closed && html` · decided ${outcome.importance} (${outcome.decided_by}, confidence ${percent(outcome.confidence)})`}
  </span>`;
}

function Poll({ poll, levels, user, mine, onVoted }) {
  const [error, setError] = useState("");
  const vote = async (importance) => {
    try {
      await api(`/tasks/${poll.task_id}/votes`, { method: "POST", body: { importance } });
      setError("");
      onVoted(poll.task_id, importance);
    } catch (e) {
      setError(e.message);
    }
  };
  const t = poll.task;
  return html`<li class="poll" data-task=${poll.task_id}>
    <div><strong>${t.name || t.task_type}</strong> <span class="muted">(${t.task_type}, closes ${new Date(poll.closes_at).toLocaleTimeString()})</span></div>
    ${t.description && html`<div>${t.description}</div>`}
    <div><${Tally} outcome=${poll.outcome} /></div>
    ${user &&
    html`<div class="ballot" role="group" aria-label="Your ballot">
      ${levels.map(
        (l) => html`<button type="button" class=${mine === l ? "chosen" : "secondary"} aria-pressed=${mine === l}
          data-level=${l} onClick=${() => vote(l)}>${l}</button>`,
      )}
    </div>`}
    ${error && html`<div class="error" role="alert">${error}</div>`}
  </li>`;
}

export function Governance({ user }) {
  const [rules, setRules] = useState(null);
  const [polls, setPolls] = useState(null);
  const [quota, setQuota] = useState(null);
  const [mine, setMine] = useState({});
  const [error, setError] = useState("");
  const load = () => {
    if (user) {
      api("/polls").then((r) => (setPolls(r.polls), setError("")), (e) => setError(e.message));
      api("/users/me/quota").then(setQuota, (e) => setError(e.message));
    }
  };
  useEffect(() => {
    api("/governance").then(setRules, (e) => setError(e.message));
    load();
    const timer = setInterval(load, REFRESH_MS);
    return () => clearInterval(timer);
  }, [user]);
  const voted = (taskId, level) => {
    setMine({ ...mine, [taskId]: level });
    load();
  };
  const levels = rules ? rules.voting.levels : [];
  return html`
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${rules &&
    html`<p>Voting scheme <strong>${rules.voting.scheme}</strong>${`; a poll stays open ${Math.round(
      rules.voting.window_ms / 60000,
    )} min and a level needs ${percent(rules.voting.consensus_share)} of the weight. Public-health tasks are always critical.`}</p>`}
    ${!user
      ? html`<p>Sign in to vote and to see your quota.</p>`
      : html`
        <section aria-labelledby="quota-h"><h2 id="quota-h">Your quota</h2>
          ${quota ? html`<${Quota} quota=${quota} />` : html`<p>Loading…</p>`}</section>
        <section aria-labelledby="polls-h"><h2 id="polls-h">Open polls</h2>
          ${polls == null
            ? html`<p>Loading…</p>`
            : polls.length === 0
              ? html`<p>No poll is open.</p>`
              : html`<ul class="polls" id="polls">${polls.map(
                  (p) => html`<${Poll} key=${p.task_id} poll=${p} levels=${levels} user=${user}
                    mine=${mine[p.task_id]} onVoted=${voted} />`,
                )}</ul>`}
        </section>`}`;
}
