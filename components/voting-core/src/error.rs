//! Why a voting call failed; one variant per WIT `error` case.

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// No poll for that task.
    NotFound(String),
    /// The poll's window has closed.
    Closed(String),
    /// This voter may not vote here.
    NotAllowed(String),
    /// The request itself is malformed.
    Invalid(String),
    /// The database failed (the message says which statement and why).
    Storage(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotFound(m) => write!(f, "not found: {m}"),
            Error::Closed(m) => write!(f, "closed: {m}"),
            Error::NotAllowed(m) => write!(f, "not allowed: {m}"),
            Error::Invalid(m) => write!(f, "invalid: {m}"),
            Error::Storage(m) => write!(f, "storage: {m}"),
        }
    }
}

impl std::error::Error for Error {}
