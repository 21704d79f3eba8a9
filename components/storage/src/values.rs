//! The seam's values, rows and errors: SQLite's shapes (what the
//! components were written against), filled from either backend.
//!
//! From Postgres: booleans read as integers 0 and 1 (as SQLite stores
//! them), `NUMERIC` (e.g. `SUM` of integers) as an integer when whole and
//! a real otherwise, `JSONB` as text.

/// A parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

impl Value {
    pub(crate) fn to_sqlite(&self) -> spin_sdk::sqlite::Value {
        use spin_sdk::sqlite::Value as S;
        match self {
            Value::Integer(i) => S::Integer(*i),
            Value::Real(f) => S::Real(*f),
            Value::Text(s) => S::Text(s.clone()),
            Value::Blob(b) => S::Blob(b.clone()),
            Value::Null => S::Null,
        }
    }

    pub(crate) fn to_postgres(&self) -> spin_sdk::pg4::ParameterValue {
        use spin_sdk::pg4::ParameterValue as P;
        match self {
            Value::Integer(i) => P::Int64(*i),
            Value::Real(f) => P::Floating64(*f),
            Value::Text(s) => P::Str(s.clone()),
            Value::Blob(b) => P::Binary(b.clone()),
            Value::Null => P::DbNull,
        }
    }

    fn from_sqlite(v: spin_sdk::sqlite::Value) -> Value {
        use spin_sdk::sqlite::Value as S;
        match v {
            S::Integer(i) => Value::Integer(i),
            S::Real(f) => Value::Real(f),
            S::Text(s) => Value::Text(s),
            S::Blob(b) => Value::Blob(b),
            S::Null => Value::Null,
        }
    }

    fn from_postgres(v: spin_sdk::pg4::DbValue) -> Value {
        use spin_sdk::pg4::DbValue as D;
        match v {
            D::Boolean(b) => Value::Integer(i64::from(b)),
            D::Int8(i) => Value::Integer(i.into()),
            D::Int16(i) => Value::Integer(i.into()),
            D::Int32(i) => Value::Integer(i.into()),
            D::Int64(i) => Value::Integer(i),
            D::Floating32(f) => Value::Real(f.into()),
            D::Floating64(f) => Value::Real(f),
            D::Str(s) => Value::Text(s),
            D::Binary(b) => Value::Blob(b),
            D::Jsonb(b) => Value::Text(String::from_utf8_lossy(&b).into_owned()),
            D::Decimal(d) => decimal(&d),
            D::DbNull => Value::Null,
            other => Value::Text(format!("{other:?}")),
        }
    }
}

/// Decimal text as an integer when whole, else a real.
pub(crate) fn decimal(text: &str) -> Value {
    match text.parse::<i64>() {
        Ok(i) => Value::Integer(i),
        Err(_) => match text.parse::<f64>() {
            Ok(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::Integer(f as i64),
            Ok(f) => Value::Real(f),
            Err(_) => Value::Text(text.to_string()),
        },
    }
}

/// One row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowResult {
    pub values: Vec<Value>,
}

impl RowResult {
    /// Column `index` as `T`, if it is one (a real column also reads as
    /// `f64` when it holds an integer).
    pub fn get<'a, T: Decode<'a>>(&'a self, index: usize) -> Option<T> {
        self.values.get(index).and_then(T::decode)
    }
}

/// What a statement answered.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<RowResult>,
}

impl QueryResult {
    pub(crate) fn from_sqlite(r: spin_sdk::sqlite::QueryResult) -> Self {
        QueryResult {
            columns: r.columns,
            rows: r
                .rows
                .into_iter()
                .map(|row| RowResult {
                    values: row.values.into_iter().map(Value::from_sqlite).collect(),
                })
                .collect(),
        }
    }

    pub(crate) fn from_postgres(r: spin_sdk::pg4::RowSet) -> Self {
        QueryResult {
            columns: r.columns.into_iter().map(|c| c.name).collect(),
            rows: r
                .rows
                .into_iter()
                .map(|row| RowResult {
                    values: row.into_iter().map(Value::from_postgres).collect(),
                })
                .collect(),
        }
    }
}

/// A column value read as a Rust type.
pub trait Decode<'a>: Sized {
    fn decode(value: &'a Value) -> Option<Self>;
}

