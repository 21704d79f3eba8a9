//! Guest values to Postgres parameters and Postgres results to guest
//! values, in the binary wire format.
//!
//! A parameter is written as the type the server inferred for its
//! placeholder, when the guest's value converts losslessly (an `int64` for
//! an `INTEGER` column, a `str` for `JSONB`); otherwise the statement fails
//! with `bad-parameter` naming both types. A result is decoded from its
//! column's type; types the WIT has no case for come back `unsupported`
//! with their raw bytes.

use crate::capability::bindings::pg4::{DbDataType, DbValue, Error, ParameterValue};
use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

/// One parameter, written as whatever its placeholder's type is.
#[derive(Debug)]
pub enum Param {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    Null,
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

fn is_text(ty: &Type) -> bool {
    [
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UNKNOWN,
    ]
    .contains(ty)
}

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let mismatch = || -> BoxError {
            format!("a {} parameter cannot fill a {ty} placeholder", self.kind()).into()
        };
        match self {
            Param::Null => return Ok(IsNull::Yes),
            Param::Bool(b) if *ty == Type::BOOL => out.put_u8(u8::from(*b)),
            Param::Bool(b) if *ty == Type::INT2 => out.put_i16(i16::from(*b)),
            Param::Bool(b) if *ty == Type::INT4 => out.put_i32(i32::from(*b)),
            Param::Bool(b) if *ty == Type::INT8 => out.put_i64(i64::from(*b)),
            Param::Int(v) if *ty == Type::INT8 => out.put_i64(*v),
            Param::Int(v) if *ty == Type::INT4 => out.put_i32(i32::try_from(*v)?),
            Param::Int(v) if *ty == Type::INT2 => out.put_i16(i16::try_from(*v)?),
            Param::Int(v) if *ty == Type::FLOAT8 => out.put_f64(*v as f64),
            Param::Int(v) if *ty == Type::FLOAT4 => out.put_f32(*v as f32),
            Param::Int(v) if *ty == Type::BOOL => out.put_u8(u8::from(*v != 0)),
            Param::Int(v) if is_text(ty) => out.put_slice(v.to_string().as_bytes()),
            Param::Float(v) if *ty == Type::FLOAT8 => out.put_f64(*v),
            Param::Float(v) if *ty == Type::FLOAT4 => out.put_f32(*v as f32),
            Param::Float(v) if is_text(ty) => out.put_slice(v.to_string().as_bytes()),
            Param::Text(s) if is_text(ty) || *ty == Type::JSON => out.put_slice(s.as_bytes()),
            // JSONB's binary form: a version byte, then the text.
            Param::Text(s) if *ty == Type::JSONB => {
                out.put_u8(1);
                out.put_slice(s.as_bytes());
            }
            Param::Bytes(b) if *ty == Type::BYTEA => out.put_slice(b),
            _ => return Err(mismatch()),
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl Param {
    /// The type this parameter declares when the server cannot infer one
    /// (a null leaves it to the server: type oid 0).
    pub fn declared_type(&self) -> Type {
        match self {
            Param::Bool(_) => Type::BOOL,
            Param::Int(_) => Type::INT8,
            Param::Float(_) => Type::FLOAT8,
            Param::Text(_) => Type::TEXT,
            Param::Bytes(_) => Type::BYTEA,
            Param::Null => Type::new(
                "unspecified".into(),
                0,
                tokio_postgres::types::Kind::Pseudo,
                "pg_catalog".into(),
            ),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Param::Bool(_) => "boolean",
            Param::Int(_) => "integer",
            Param::Float(_) => "floating-point",
            Param::Text(_) => "str",
            Param::Bytes(_) => "binary",
            Param::Null => "null",
        }
    }
}

/// The guest's parameters, or `bad-parameter` for a kind not supported.
pub fn params(values: Vec<ParameterValue>) -> Result<Vec<Param>, Error> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            Ok(match v {
                ParameterValue::Boolean(b) => Param::Bool(b),
                ParameterValue::Int8(v) => Param::Int(v.into()),
                ParameterValue::Int16(v) => Param::Int(v.into()),
                ParameterValue::Int32(v) => Param::Int(v.into()),
                ParameterValue::Int64(v) => Param::Int(v),
                ParameterValue::Floating32(v) => Param::Float(v.into()),
                ParameterValue::Floating64(v) => Param::Float(v),
                ParameterValue::Str(s) => Param::Text(s),
                ParameterValue::Jsonb(b) => {
                    Param::Text(String::from_utf8(b).map_err(|_| {
                        Error::BadParameter(format!("parameter {}: jsonb is not UTF-8", i + 1))
                    })?)
                }
                ParameterValue::Binary(b) => Param::Bytes(b),
                ParameterValue::DbNull => Param::Null,
                _ => {
                    return Err(Error::BadParameter(format!(
                        "parameter {}: only booleans, integers, floats, text, jsonb, binary and null are supported",
                        i + 1
                    )))
                }
            })
        })
        .collect()
}

