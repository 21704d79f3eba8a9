//! `greenmesh blob put FILE` and `task submit --data FILE`: a file uploaded
//! as a blob (`POST /api/v1/blobs`), for inputs larger than a task body
//! holds. On a terminal a progress bar shows the bytes sent (on stderr, so
//! what is printed on stdout stays the reference alone).

use anyhow::Context;
use greenmesh_client::Client;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Uploads `file` as the user holding `token`; the coordinator's answer
/// (`{sha256, size, reference}`).
pub async fn put(
    client: &Client,
    token: &str,
    file: &Path,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let bar = ProgressBar::with_draw_target(Some(bytes.len() as u64), ProgressDrawTarget::stderr())
        .with_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ({eta} left)",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        )
        .with_prefix(format!(
            "uploading {}",
            file.file_name().unwrap_or_default().to_string_lossy()
        ));
    let shown = bar.clone();
    // Uploads are bounded by their size, not by the usual answer timeout.
    let reply = client
        .request("POST", "/api/v1/blobs")
        .bearer(token)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .timeout(timeout)
        .progress(Arc::new(move |sent| shown.set_position(sent)))
        .send()
        .await;
    bar.finish();
    Ok(reply?.into_result()?)
}

/// A media type for `file` by its extension (what the kernels read).
pub fn media_type(file: &Path) -> &'static str {
    match file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("wav") => "audio/wav",
        Some("json") => "application/json",
        Some("csv") => "text/csv",
        Some("txt") => "text/plain",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_follow_the_extension_in_any_case() {
        assert_eq!(media_type(Path::new("a/photo.PNG")), "image/png");
        assert_eq!(media_type(Path::new("speech.wav")), "audio/wav");
        assert_eq!(media_type(Path::new("noext")), "application/octet-stream");
    }
}
