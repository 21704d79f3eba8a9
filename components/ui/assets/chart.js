// One uPlot chart as a Preact component: drawn into its figure at the
// figure's width, redrawn when its data changes, destroyed when it goes.

import { h } from "./vendor/preact.mjs";
import { useEffect, useRef } from "./vendor/hooks.mjs";
import htm from "./vendor/htm.mjs";
import uPlot from "./vendor/uPlot.esm.js";

const html = htm.bind(h);

/** Numbers to three significant digits: small values keep distinct labels. */
export const threeDigits = (u, vals) => vals.map((v) => (v == null ? "" : +v.toPrecision(3)));

/**
 * A chart of `data` (uPlot's columns, x first). `options(width)` answers
 * uPlot's options for the figure's width; `onPlot(plot)` is told the
 * chart once drawn (to zoom it from outside).
 */
export function Plot({ id, title, options, data, onPlot }) {
  const box = useRef(null);
  useEffect(() => {
    if (!box.current || data[0].length === 0) return;
    const width = Math.min(box.current.clientWidth || 600, 900);
    const plot = new uPlot({ title, width, height: 240, ...options(width) }, data, box.current);
    if (onPlot) onPlot(plot);
    return () => plot.destroy();
  }, [data]);
  return html`<figure class="chart" id=${id} ref=${box} aria-label=${title}></figure>`;
}

export { uPlot };
