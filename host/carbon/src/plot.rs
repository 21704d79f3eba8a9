//! A dependency-free SVG chart over a UTC time axis: line series (say, the
//! daily mean intensity of each region), event markers (task starts) and an
//! optional second panel for cumulative series (grams saved), with axes,
//! a legend and a title.
//!
//! ```
//! use greenmesh_carbon::plot::Svg;
//! let svg = Svg::new("GB, 2020")
//!     .y_label("gCO2/kWh")
//!     .line("GB", vec![(0, 200.0), (3_600_000, 180.0)])
//!     .markers("task starts", vec![(1_800_000, 190.0)])
//!     .cumulative("saved", vec![(0, 0.0), (3_600_000, 12.0)])
//!     .cumulative_label("g saved")
//!     .render();
//! assert!(svg.starts_with("<svg"));
//! ```

use super::civil::{Civil, DAY_MS};
use std::fmt::Write as _;
use std::path::Path;

/// Colours for series, in order (the Tableau 10 palette).
const PALETTE: &[&str] = &[
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 62.0;
const BOTTOM: f64 = 40.0;
const GAP: f64 = 48.0;

/// A named list of `(ms since the epoch, value)`.
#[derive(Debug, Clone)]
struct Series {
    name: String,
    points: Vec<(u64, f64)>,
}

/// A chart under construction; [`Svg::render`] writes it.
#[derive(Debug, Clone)]
pub struct Svg {
    title: String,
    width: u32,
    height: u32,
    y_label: String,
    cumulative_label: String,
    lines: Vec<Series>,
    markers: Vec<Series>,
    cumulative: Vec<Series>,
}

/// A vertical band of the chart with its own value scale.
struct Panel {
    top: f64,
    height: f64,
    lo: f64,
    hi: f64,
}

impl Panel {
    fn y(&self, v: f64) -> f64 {
        self.top + self.height * (1.0 - (v - self.lo) / (self.hi - self.lo))
    }
}

impl Svg {
    /// An empty 1000 × 560 chart.
    pub fn new(title: &str) -> Self {
        Svg {
            title: title.into(),
            width: 1000,
            height: 560,
            y_label: String::new(),
            cumulative_label: String::new(),
            lines: Vec::new(),
            markers: Vec::new(),
            cumulative: Vec::new(),
        }
    }

    /// Size in pixels (at least 300 × 200).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.width = width.max(300);
        self.height = height.max(200);
        self
    }

    /// Label of the main panel's value axis.
    pub fn y_label(mut self, label: &str) -> Self {
        self.y_label = label.into();
        self
    }

    /// Label of the cumulative panel's value axis.
    pub fn cumulative_label(mut self, label: &str) -> Self {
        self.cumulative_label = label.into();
        self
    }

    /// A line in the main panel; points that are not finite are skipped.
    pub fn line(mut self, name: &str, points: impl IntoIterator<Item = (u64, f64)>) -> Self {
        self.lines.push(series(name, points));
        self
    }

    /// Event markers (dots) in the main panel, at `(time, value)`.
    pub fn markers(mut self, name: &str, points: impl IntoIterator<Item = (u64, f64)>) -> Self {
        self.markers.push(series(name, points));
        self
    }

    /// A line in the second, lower panel (drawn only if there is one).
    pub fn cumulative(mut self, name: &str, points: impl IntoIterator<Item = (u64, f64)>) -> Self {
        self.cumulative.push(series(name, points));
        self
    }

    /// Writes the SVG document to `path`.
    pub fn write(&self, path: impl AsRef<Path>) -> anyhow::Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.render())
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
    }

    /// The SVG document.
    pub fn render(&self) -> String {
        let (w, h) = (f64::from(self.width), f64::from(self.height));
        let all = || {
            self.lines
                .iter()
                .chain(&self.markers)
                .chain(&self.cumulative)
                .flat_map(|s| s.points.iter().map(|p| p.0))
        };
        let t0 = all().min().unwrap_or(0);
        let t1 = all().max().unwrap_or(0).max(t0 + 1);
        let plot_w = w - LEFT - RIGHT;
        let x = |t: u64| LEFT + plot_w * (t - t0) as f64 / (t1 - t0) as f64;

        let usable = h - TOP - BOTTOM;
        let (main_h, cum_h) = if self.cumulative.is_empty() {
            (usable, 0.0)
        } else {
            let cum = ((usable - GAP) * 0.35).max(40.0);
            (usable - GAP - cum, cum)
        };
        let main = panel(TOP, main_h, self.lines.iter().chain(&self.markers));
        let cum = panel(TOP + main_h + GAP, cum_h, self.cumulative.iter());

        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" font-family="sans-serif" font-size="12">"#,
            self.width, self.height, self.width, self.height
        );
        let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="22" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
            w / 2.0,
            escape(&self.title)
        );
        self.legend(&mut out);

        let ticks = time_ticks(t0, t1);
        self.axes(&mut out, &main, &self.y_label, &ticks, &x, plot_w);
        for (i, s) in self.lines.iter().enumerate() {
            polyline(&mut out, s, colour(i), &x, &main);
        }
        for (i, s) in self.markers.iter().enumerate() {
            let c = colour(self.lines.len() + i);
            let _ = writeln!(out, r#"<g fill="{c}" fill-opacity="0.8">"#);
            let _ = writeln!(out, "<title>{}</title>", escape(&s.name));
            for &(t, v) in &s.points {
                let _ = writeln!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3"/>"#,
                    x(t),
                    main.y(v)
                );
            }
            let _ = writeln!(out, "</g>");
        }
        if !self.cumulative.is_empty() {
            self.axes(&mut out, &cum, &self.cumulative_label, &ticks, &x, plot_w);
            let offset = self.lines.len() + self.markers.len();
            for (i, s) in self.cumulative.iter().enumerate() {
                polyline(&mut out, s, colour(offset + i), &x, &cum);
            }
        }
        out.push_str("</svg>\n");
        out
    }

    /// One row under the title: a swatch and the name of every series.
    fn legend(&self, out: &mut String) {
        let mut lx = LEFT;
        let entries = self
            .lines
            .iter()
            .map(|s| (s, false))
            .chain(self.markers.iter().map(|s| (s, true)))
            .chain(self.cumulative.iter().map(|s| (s, false)));
        let _ = writeln!(out, r#"<g class="legend">"#);
        for (i, (s, dot)) in entries.enumerate() {
            let c = colour(i);
            if dot {
                let _ = writeln!(
                    out,
                    r#"<circle cx="{:.1}" cy="40" r="4" fill="{c}"/>"#,
                    lx + 9.0
                );
            } else {
                let _ = writeln!(
                    out,
                    r#"<line x1="{lx:.1}" y1="40" x2="{:.1}" y2="40" stroke="{c}" stroke-width="3"/>"#,
                    lx + 18.0
                );
            }
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="44">{}</text>"#,
                lx + 24.0,
                escape(&s.name)
            );
            lx += 24.0 + 7.0 * s.name.chars().count() as f64 + 18.0;
        }
        let _ = writeln!(out, "</g>");
    }

    /// Frame, grid, tick labels and axis label of a panel.
    fn axes(
        &self,
        out: &mut String,
        p: &Panel,
        label: &str,
        ticks: &[(u64, String)],
        x: &dyn Fn(u64) -> f64,
        plot_w: f64,
    ) {
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{:.1}" width="{plot_w:.1}" height="{:.1}" fill="none" stroke="#444"/>"##,
            p.top, p.height
        );
        for v in value_ticks(p.lo, p.hi) {
            let y = p.y(v);
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
                LEFT + plot_w
            );
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                y + 4.0,
                number(v)
            );
        }
        let bottom = p.top + p.height;
        for (t, text) in ticks {
            let tx = x(*t);
            let _ = writeln!(
                out,
                r##"<line x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{bottom:.1}" stroke="#eee"/>"##,
                p.top
            );
            let _ = writeln!(
                out,
                r#"<text x="{tx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                bottom + 16.0,
                escape(text)
            );
        }
        let _ = writeln!(
            out,
            r#"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            p.top + p.height / 2.0,
            escape(label)
        );
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#666">time (UTC)</text>"##,
            LEFT + plot_w,
            bottom + 32.0
        );
    }
}

