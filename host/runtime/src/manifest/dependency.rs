//! Component dependencies as the manifest names them: the dependency key
//! (`"ns:pkg/iface@1.0.0"` or a plain name) and which capabilities a
//! dependency inherits from its parent.

use semver::Version;

/// Capability names usable in `inherit_configuration`, and the interfaces
/// (without version) each one governs. A dependency that does not inherit a
/// capability cannot reach these interfaces.
pub const CAPABILITY_SETS: &[(&str, &[&str])] = &[
    (
        "sqlite_databases",
        &[
            "fermyon:spin/sqlite",
            "spin:sqlite/sqlite",
            "fermyon:spin/mysql",
            "fermyon:spin/postgres",
            "spin:postgres/postgres",
        ],
    ),
    (
        "key_value_stores",
        &[
            "fermyon:spin/key-value",
            "spin:key-value/key-value",
            "wasi:keyvalue/store",
        ],
    ),
    (
        "variables",
        &[
            "fermyon:spin/variables",
            "spin:variables/variables",
            "wasi:config/store",
        ],
    ),
    (
        "allowed_outbound_hosts",
        &[
            "wasi:http/outgoing-handler",
            "fermyon:spin/redis",
            "fermyon:spin/mqtt",
            "wasi:sockets/tcp-create-socket",
            "wasi:sockets/udp-create-socket",
            "wasi:sockets/ip-name-lookup",
        ],
    ),
    ("environment", &["wasi:cli/environment"]),
];

/// A parsed dependency name from `[component.<id>.dependencies]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencyName {
    /// A plain kebab-case import name.
    Plain(String),
    /// `ns:pkg[/iface][@version]`.
    Package {
        package: String,
        interface: Option<String>,
        version: Option<Version>,
    },
}

impl DependencyName {
    /// Parses a dependency key, explaining a bad one.
    pub fn parse(name: &str) -> Result<Self, String> {
        if !name.contains(':') {
            let kebab = !name.is_empty()
                && name.split('-').all(|w| {
                    !w.is_empty()
                        && w.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                });
            return if kebab {
                Ok(Self::Plain(name.to_string()))
            } else {
                Err(format!("{name:?} is neither a kebab-case name nor `namespace:package[/interface][@version]`"))
            };
        }
        let (path, version) = match name.split_once('@') {
            Some((p, v)) => (
                p,
                Some(Version::parse(v).map_err(|e| format!("{name:?}: bad version: {e}"))?),
            ),
            None => (name, None),
        };
        let (package, interface) = match path.split_once('/') {
            Some((p, i)) => (p, Some(i.to_string())),
            None => (path, None),
        };
        if package.split(':').count() != 2 || package.split(':').any(str::is_empty) {
            return Err(format!("{name:?}: the package must be `namespace:name`"));
        }
        Ok(Self::Package {
            package: package.to_string(),
            interface,
            version,
        })
    }

    /// Whether this dependency satisfies the import called `import`.
    pub fn matches(&self, import: &str) -> bool {
        match self {
            Self::Plain(n) => n == import,
            Self::Package {
                package,
                interface,
                version,
            } => {
                let Ok(Self::Package {
                    package: ip,
                    interface: ii,
                    version: iv,
                }) = Self::parse(import)
                else {
                    return false;
                };
                *package == ip
                    && interface.as_ref().is_none_or(|i| Some(i) == ii.as_ref())
                    && version.as_ref().is_none_or(|v| Some(v) == iv.as_ref())
            }
        }
    }
}

/// Which capabilities a dependency inherits from its parent component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inherit {
    All,
    /// Only these capability sets (empty: none).
    Only(Vec<String>),
}

impl Inherit {
    /// Whether an import called `import` must be denied to the dependency.
    pub(crate) fn denies(&self, import: &str) -> bool {
        let unversioned = import.split('@').next().unwrap_or(import);
        CAPABILITY_SETS.iter().any(|(cap, interfaces)| {
            interfaces.contains(&unversioned)
                && match self {
                    Inherit::All => false,
                    Inherit::Only(caps) => !caps.iter().any(|c| c == cap),
                }
        })
    }
}