/// `params` as tokio-postgres takes them.
pub fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// A column's value as its raw bytes (`None` for SQL `NULL`).
struct Raw<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// The WIT's name for a column type.
pub fn data_type(ty: &Type) -> DbDataType {
    match *ty {
        Type::BOOL => DbDataType::Boolean,
        Type::CHAR => DbDataType::Int8,
        Type::INT2 => DbDataType::Int16,
        Type::INT4 => DbDataType::Int32,
        Type::INT8 => DbDataType::Int64,
        Type::FLOAT4 => DbDataType::Floating32,
        Type::FLOAT8 => DbDataType::Floating64,
        Type::BYTEA => DbDataType::Binary,
        Type::JSONB => DbDataType::Jsonb,
        Type::NUMERIC => DbDataType::Decimal,
        _ if is_text(ty) || *ty == Type::JSON => DbDataType::Str,
        _ => DbDataType::Other(ty.name().to_string()),
    }
}

fn fixed<const N: usize>(raw: &[u8]) -> Result<[u8; N], Error> {
    raw.try_into()
        .map_err(|_| Error::ValueConversionFailed(format!("expected {N} bytes, got {}", raw.len())))
}

/// Column `i` of `row` as a guest value.
pub fn decode(row: &tokio_postgres::Row, i: usize) -> Result<DbValue, Error> {
    let ty = row.columns()[i].type_().clone();
    let Raw(raw) = row
        .try_get::<_, Raw>(i)
        .map_err(|e| Error::ValueConversionFailed(e.to_string()))?;
    let Some(raw) = raw else {
        return Ok(DbValue::DbNull);
    };
    let text = || {
        String::from_utf8(raw.to_vec())
            .map_err(|_| Error::ValueConversionFailed(format!("a {ty} value is not UTF-8")))
    };
    Ok(match ty {
        Type::BOOL => DbValue::Boolean(fixed::<1>(raw)?[0] != 0),
        Type::CHAR => DbValue::Int8(fixed::<1>(raw)?[0] as i8),
        Type::INT2 => DbValue::Int16(i16::from_be_bytes(fixed(raw)?)),
        Type::INT4 => DbValue::Int32(i32::from_be_bytes(fixed(raw)?)),
        Type::INT8 => DbValue::Int64(i64::from_be_bytes(fixed(raw)?)),
        Type::FLOAT4 => DbValue::Floating32(f32::from_be_bytes(fixed(raw)?)),
        Type::FLOAT8 => DbValue::Floating64(f64::from_be_bytes(fixed(raw)?)),
        Type::BYTEA => DbValue::Binary(raw.to_vec()),
        Type::JSONB => DbValue::Jsonb(raw.get(1..).unwrap_or_default().to_vec()),
        Type::NUMERIC => DbValue::Decimal(numeric_text(raw)?),
        _ if is_text(&ty) || ty == Type::JSON => DbValue::Str(text()?),
        _ => DbValue::Unsupported(raw.to_vec()),
    })
}