fn series(name: &str, points: impl IntoIterator<Item = (u64, f64)>) -> Series {
    let mut points: Vec<(u64, f64)> = points.into_iter().filter(|p| p.1.is_finite()).collect();
    points.sort_by_key(|p| p.0);
    Series {
        name: name.into(),
        points,
    }
}

fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// A panel whose scale spans 0 and every value, with a little headroom.
fn panel<'a>(top: f64, height: f64, series: impl Iterator<Item = &'a Series>) -> Panel {
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for &(_, v) in series.flat_map(|s| &s.points) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi - lo < 1e-9 {
        hi = lo + 1.0;
    }
    let pad = (hi - lo) * 0.05;
    Panel {
        top,
        height,
        lo: if lo < 0.0 { lo - pad } else { lo },
        hi: hi + pad,
    }
}

fn polyline(out: &mut String, s: &Series, colour: &str, x: &dyn Fn(u64) -> f64, p: &Panel) {
    let mut points = String::new();
    for &(t, v) in &s.points {
        let _ = write!(points, "{:.1},{:.1} ", x(t), p.y(v));
    }
    let _ = writeln!(
        out,
        r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"><title>{}</title></polyline>"#,
        points.trim_end(),
        escape(&s.name)
    );
}

/// Round values (1, 2 or 5 × 10ⁿ apart) from `lo` to `hi`, about five.
fn value_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = (hi - lo) / 5.0;
    if !(raw.is_finite() && raw > 0.0) {
        return Vec::new();
    }
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut v = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while v <= hi + step * 1e-9 && out.len() < 50 {
        out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        v += step;
    }
    out
}

