//! An SVG chart over a UTC time axis, drawn with plotters: line series
//! (say, the intensity of each region), events summarised as counts per
//! day or hour (task starts: thousands of dots would hide the lines), and
//! cumulative series (grams saved), each in its own panel with its own
//! title above it (so no two labels can overlap), axes and a legend.
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
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Colours for series, in order (the Tableau 10 palette).
const PALETTE: &[(u8, u8, u8)] = &[
    (0x4e, 0x79, 0xa7),
    (0xf2, 0x8e, 0x2b),
    (0xe1, 0x57, 0x59),
    (0x76, 0xb7, 0xb2),
    (0x59, 0xa1, 0x4f),
    (0xed, 0xc9, 0x48),
    (0xb0, 0x7a, 0xa1),
    (0xff, 0x9d, 0xa7),
    (0x9c, 0x75, 0x5f),
    (0xba, 0xb0, 0xac),
];

type Drawn = Result<(), Box<dyn std::error::Error>>;

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

    /// Events at `(time, value)` (the value is not drawn): summarised as a
    /// count per day (per hour over a fortnight or less) in a panel of
    /// their own.
    pub fn markers(mut self, name: &str, points: impl IntoIterator<Item = (u64, f64)>) -> Self {
        self.markers.push(series(name, points));
        self
    }

    /// A line in the lowest panel (drawn only if there is one).
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
        let mut out = String::new();
        {
            let root =
                SVGBackend::with_string(&mut out, (self.width, self.height)).into_drawing_area();
            if let Err(e) = self.draw(&root) {
                tracing::warn!("drawing the chart: {e}");
            }
            let _ = root.present();
        }
        out
    }

    fn draw(&self, root: &DrawingArea<SVGBackend, Shift>) -> Drawn {
        root.fill(&WHITE)?;
        let root = root.titled(&self.title, ("sans-serif", 22))?;
        let (t0, t1) = self.time_range();
        let starts = self.markers.iter().any(|m| !m.points.is_empty());
        let cumulative = !self.cumulative.is_empty();
        // Heights in shares: the lines get the most room.
        let mut shares = vec![("lines", 5)];
        if starts {
            shares.push(("starts", 2));
        }
        if cumulative {
            shares.push(("cumulative", 3));
        }
        let total: i32 = shares.iter().map(|s| s.1).sum();
        let mut rest = root;
        let height = i32::try_from(rest.dim_in_pixel().1).unwrap_or(i32::MAX);
        for (i, (panel, share)) in shares.iter().enumerate() {
            let (area, below) = if i + 1 == shares.len() {
                (rest.clone(), rest.clone())
            } else {
                rest.split_vertically(height * share / total)
            };
            match *panel {
                "lines" => self.lines_panel(&area, t0, t1)?,
                "starts" => self.starts_panel(&area, t0, t1)?,
                _ => lines_in(
                    &area,
                    &self.cumulative_label,
                    &self.cumulative,
                    t0,
                    t1,
                    self.lines.len(),
                )?,
            }
            rest = below;
        }
        Ok(())
    }

    /// The span of every series, at least a day.
    fn time_range(&self) -> (f64, f64) {
        let all = || {
            self.lines
                .iter()
                .chain(&self.markers)
                .chain(&self.cumulative)
                .flat_map(|s| s.points.iter().map(|p| p.0))
        };
        let t0 = all().min().unwrap_or(0);
        let t1 = all().max().unwrap_or(0);
        let pad = DAY_MS.saturating_sub(t1 - t0) / 2;
        (t0.saturating_sub(pad) as f64, (t1 + pad) as f64)
    }

    fn lines_panel(&self, area: &DrawingArea<SVGBackend, Shift>, t0: f64, t1: f64) -> Drawn {
        lines_in(area, &self.y_label, &self.lines, t0, t1, 0)
    }

    fn starts_panel(&self, area: &DrawingArea<SVGBackend, Shift>, t0: f64, t1: f64) -> Drawn {
        let bin = if t1 - t0 > 14.0 * DAY_MS as f64 {
            DAY_MS
        } else {
            DAY_MS / 24
        };
        let unit = if bin == DAY_MS { "day" } else { "hour" };
        let mut counts = std::collections::BTreeMap::new();
        let mut all = 0;
        for m in &self.markers {
            for (t, _) in &m.points {
                *counts.entry(t - t % bin).or_insert(0u32) += 1;
                all += 1;
            }
        }
        let names: Vec<&str> = self.markers.iter().map(|m| m.name.as_str()).collect();
        let caption = format!("{} per {unit} ({all} in all)", names.join(", "));
        let peak = counts.values().copied().max().unwrap_or(1).max(1);
        let mut chart = panel(
            area,
            &caption,
            (t0, t1),
            (0.0, f64::from(peak) * 1.1),
            3,
            &|y| format!("{y:.0}"),
        )?;
        let colour = palette(self.lines.len() + 1);
        chart.draw_series(counts.iter().map(|(t, n)| {
            let x0 = *t as f64;
            Rectangle::new(
                [(x0, 0.0), (x0 + bin as f64, f64::from(*n))],
                colour.filled(),
            )
        }))?;
        Ok(())
    }
}

