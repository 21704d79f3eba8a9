// Numbers as people read them, with their units.

export const grams = (g) =>
  g == null ? "—" : g >= 1000 ? `${(g / 1000).toFixed(2)} kg` : `${g.toFixed(g < 10 ? 2 : 1)} g`;
export const wh = (w) =>
  w == null ? "—" : w >= 1000 ? `${(w / 1000).toFixed(2)} kWh` : `${w.toFixed(w < 10 ? 2 : 1)} Wh`;
export const percent = (share) => (share == null ? "—" : `${Math.round(share * 100)} %`);
export const intensity = (g) => (g == null ? "—" : `${Math.round(g)} g/kWh`);
export const credits = (c) => (c == null ? "—" : c.toFixed(c < 10 ? 2 : 1));
export const hours = (h) => (h == null ? "—" : h < 1 ? `${Math.round(h * 60)} min` : `${h.toFixed(1)} h`);

/** How long ago `ms` (a Unix time in ms) was. */
export function ago(ms, now = Date.now()) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