fn number(v: f64) -> String {
    if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_string()
    }
}

/// Tick instants between `t0` and `t1` with labels: hours, days or months,
/// whichever gives at most about ten.
fn time_ticks(t0: u64, t1: u64) -> Vec<(u64, String)> {
    const HOUR: u64 = 3_600_000;
    let span = t1 - t0;
    if span > 70 * DAY_MS {
        // Calendar months: 1, 2, 3, 6 or 12 apart.
        let months = span / (30 * DAY_MS);
        let every = [1, 2, 3, 6, 12]
            .into_iter()
            .find(|m| months / m <= 10)
            .unwrap_or(12 * (months / 120 + 1));
        let c = Civil::from_ms(t0);
        let (mut year, mut month) = (c.year, c.month);
        let mut out = Vec::new();
        loop {
            let start = Civil {
                year,
                month,
                day: 1,
                time_ms: 0,
            }
            .to_ms();
            match start {
                Some(t) if t > t1 => break,
                Some(t) if t >= t0 && (month - 1) % every as u32 == 0 => {
                    out.push((t, format!("{year:04}-{month:02}")));
                }
                None if year > 1970 => break,
                _ => {}
            }
            month += 1;
            if month > 12 {
                month = 1;
                year += 1;
            }
        }
        return out;
    }
    let step = [1, 2, 3, 6, 12, 24, 48, 7 * 24, 14 * 24]
        .into_iter()
        .map(|h| h * HOUR)
        .find(|s| span / s <= 10)
        .unwrap_or(28 * DAY_MS);
    let mut t = t0.div_ceil(step) * step;
    let mut out = Vec::new();
    while t <= t1 {
        let c = Civil::from_ms(t);
        let label = if step >= DAY_MS {
            format!("{:04}-{:02}-{:02}", c.year, c.month, c.day)
        } else {
            let m = c.time_ms / 60_000;
            format!("{:02}-{:02} {:02}:{:02}", c.month, c.day, m / 60, m % 60)
        };
        out.push((t, label));
        t += step;
    }
    out
}