/// A panel's chart: its caption above it, a time axis and a value axis
/// with `y_labels` labels, and a light grid.
fn panel<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
    (t0, t1): (f64, f64),
    (lo, hi): (f64, f64),
    y_labels: usize,
    y_label: &dyn Fn(&f64) -> String,
) -> Result<
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    Box<dyn std::error::Error>,
> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 15))
        .margin(8)
        .margin_right(36)
        .x_label_area_size(28)
        .y_label_area_size(64)
        .build_cartesian_2d(t0..t1, lo..hi)?;
    let span = t1 - t0;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 13))
        .x_labels(8)
        .y_labels(y_labels)
        .x_label_formatter(&|x| date_label(*x, span))
        .y_label_formatter(y_label)
        .draw()?;
    Ok(chart)
}

/// A panel of line series under a caption, with its legend.
fn lines_in(
    area: &DrawingArea<SVGBackend, Shift>,
    caption: &str,
    series: &[Series],
    t0: f64,
    t1: f64,
    first_colour: usize,
) -> Drawn {
    let values = || series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let lo = values().fold(f64::INFINITY, f64::min);
    let hi = values().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = match (lo.is_finite(), hi.is_finite()) {
        (true, true) if hi > lo => (lo.min(0.0), hi + (hi - lo.min(0.0)) * 0.05),
        (true, true) => (lo.min(0.0), lo.max(0.0) + 1.0),
        _ => (0.0, 1.0),
    };
    let mut chart = panel(area, caption, (t0, t1), (lo, hi), 5, &|y| number(*y))?;
    for (i, s) in series.iter().enumerate() {
        let colour = palette(first_colour + i);
        chart
            .draw_series(LineSeries::new(
                s.points.iter().map(|(t, v)| (*t as f64, *v)),
                colour.stroke_width(2),
            ))?
            .label(s.name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
            });
    }
    if !series.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()?;
    }
    Ok(())
}

fn palette(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

/// A time tick: the date, or the month over more than two months.
fn date_label(ms: f64, span_ms: f64) -> String {
    let c = Civil::from_ms(ms.max(0.0) as u64);
    if span_ms > 61.0 * DAY_MS as f64 {
        format!("{:04}-{:02}", c.year, c.month)
    } else {
        format!("{:04}-{:02}-{:02}", c.year, c.month, c.day)
    }
}

/// A value label: whole numbers when large, three significant digits else.
fn number(v: f64) -> String {
    if v.abs() >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{}", (v * 1000.0).round() / 1000.0)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of every `<text>` element, trimmed.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let body = &t[t.find('>')? + 1..];
                Some(body[..body.find("</text>")?].trim().to_string())
            })
            .collect()
    }

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
    fn draws_a_well_formed_chart_with_every_series_named() {
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
        balanced(&svg);
        let texts = texts(&svg);
        for name in ["GB", "DE", "empty", "grams saved", "gCO2/kWh", "g"] {
            assert!(texts.iter().any(|t| t == name), "{name} missing: {texts:?}");
        }
        assert!(
            texts
                .iter()
                .any(|t| t == "Carbon &lt;intensity&gt; &amp; savings"),
            "{texts:?}"
        );
        // Dates on the time axis over a month, at whole days.
        assert!(texts.iter().any(|t| t.starts_with("2020-01-")), "{texts:?}");
        // Starts are summarised, not drawn one by one: the NaN one is
        // skipped, the other counted.
        assert!(
            texts
                .iter()
                .any(|t| t == "task starts per hour (1 in all)"
                    || t == "task starts per day (1 in all)"),
            "{texts:?}"
        );
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn three_thousand_starts_are_a_summary_not_three_thousand_dots() {
        let t0 = 1_577_836_800_000;
        let starts = (0..3000u64).map(|i| (t0 + i * 3 * 3_600_000, 200.0));
        let svg = Svg::new("a year")
            .y_label("grid intensity, gCO2/kWh (average, location-based)")
            .line("GB", (0..365u64).map(|d| (t0 + d * DAY_MS, 200.0)))
            .markers("job starts", starts)
            .render();
        balanced(&svg);
        assert!(
            texts(&svg)
                .iter()
                .any(|t| t == "job starts per day (3000 in all)"),
            "{:?}",
            texts(&svg)
        );
        // A bar per day, not an element per start.
        assert!(
            svg.matches("<rect").count() < 500,
            "{}",
            svg.matches("<rect").count()
        );
        // The long axis title is a panel caption (horizontal), not a
        // rotated label that could run off the picture.
        assert!(!svg.contains("rotate("), "a rotated label");
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
        let ticks = texts(&year);
        assert!(ticks.iter().any(|t| t == "2020-07"), "{ticks:?}");
        assert!(
            !ticks.iter().any(|t| t.starts_with("2020-01-")),
            "months, not days, over a year: {ticks:?}"
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
