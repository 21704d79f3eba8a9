//! Carbon-aware scheduling building blocks: real grid-intensity traces,
//! forecasts of them, the perfect-foresight bound on shifting, and charts.
//! The provider replays traces with it; `greenmesh simulate` (in
//! `greenmesh-bench`) measures the coordinator against its oracle.
//!
//! # Layout
//!
//! - [`trace`]: [`Trace`], a carbon-intensity series on a constant step,
//!   loaded from `data/carbon/*.csv`; means, replay onto today's calendar.
//! - [`forecast`]: [`ForecastPoint`] (the Carbon Aware SDK's JSON shape);
//!   forecasts with seeded, horizon-growing error, daily persistence from
//!   the past only, and the live replay a provider reports.
//! - [`oracle`]: run-now versus best-start (and best-region) costs of jobs,
//!   uniform job arrivals, savings.
//! - [`plot`]: the replay chart over time (SVG, drawn with plotters).
//! - `civil` (UTC calendar arithmetic) and `rng` (seeded SplitMix64 and
//!   normal draws) serve the others.
//!
//! Everything here is pure and deterministic for a given seed: no clocks, no
//! I/O beyond reading a trace and writing a chart.

pub mod civil;
pub mod forecast;
pub mod oracle;
pub mod plot;
pub mod rng;
pub mod trace;

pub use forecast::ForecastPoint;
pub use trace::Trace;