/// `NUMERIC`'s binary form (base-10000 digits, a weight, a sign and a
/// display scale) as decimal text, e.g. `-12.50`.
pub fn numeric_text(raw: &[u8]) -> Result<String, Error> {
    let bad = || Error::ValueConversionFailed("a malformed NUMERIC value".into());
    let word = |at: usize| -> Result<u16, Error> {
        Ok(u16::from_be_bytes(
            raw.get(at..at + 2)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        ))
    };
    let (ndigits, weight, sign, dscale) = (word(0)? as usize, word(2)? as i16, word(4)?, word(6)?);
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        0x0000 | 0x4000 => {}
        _ => return Err(bad()),
    }
    let digits: Vec<u16> = (0..ndigits)
        .map(|k| word(8 + 2 * k))
        .collect::<Result<_, _>>()?;
    // The integer part: groups 0..=weight; the fraction: the rest.
    let mut int = String::new();
    for g in 0..=i32::from(weight).max(-1) {
        let d = digits.get(g as usize).copied().unwrap_or(0);
        if int.is_empty() {
            if d != 0 {
                int.push_str(&d.to_string());
            }
        } else {
            int.push_str(&format!("{d:04}"));
        }
    }
    if int.is_empty() {
        int.push('0');
    }
    let mut frac = String::new();
    let first_frac = (i32::from(weight) + 1).max(0);
    // Groups between the point and the first stored fractional group.
    for _ in 0..(-(i32::from(weight) + 1)).max(0) {
        frac.push_str("0000");
    }
    for d in digits.iter().skip(first_frac as usize) {
        frac.push_str(&format!("{d:04}"));
    }
    let scale = dscale as usize;
    while frac.len() < scale {
        frac.push('0');
    }
    frac.truncate(scale);
    let sign = if sign == 0x4000 { "-" } else { "" };
    Ok(if scale == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NUMERIC's wire form of `digits` with `weight`, `sign` and `dscale`.
    fn numeric(digits: &[u16], weight: i16, sign: u16, dscale: u16) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [digits.len() as u16, weight as u16, sign, dscale] {
            v.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_read_as_their_decimal_text() {
        assert_eq!(
            numeric_text(&numeric(&[12, 5000], 0, 0, 2)).unwrap(),
            "12.50"
        );
        assert_eq!(
            numeric_text(&numeric(&[1, 2345], 1, 0x4000, 0)).unwrap(),
            "-12345"
        );
        assert_eq!(numeric_text(&numeric(&[5], -1, 0, 4)).unwrap(), "0.0005");
        assert_eq!(
            numeric_text(&numeric(&[7], -2, 0, 8)).unwrap(),
            "0.00000007"
        );
        assert_eq!(numeric_text(&numeric(&[], 0, 0, 0)).unwrap(), "0");
        assert_eq!(numeric_text(&numeric(&[1], 2, 0, 0)).unwrap(), "100000000");
        assert_eq!(numeric_text(&numeric(&[], 0, 0xC000, 0)).unwrap(), "NaN");
        assert!(numeric_text(&[0, 1]).is_err());
    }

    #[test]
    fn a_parameter_takes_its_placeholder_s_type_or_says_why_not() {
        let mut out = BytesMut::new();
        Param::Int(7).to_sql(&Type::INT4, &mut out).unwrap();
        assert_eq!(&out[..], &7i32.to_be_bytes());
        out.clear();
        Param::Int(7).to_sql(&Type::FLOAT8, &mut out).unwrap();
        assert_eq!(&out[..], &7f64.to_be_bytes());
        out.clear();
        Param::Text("{\"a\":1}".into())
            .to_sql(&Type::JSONB, &mut out)
            .unwrap();
        assert_eq!(&out[..], b"\x01{\"a\":1}");
        out.clear();
        assert!(Param::Int(1 << 40).to_sql(&Type::INT4, &mut out).is_err());
        let Err(e) = Param::Text("x".into()).to_sql(&Type::INT8, &mut out) else {
            panic!("a str filled an int8");
        };
        assert!(
            e.to_string().contains("str parameter cannot fill a int8"),
            "{e}"
        );
        assert!(matches!(
            Param::Null.to_sql(&Type::INT8, &mut out),
            Ok(IsNull::Yes)
        ));
    }
}
