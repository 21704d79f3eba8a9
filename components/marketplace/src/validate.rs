//! Checks on what nodes send, with messages naming the field.

use crate::greenmesh::marketplace::types::{Beat, EnergyState, Registration};

/// Capability and task names: lower-case letters, digits, `-` and `_`.
pub fn is_task_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A 32-byte ed25519 public key in hex.
pub fn is_public_key(hex: &str) -> bool {
    hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// Datasets a node may declare.
pub const MAX_DATASETS: usize = 32;

/// Forecast points a node may report (a week at 15-minute steps).
pub const MAX_FORECAST_POINTS: usize = 672;

fn energy(e: &EnergyState, field: &str) -> Result<(), String> {
    if !(0.0..=1.0).contains(&e.clean_share) {
        return Err(format!("{field}.clean_share must be between 0 and 1"));
    }
    if !e.carbon_intensity.is_finite() || e.carbon_intensity < 0.0 {
        return Err(format!(
            "{field}.carbon_intensity must be a non-negative number of gCO2/kWh"
        ));
    }
    for (source, share) in &e.sources {
        if source.is_empty() || !(0.0..=1.0).contains(share) {
            return Err(format!(
                "{field}.sources: each source needs a name and a share between 0 and 1"
            ));
        }
    }
    if e.forecast.len() > MAX_FORECAST_POINTS {
        return Err(format!(
            "{field}.forecast has {} points; at most {MAX_FORECAST_POINTS}",
            e.forecast.len()
        ));
    }
    for (i, p) in e.forecast.iter().enumerate() {
        if !p.value.is_finite() || p.value < 0.0 || p.duration_min == 0 {
            return Err(format!(
                "{field}.forecast[{i}] needs a non-negative value and a duration of at least a minute"
            ));
        }
    }
    Ok(())
}

/// Checks a registration.
pub fn registration(r: &Registration) -> Result<(), String> {
    if r.name.trim().is_empty() || r.name.len() > 100 {
        return Err("name must be 1 to 100 characters".into());
    }
    if r.region.trim().is_empty() || r.region.len() > 64 {
        return Err("region must be 1 to 64 characters".into());
    }
    if !is_public_key(&r.public_key) {
        return Err("public_key must be a 32-byte ed25519 key in hex (64 characters)".into());
    }
    if r.capabilities.is_empty() {
        return Err("capabilities must list at least one micro-task".into());
    }
    for (i, c) in r.capabilities.iter().enumerate() {
        if !is_task_name(&c.name) {
            return Err(format!(
                "capabilities[{i}].name must be lower-case letters, digits, '-' or '_'"
            ));
        }
        if !c.price.is_finite() || c.price < 0.0 {
            return Err(format!(
                "capabilities[{i}].price must be a non-negative number of credits"
            ));
        }
        if let Some(h) = &c.sha256 {
            let hex = h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex {
                return Err(format!(
                    "capabilities[{i}].sha256 must be the kernel's SHA-256 in lower-case hex (64 characters)"
                ));
            }
        }
    }
    if r.capacity.cpu_cores == 0 || r.capacity.memory_mb == 0 {
        return Err("capacity.cpu_cores and capacity.memory_mb must be positive".into());
    }
    if r.datasets.len() > MAX_DATASETS {
        return Err(format!("datasets: at most {MAX_DATASETS}"));
    }
    for (i, d) in r.datasets.iter().enumerate() {
        if !is_task_name(&d.name) {
            return Err(format!(
                "datasets[{i}].name must be lower-case letters, digits, '-' or '_'"
            ));
        }
        if r.datasets[..i].iter().any(|o| o.name == d.name) {
            return Err(format!("datasets[{i}]: {} is listed twice", d.name));
        }
        if d.features == 0 || d.classes < 2 || d.rows == 0 {
            return Err(format!(
                "datasets[{i}] needs at least one feature, two classes and one row"
            ));
        }
    }
    for t in &r.allowed_tasks {
        if t != "*" && !is_task_name(t) {
            return Err(format!("allowed_tasks: {t:?} is not a task name or `*`"));
        }
    }
    energy(&r.energy, "energy")
}

/// Checks a heartbeat.
pub fn beat(b: &Beat) -> Result<(), String> {
    if !(0.0..=1.0).contains(&b.load) {
        return Err("load must be between 0 and 1".into());
    }
    if b.latency_ms.is_some_and(|l| !l.is_finite() || l < 0.0) {
        return Err("latency_ms must be a non-negative number of milliseconds".into());
    }
    match &b.energy {
        Some(e) => energy(e, "energy"),
        None => Ok(()),
    }
}