/// Text safe inside XML elements and attributes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that tags nest and close; returns the element names seen.
    fn balanced(xml: &str) -> Vec<String> {
        let mut stack: Vec<String> = Vec::new();
        let mut seen = Vec::new();
        let mut rest = xml;
        while let Some(open) = rest.find('<') {
            let close = rest[open..].find('>').expect("unclosed <") + open;
            let tag = &rest[open + 1..close];
            assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(name.trim()),
                    "mismatched </{name}>"
                );
            } else {
                let name = tag.split_whitespace().next().unwrap().trim_end_matches('/');
                seen.push(name.to_string());
                if !tag.ends_with('/') {
                    stack.push(name.to_string());
                }
            }
            rest = &rest[close + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        seen
    }

    #[test]
    fn draws_a_well_formed_chart_with_one_polyline_per_series() {
        let day = DAY_MS;
        let t0 = 1_577_836_800_000; // 2020-01-01
        let svg = Svg::new("Carbon <intensity> & savings")
            .y_label("gCO2/kWh")
            .line("GB", (0..30).map(|d| (t0 + d * day, 200.0 + d as f64)))
            .line("DE", (0..30).map(|d| (t0 + d * day, 300.0 - d as f64)))
            .line("empty", Vec::new())
            .markers(
                "task starts",
                vec![(t0 + 3 * day, 210.0), (t0 + 9 * day, f64::NAN)],
            )
            .cumulative(
                "grams saved",
                (0..30).map(|d| (t0 + d * day, 5.0 * d as f64)),
            )
            .cumulative_label("g")
            .render();
        assert!(svg.starts_with("<svg"));
        let elements = balanced(&svg);
        assert_eq!(elements.iter().filter(|e| *e == "polyline").count(), 4);
        for name in [
            "GB",
            "DE",
            "empty",
            "task starts",
            "grams saved",
            "gCO2/kWh",
        ] {
            assert!(svg.contains(&format!(">{name}<")), "{name} missing");
        }
        assert!(svg.contains("Carbon &lt;intensity&gt; &amp; savings"));
        // Weekly ticks over a month, at whole days.
        assert!(
            svg.contains(">2020-01-02<") && svg.contains(">2020-01-09<"),
            "{svg}"
        );
        // One marker drawn (the NaN one is skipped).
        assert_eq!(svg.matches(r#"r="3""#).count(), 1);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn degenerate_inputs_still_render() {
        for svg in [
            Svg::new("nothing").render(),
            Svg::new("one point").line("a", vec![(5, 1.0)]).render(),
            Svg::new("flat")
                .size(10, 10)
                .line("a", vec![(0, 0.0), (1, 0.0)])
                .render(),
            Svg::new("year")
                .line(
                    "a",
                    vec![(1_577_836_800_000, 1.0), (1_609_459_200_000, 2.0)],
                )
                .render(),
        ] {
            balanced(&svg);
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
        let year = Svg::new("year")
            .line(
                "a",
                vec![(1_577_836_800_000, 1.0), (1_609_459_200_000, -2.0)],
            )
            .render();
        assert!(
            year.contains(">2020-01<") && year.contains(">2020-07<"),
            "{year}"
        );
    }

    #[test]
    fn writes_a_file() {
        let path = std::env::temp_dir().join(format!("gm-plot-{}.svg", std::process::id()));
        Svg::new("t")
            .line("a", vec![(0, 1.0)])
            .write(&path)
            .unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().starts_with("<svg"));
        std::fs::remove_file(path).ok();
        assert!(Svg::new("t").write("/nonexistent/dir/x.svg").is_err());
    }
}
