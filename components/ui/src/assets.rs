//! The dashboard's files, compiled in: every file of `assets/` (a test
//! checks the table and the folder agree).

/// One served file.
#[derive(Debug)]
pub struct Asset {
    /// Path under `/ui/`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $type:literal),* $(,)?) => {
        /// Every served file.
        pub const ASSETS: &[Asset] = &[
            $(Asset {
                path: $path,
                content_type: $type,
                bytes: include_bytes!(concat!("../assets/", $path)),
            }),*
        ];
    };
}

assets! {
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "app.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "format.js" => "text/javascript; charset=utf-8",
    "chart.js" => "text/javascript; charset=utf-8",
    "pages/network.js" => "text/javascript; charset=utf-8",
    "pages/impact.js" => "text/javascript; charset=utf-8",
    "pages/governance.js" => "text/javascript; charset=utf-8",
    "pages/tasks.js" => "text/javascript; charset=utf-8",
    "pages/nodes.js" => "text/javascript; charset=utf-8",
    "pages/training.js" => "text/javascript; charset=utf-8",
    "pages/replay.js" => "text/javascript; charset=utf-8",
    "vendor/preact.mjs" => "text/javascript; charset=utf-8",
    "vendor/hooks.mjs" => "text/javascript; charset=utf-8",
    "vendor/htm.mjs" => "text/javascript; charset=utf-8",
    "vendor/uPlot.esm.js" => "text/javascript; charset=utf-8",
    "vendor/uPlot.min.css" => "text/css; charset=utf-8",
    "vendor/LICENSE-preact" => "text/plain; charset=utf-8",
    "vendor/LICENSE-htm" => "text/plain; charset=utf-8",
    "vendor/LICENSE-uplot" => "text/plain; charset=utf-8",
}

/// The file at `path` under `/ui/`.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}
