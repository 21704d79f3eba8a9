//! Manifest errors that name the file, the key and what is wrong.

use std::fmt;
use std::path::{Path, PathBuf};

/// A mistake in a manifest or runtime-config file.
///
/// Displayed as `file[:line]: `key`: message`, e.g.
/// ``spin.toml:7: `component.web.sqlite_databses`: unknown field ...``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The file as the user named it.
    pub file: PathBuf,
    /// 1-based line, when the parser knows it.
    pub line: Option<usize>,
    /// Dotted key path (`component.web.source`); `.` for the whole file.
    pub key: String,
    /// What is wrong, and where useful what to do instead.
    pub message: String,
}

impl ManifestError {
    /// An error about `key` in `file`, without a line number.
    pub fn new(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: None,
            key: key.into(),
            message: message.into(),
        }
    }

    /// Converts a serde error on `text`, keeping the key path and the line.
    pub fn from_toml(
        file: &Path,
        text: &str,
        err: serde_path_to_error::Error<toml::de::Error>,
    ) -> Self {
        let key = err.path().to_string();
        let inner = err.into_inner();
        let line = inner
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        Self {
            file: file.to_path_buf(),
            line,
            key: if key.is_empty() { ".".into() } else { key },
            message: inner.message().trim().to_string(),
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.key == "." {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": `{}`: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ManifestError {}
