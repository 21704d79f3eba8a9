// The greenmesh dashboard: one page, views by `#/name`, Preact + htm with
// no build step (ADR 0023). Every figure comes from the JSON API.

import { h, render } from "./vendor/preact.mjs";
import { useEffect, useState } from "./vendor/hooks.mjs";
import htm from "./vendor/htm.mjs";
import { api, token } from "./api.js";
import { Network } from "./pages/network.js";
import { Impact } from "./pages/impact.js";
import { Governance } from "./pages/governance.js";
import { Tasks } from "./pages/tasks.js";
import { Nodes } from "./pages/nodes.js";
import { Replay } from "./pages/replay.js";

export const html = htm.bind(h);

const PAGES = [
  { id: "network", title: "Network", view: Network, needsUser: false },
  { id: "tasks", title: "Tasks", view: Tasks, needsUser: true },
  { id: "governance", title: "Governance", view: Governance, needsUser: false },
  { id: "impact", title: "Impact", view: Impact, needsUser: false },
  { id: "nodes", title: "My nodes", view: Nodes, needsUser: true },
  { id: "replay", title: "Replay", view: Replay, needsUser: false },
];

function currentPage() {
  const id = location.hash.replace(/^#\/?/, "").split("?")[0];
  return PAGES.find((p) => p.id === id) || PAGES[0];
}

function SignIn({ onUser }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState("");
  const submit = async (e) => {
    e.preventDefault();
    token.set(value.trim());
    try {
      onUser(await api("/users/me"));
      setError("");
    } catch (err) {
      token.clear();
      setError(err.status === 401 ? "That token is not known here." : err.message);
    }
  };
  return html`
    <form class="signin" onSubmit=${submit} aria-label="Sign in">
      <label for="token">API token</label>
      <input id="token" name="token" type="password" autocomplete="off" required
        value=${value} onInput=${(e) => setValue(e.target.value)} />
      <button type="submit">Sign in</button>
      ${error && html`<span class="error" role="alert">${error}</span>`}
    </form>`;
}

function App() {
  const [page, setPage] = useState(currentPage());
  const [user, setUser] = useState(null);
  useEffect(() => {
    const onHash = () => setPage(currentPage());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  useEffect(() => {
    if (token.get()) api("/users/me").then(setUser, () => token.clear());
  }, []);
  const signOut = () => {
    token.clear();
    setUser(null);
  };
  const View = page.view;
  return html`
    <header>
      <a class="brand" href="#/network">greenmesh</a>
      <nav aria-label="Pages">
        ${PAGES.map(
          (p) => html`<a href="#/${p.id}" aria-current=${p.id === page.id ? "page" : undefined}>${p.title}</a>`,
        )}
      </nav>
      <div class="who">
        ${user
          ? html`<span id="signed-in">Signed in as <strong>${user.name}</strong></span>
              <button type="button" onClick=${signOut}>Sign out</button>`
          : html`<${SignIn} onUser=${setUser} />`}
      </div>
    </header>
    <main id="page" data-page=${page.id}>
      <h1>${page.title}</h1>
      <${View} user=${user} />
    </main>`;
}

render(html`<${App} />`, document.getElementById("app"));