impl<'a> Decode<'a> for &'a str {
    fn decode(value: &'a Value) -> Option<Self> {
        match value {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl<'a> Decode<'a> for &'a [u8] {
    fn decode(value: &'a Value) -> Option<Self> {
        match value {
            Value::Blob(b) => Some(b),
            _ => None,
        }
    }
}

impl Decode<'_> for i64 {
    fn decode(value: &Value) -> Option<Self> {
        match value {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }
}

impl Decode<'_> for f64 {
    fn decode(value: &Value) -> Option<Self> {
        match value {
            Value::Real(f) => Some(*f),
            Value::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }
}

/// Why a statement failed.
#[derive(Debug)]
pub enum Error {
    Sqlite(spin_sdk::sqlite::Error),
    Postgres(String),
}

impl Error {
    /// `ALTER TABLE … ADD COLUMN` of a column that exists (a step run
    /// twice by replicas starting together).
    pub fn is_duplicate_column(&self) -> bool {
        match self {
            Error::Sqlite(spin_sdk::sqlite::Error::Io(m)) => m.contains("duplicate column name"),
            // SQLSTATE 42701: duplicate_column.
            Error::Postgres(m) => m.contains("42701"),
            Error::Sqlite(_) => false,
        }
    }

    /// Whether Postgres rolled the statement back because it lost a race
    /// with another: a deadlock's victim (SQLSTATE 40P01) or a
    /// serialization failure (40001).
    pub fn is_lost_race(&self) -> bool {
        match self {
            Error::Postgres(m) => has_sqlstate(m, &["40P01", "40001"]),
            Error::Sqlite(_) => false,
        }
    }

    /// Whether the same statement may succeed if tried again shortly: on
    /// Postgres a deadlock (SQLSTATE 40P01), a serialization failure
    /// (40001), a lock wait that ran out (55P03), the server's connection
    /// limit (53300) or its starting up (57P03), or no connection to be
    /// had at all; on SQLite a database another writer holds locked.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Sqlite(spin_sdk::sqlite::Error::Io(m)) => m.contains("database is locked"),
            Error::Sqlite(_) => false,
            Error::Postgres(m) => {
                self.is_lost_race()
                    || m.starts_with("opening the database")
                    || m.contains("ConnectionFailed")
                    || has_sqlstate(m, &["55P03", "53300", "57P03"])
            }
        }
    }
}

/// Whether the server's error in `message` has one of `codes` as its
/// SQLSTATE (its `code` field, not any text that happens to hold one).
fn has_sqlstate(message: &str, codes: &[&str]) -> bool {
    codes
        .iter()
        .any(|code| message.contains(&format!("code: \"{code}\"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadlock_or_an_unreachable_database_is_transient_and_a_constraint_is_not() {
        let deadlock = Error::Postgres(
            r#"Error::QueryFailed(QueryError::DbError(DbError { as-text: "db error", severity: "ERROR", code: "40P01", message: "deadlock detected" })) in UPDATE t SET x = 1"#
                .into(),
        );
        assert!(deadlock.is_transient());
        let unique = Error::Postgres(
            r#"Error::QueryFailed(QueryError::DbError(DbError { as-text: "db error", severity: "ERROR", code: "23505", message: "duplicate key value violates unique constraint \"t_pkey\"" })) in INSERT INTO t VALUES (40001)"#
                .into(),
        );
        assert!(!unique.is_transient(), "a value of 40001 is not the code");
        assert!(Error::Postgres(
            "opening the database: Error::ConnectionFailed(\"timed out\")".into()
        )
        .is_transient());
        assert!(
            Error::Sqlite(spin_sdk::sqlite::Error::Io("database is locked".into())).is_transient()
        );
        assert!(
            !Error::Sqlite(spin_sdk::sqlite::Error::Io("no such table: t".into())).is_transient()
        );
    }

    #[test]
    fn postgres_values_read_as_sqlite_stores_them() {
        use spin_sdk::pg4::DbValue as D;
        assert_eq!(Value::from_postgres(D::Boolean(true)), Value::Integer(1));
        assert_eq!(Value::from_postgres(D::Int32(-4)), Value::Integer(-4));
        assert_eq!(
            Value::from_postgres(D::Decimal("12".into())),
            Value::Integer(12)
        );
        assert_eq!(
            Value::from_postgres(D::Decimal("12.50".into())),
            Value::Real(12.5)
        );
        assert_eq!(
            Value::from_postgres(D::Decimal("3.000".into())),
            Value::Integer(3)
        );
        assert_eq!(
            Value::from_postgres(D::Jsonb(b"{\"a\":1}".to_vec())),
            Value::Text("{\"a\":1}".into())
        );
        assert_eq!(Value::from_postgres(D::DbNull), Value::Null);
    }

    #[test]
    fn rows_decode_like_spin_sqlite_rows() {
        let row = RowResult {
            values: vec![
                Value::Text("a".into()),
                Value::Integer(3),
                Value::Real(0.5),
                Value::Null,
            ],
        };
        assert_eq!(row.get::<&str>(0), Some("a"));
        assert_eq!(row.get::<i64>(1), Some(3));
        assert_eq!(row.get::<f64>(1), Some(3.0));
        assert_eq!(row.get::<f64>(2), Some(0.5));
        assert_eq!(row.get::<i64>(2), None);
        assert_eq!(row.get::<&str>(3), None);
        assert_eq!(row.get::<i64>(9), None);
    }
}
