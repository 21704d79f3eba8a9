//! SQLite's SQL as Postgres takes it: the components write one dialect
//! (SQLite's, which the embedded default runs unchanged) and this module
//! rewrites each statement for Postgres.
//!
//! What is rewritten, outside string literals, quoted names and comments:
//! - placeholders: `?` and `?NNN` become `$n` (a bare `?` takes the
//!   largest number so far plus one, as in SQLite);
//! - types: `INTEGER` → `BIGINT` (`INTEGER PRIMARY KEY AUTOINCREMENT` →
//!   `BIGSERIAL PRIMARY KEY`), `REAL` → `DOUBLE PRECISION`, `BLOB` →
//!   `BYTEA`;
//! - `INSERT OR IGNORE` → `INSERT … ON CONFLICT DO NOTHING` (before a
//!   `RETURNING`);
//! - `user` (a column name; reserved in Postgres) → `"user"`;
//! - SQLite's `a IS b` / `a IS NOT b` between values → `IS [NOT] DISTINCT
//!   FROM` (`IS [NOT] NULL`, `TRUE`, `FALSE` stay);
//! - `IFNULL` → `COALESCE`; the JSON functions `json`, `json_extract`,
//!   `json_set` and `json_each` → the `greenmesh_*` functions of
//!   [`POSTGRES_PRELUDE`], which behave as SQLite's do on JSON text;
//! - scalar `MAX(a, b, …)` / `MIN(a, b, …)` → `GREATEST` / `LEAST`;
//! - a subquery in `FROM` or `JOIN` without an alias gets one (Postgres
//!   before 16 requires it).
//!
//! [`POSTGRES_PRELUDE`] also defines `TOTAL` (SQLite's float sum, zero
//! for no rows) over numbers and booleans, so `TOTAL(status = 'done')`
//! counts as it does in SQLite, and `instr`.

/// Functions Postgres needs for the components' SQL, created once per
/// database before any migration (idempotent).
pub const POSTGRES_PRELUDE: &[&str] = &[
    "CREATE OR REPLACE FUNCTION greenmesh_total_step(double precision, double precision) RETURNS double precision
       LANGUAGE sql IMMUTABLE AS 'SELECT $1 + COALESCE($2, 0)'",
    "CREATE OR REPLACE FUNCTION greenmesh_total_step(double precision, boolean) RETURNS double precision
       LANGUAGE sql IMMUTABLE AS 'SELECT $1 + COALESCE($2::int, 0)'",
    "CREATE OR REPLACE AGGREGATE total(double precision) (SFUNC = greenmesh_total_step, STYPE = double precision, INITCOND = '0')",
    "CREATE OR REPLACE AGGREGATE total(boolean) (SFUNC = greenmesh_total_step, STYPE = double precision, INITCOND = '0')",
    "CREATE OR REPLACE FUNCTION instr(haystack text, needle text) RETURNS bigint
       LANGUAGE sql IMMUTABLE AS 'SELECT strpos(haystack, needle)::bigint'",
    // A path `$.a.b` as Postgres's text array `{a,b}`.
    "CREATE OR REPLACE FUNCTION greenmesh_json_path(path text) RETURNS text[]
       LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN path = '$' THEN ARRAY[]::text[]
                                                ELSE string_to_array(substr(path, 3), '.') END $$",
    // SQLite's json_extract answers a JSON string as its text and other
    // values as their JSON text.
    "CREATE OR REPLACE FUNCTION greenmesh_json_extract(doc text, path text) RETURNS text
       LANGUAGE sql IMMUTABLE AS $$
         SELECT CASE WHEN jsonb_typeof(v) = 'string' THEN v #>> '{}' ELSE v::text END
         FROM (SELECT doc::jsonb #> greenmesh_json_path(path) AS v) AS x $$",
    "CREATE OR REPLACE FUNCTION greenmesh_json(doc text) RETURNS text
       LANGUAGE sql IMMUTABLE AS $$ SELECT doc::jsonb::text $$",
    // A value to set: numbers and JSON text as JSON, other text as a string.
    "CREATE OR REPLACE FUNCTION greenmesh_json_value(v text) RETURNS jsonb
       LANGUAGE plpgsql IMMUTABLE AS $$
       BEGIN
         IF v IS NULL THEN RETURN 'null'::jsonb; END IF;
         RETURN v::jsonb;
       EXCEPTION WHEN others THEN
         RETURN to_jsonb(v);
       END $$",
    // json_set(doc, path, value, path, value, …).
    "CREATE OR REPLACE FUNCTION greenmesh_json_set(doc text, VARIADIC pairs text[]) RETURNS text
       LANGUAGE plpgsql IMMUTABLE AS $$
       DECLARE d jsonb := doc::jsonb; i int := 1;
       BEGIN
         WHILE i < coalesce(array_length(pairs, 1), 0) LOOP
           d := jsonb_set(d, greenmesh_json_path(pairs[i]), greenmesh_json_value(pairs[i + 1]));
           i := i + 2;
         END LOOP;
         RETURN d::text;
       END $$",
    "CREATE OR REPLACE FUNCTION greenmesh_json_each(doc text) RETURNS TABLE(value text)
       LANGUAGE sql IMMUTABLE AS $$
         SELECT CASE WHEN jsonb_typeof(e) = 'string' THEN e #>> '{}' ELSE e::text END
         FROM jsonb_array_elements(doc::jsonb) AS e $$",
];

/// One lexical piece of a statement.
#[derive(Debug, PartialEq)]
enum Token<'a> {
    /// A word (keyword or name), as written.
    Word(&'a str),
    /// A placeholder: `?` (None) or `?N`.
    Placeholder(Option<u32>),
    /// Anything kept verbatim: literals, quoted names, comments, spaces,
    /// punctuation.
    Other(&'a str),
}

fn tokens(sql: &str) -> Vec<Token<'_>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b'\'' | b'"' => {
                // A literal or quoted name; a doubled quote stays inside.
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == c {
                        if bytes.get(i + 1) == Some(&c) {
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    i += 1;
                }
                out.push(Token::Other(&sql[start..i]));
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                out.push(Token::Other(&sql[start..i]));
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i = (i + 2).min(bytes.len());
                out.push(Token::Other(&sql[start..i]));
            }
            b'?' => {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                out.push(Token::Placeholder(sql[start + 1..i].parse().ok()));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push(Token::Word(&sql[start..i]));
            }
            _ => {
                // Punctuation and spaces (UTF-8 continuation bytes stay
                // with their character).
                i += 1;
                while i < bytes.len() && !bytes[i].is_ascii() {
                    i += 1;
                }
                out.push(Token::Other(&sql[start..i]));
            }
        }
    }
    out
}

/// The index of the next word after `at`, skipping spaces and comments.
fn next_word<'a>(tokens: &[Token<'a>], at: usize) -> Option<(usize, &'a str)> {
    tokens[at + 1..]
        .iter()
        .enumerate()
        .find_map(|(k, t)| match t {
            Token::Word(w) => Some(Some((at + 1 + k, *w))),
            Token::Other(s)
                if s.trim().is_empty() || s.starts_with("--") || s.starts_with("/*") =>
            {
                None
            }
            _ => Some(None),
        })?
}

/// The next token after `at` that is not space or a comment.
fn next_significant<'t, 'a>(tokens: &'t [Token<'a>], at: usize) -> Option<(usize, &'t Token<'a>)> {
    tokens[at + 1..]
        .iter()
        .enumerate()
        .find(|(_, t)| !matches!(t, Token::Other(s) if s.trim().is_empty() || s.starts_with("--") || s.starts_with("/*")))
        .map(|(k, t)| (at + 1 + k, t))
}

/// Whether the call whose `(` is token `open` has more than one
/// top-level argument.
fn several_arguments(tokens: &[Token], open: usize) -> bool {
    let mut depth = 0;
    let mut commas = 0;
    for t in &tokens[open..] {
        if let Token::Other(s) = t {
            for ch in s.chars() {
                match ch {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            return commas >= 1;
                        }
                    }
                    ',' if depth == 1 => commas += 1,
                    _ => {}
                }
            }
        }
    }
    false
}

/// The token index of `(` right after word `at`, if the word is a call.
fn call_paren(tokens: &[Token], at: usize) -> Option<usize> {
    tokens[at + 1..]
        .iter()
        .position(|t| !matches!(t, Token::Other(s) if s.trim().is_empty()))
        .map(|k| at + 1 + k)
        .filter(|&k| matches!(tokens[k], Token::Other(s) if s.starts_with('(')))
}

/// Words that may follow a subquery in `FROM` where no alias was given.
const AFTER_FROM: &[&str] = &[
    "WHERE",
    "GROUP",
    "ORDER",
    "LIMIT",
    "OFFSET",
    "UNION",
    "EXCEPT",
    "INTERSECT",
    "JOIN",
    "LEFT",
    "RIGHT",
    "INNER",
    "OUTER",
    "CROSS",
    "FULL",
    "NATURAL",
    "ON",
    "USING",
    "HAVING",
    "WINDOW",
    "RETURNING",
    "FOR",
];

/// Whether the subquery closed just before token `at` has an alias.
fn has_alias(tokens: &[Token], at: usize) -> bool {
    let next = tokens[at..]
        .iter()
        .find(|t| !matches!(t, Token::Other(s) if s.trim().is_empty()));
    match next {
        Some(Token::Word(w)) => !AFTER_FROM.iter().any(|k| w.eq_ignore_ascii_case(k)),
        _ => false,
    }
}

/// `sql` (SQLite's dialect) as Postgres takes it.
pub fn to_postgres(sql: &str) -> String {
    let tokens = tokens(sql);
    let mut out = String::with_capacity(sql.len() + 32);
    let mut highest = 0u32;
    let mut ignore_conflicts = false;
    let mut conflict_placed = false;
    let mut skip_until = 0;
    // Open parentheses: whether each opened a subquery in FROM or JOIN.
    let mut parens: Vec<bool> = Vec::new();
    let mut last_significant = String::new();
    let mut aliases = 0;
    for (i, t) in tokens.iter().enumerate() {
        if i < skip_until {
            continue;
        }
        if let Token::Other(s) = t {
            if !s.trim().is_empty() && *s != "(" {
                last_significant = s.to_string();
            }
        }
        match t {
            Token::Other("(") => {
                parens.push(last_significant == "FROM" || last_significant == "JOIN");
                out.push('(');
            }
            Token::Other(")") => {
                out.push(')');
                if parens.pop() == Some(true) && !has_alias(&tokens, i + 1) {
                    aliases += 1;
                    out.push_str(&format!(" AS greenmesh_derived_{aliases}"));
                }
            }
            Token::Placeholder(n) => {
                let n = n.unwrap_or(highest + 1);
                highest = highest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            Token::Other(s) => out.push_str(s),
            Token::Word(w) => {
                last_significant = w.to_ascii_uppercase();
                let upper = w.to_ascii_uppercase();
                match upper.as_str() {
                    "INTEGER" => {
                        // INTEGER PRIMARY KEY AUTOINCREMENT → BIGSERIAL PRIMARY KEY
                        let autoincrement = next_word(&tokens, i)
                            .filter(|(_, w)| w.eq_ignore_ascii_case("PRIMARY"))
                            .and_then(|(k, _)| next_word(&tokens, k))
                            .filter(|(_, w)| w.eq_ignore_ascii_case("KEY"))
                            .and_then(|(k, _)| next_word(&tokens, k))
                            .filter(|(_, w)| w.eq_ignore_ascii_case("AUTOINCREMENT"));
                        match autoincrement {
                            Some((k, _)) => {
                                out.push_str("BIGSERIAL PRIMARY KEY");
                                skip_until = k + 1;
                            }
                            None => out.push_str("BIGINT"),
                        }
                    }
                    "REAL" => out.push_str("DOUBLE PRECISION"),
                    // A column name to SQLite, a reserved word to Postgres.
                    "USER" => out.push_str("\"user\""),
                    "BLOB" => out.push_str("BYTEA"),
                    "IFNULL" => out.push_str("COALESCE"),
                    "JSON" | "JSON_EXTRACT" | "JSON_SET" | "JSON_EACH"
                        if call_paren(&tokens, i).is_some() =>
                    {
                        out.push_str("greenmesh_");
                        out.push_str(&w.to_ascii_lowercase());
                    }
                    "MAX" | "MIN"
                        if call_paren(&tokens, i)
                            .is_some_and(|p| several_arguments(&tokens, p)) =>
                    {
                        out.push_str(if upper == "MAX" { "GREATEST" } else { "LEAST" });
                    }
                    "OR" if ignore_conflicts_next(&tokens, i, &out) => {
                        // `INSERT OR IGNORE`: drop `OR IGNORE`.
                        let (k, _) = next_word(&tokens, i).expect("checked");
                        skip_until = k + 1;
                        ignore_conflicts = true;
                        // The space before `OR` is already out; eat the one after IGNORE.
                        if matches!(tokens.get(k + 1), Some(Token::Other(s)) if s.trim().is_empty())
                        {
                            skip_until = k + 2;
                        }
                    }
                    "IS" => {
                        out.push_str(w);
                        // A value (not NULL, TRUE, FALSE, DISTINCT) after
                        // `IS` or `IS NOT` is SQLite's null-safe equality.
                        let keyword = |k: usize| match next_significant(&tokens, k) {
                            Some((_, Token::Word(m))) => {
                                ["NULL", "TRUE", "FALSE", "DISTINCT", "NOT"]
                                    .iter()
                                    .any(|x| m.eq_ignore_ascii_case(x))
                            }
                            _ => false,
                        };
                        match next_significant(&tokens, i) {
                            Some((k, Token::Word(n)))
                                if n.eq_ignore_ascii_case("NOT") && !keyword(k) =>
                            {
                                out.push_str(" DISTINCT FROM");
                                skip_until = k + 1;
                            }
                            _ if !keyword(i) => out.push_str(" NOT DISTINCT FROM"),
                            _ => {}
                        }
                    }
                    "RETURNING" if ignore_conflicts && !conflict_placed => {
                        out.push_str("ON CONFLICT DO NOTHING ");
                        out.push_str(w);
                        conflict_placed = true;
                    }
                    _ => out.push_str(w),
                }
            }
        }
    }
    if ignore_conflicts && !conflict_placed {
        let trimmed = out.trim_end().trim_end_matches(';').trim_end().len();
        out.truncate(trimmed);
        out.push_str(" ON CONFLICT DO NOTHING");
    }
    out
}

/// Whether the `OR` at `at` follows `INSERT` and precedes `IGNORE`.
fn ignore_conflicts_next(tokens: &[Token], at: usize, out: &str) -> bool {
    out.trim_end().to_ascii_uppercase().ends_with("INSERT")
        && next_word(tokens, at).is_some_and(|(_, w)| w.eq_ignore_ascii_case("IGNORE"))
}

#[cfg(test)]
mod tests {
    use super::to_postgres;

    #[test]
    fn placeholders_are_numbered_as_sqlite_numbers_them() {
        assert_eq!(
            to_postgres("SELECT a FROM t WHERE b = ? AND c = ?"),
            "SELECT a FROM t WHERE b = $1 AND c = $2"
        );
        assert_eq!(to_postgres("VALUES (?1, ?2, ?1)"), "VALUES ($1, $2, $1)");
        // A bare ? after ?3 is ?4, as in SQLite.
        assert_eq!(to_postgres("?3, ?"), "$3, $4");
    }

    #[test]
    fn literals_quoted_names_and_comments_are_left_alone() {
        assert_eq!(
            to_postgres(
                "SELECT '?', 'it''s INTEGER', \"REAL\" -- why? INTEGER\nFROM t WHERE x = ?"
            ),
            "SELECT '?', 'it''s INTEGER', \"REAL\" -- why? INTEGER\nFROM t WHERE x = $1"
        );
        assert_eq!(
            to_postgres("SELECT 1 /* ? REAL */ + ?"),
            "SELECT 1 /* ? REAL */ + $1"
        );
    }

    #[test]
    fn types_become_postgres_types() {
        assert_eq!(
            to_postgres("CREATE TABLE IF NOT EXISTS e (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL, x REAL, b BLOB)"),
            "CREATE TABLE IF NOT EXISTS e (id BIGSERIAL PRIMARY KEY, n BIGINT NOT NULL, x DOUBLE PRECISION, b BYTEA)"
        );
        assert_eq!(
            to_postgres("ALTER TABLE t ADD COLUMN ready integer NOT NULL DEFAULT 1"),
            "ALTER TABLE t ADD COLUMN ready BIGINT NOT NULL DEFAULT 1"
        );
        assert_eq!(to_postgres("CAST(x AS INTEGER)"), "CAST(x AS BIGINT)");
        assert_eq!(
            to_postgres("SELECT tier FROM q WHERE user = ?"),
            "SELECT tier FROM q WHERE \"user\" = $1"
        );
    }

    #[test]
    fn insert_or_ignore_becomes_on_conflict_do_nothing() {
        assert_eq!(
            to_postgres("INSERT OR IGNORE INTO t (a) VALUES (?)"),
            "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            to_postgres("INSERT OR IGNORE INTO t (a) VALUES (?) RETURNING a"),
            "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING RETURNING a"
        );
        assert_eq!(
            to_postgres("insert or ignore into t (a) select b from u;"),
            "insert into t (a) select b from u ON CONFLICT DO NOTHING"
        );
        // An `OR` elsewhere stays.
        assert_eq!(
            to_postgres("SELECT 1 WHERE a OR b"),
            "SELECT 1 WHERE a OR b"
        );
    }

    #[test]
    fn sqlite_functions_become_their_postgres_equivalents() {
        assert_eq!(
            to_postgres("SELECT json_extract(body, '$.a'), IFNULL(x, 0) FROM t WHERE id IN (SELECT value FROM json_each(?))"),
            "SELECT greenmesh_json_extract(body, '$.a'), COALESCE(x, 0) FROM t WHERE id IN (SELECT value FROM greenmesh_json_each($1))"
        );
        assert_eq!(
            to_postgres("SET body = json_set(body, '$.a', json(?))"),
            "SET body = greenmesh_json_set(body, '$.a', greenmesh_json($1))"
        );
        assert_eq!(
            to_postgres("SET v = MAX(v, excluded.v), w = MAX(w)"),
            "SET v = GREATEST(v, excluded.v), w = MAX(w)"
        );
        assert_eq!(to_postgres("MIN(a, f(b, c))"), "LEAST(a, f(b, c))");
        assert_eq!(
            to_postgres("1 + MAX(a, (SELECT MAX(b) FROM t), c)"),
            "1 + GREATEST(a, (SELECT MAX(b) FROM t), c)"
        );
        // A column named like a function is not a call.
        assert_eq!(to_postgres("SELECT json FROM t"), "SELECT json FROM t");
    }

    #[test]
    fn subqueries_in_from_get_an_alias_when_they_have_none() {
        assert_eq!(
            to_postgres("SELECT COUNT(*) FROM (SELECT 1 FROM t WHERE a = ?)"),
            "SELECT COUNT(*) FROM (SELECT 1 FROM t WHERE a = $1) AS greenmesh_derived_1"
        );
        assert_eq!(
            to_postgres("SELECT n.x FROM (SELECT * FROM (SELECT * FROM t) UNION ALL SELECT * FROM u) n WHERE 1"),
            "SELECT n.x FROM (SELECT * FROM (SELECT * FROM t) AS greenmesh_derived_1 UNION ALL SELECT * FROM u) n WHERE 1"
        );
        assert_eq!(
            to_postgres("SELECT a FROM (SELECT 1 AS a) AS s"),
            "SELECT a FROM (SELECT 1 AS a) AS s"
        );
        // Other parentheses are not subqueries.
        assert_eq!(
            to_postgres("SELECT COUNT(*) FROM t WHERE a IN (SELECT b FROM u)"),
            "SELECT COUNT(*) FROM t WHERE a IN (SELECT b FROM u)"
        );
    }

    #[test]
    fn sqlite_is_between_values_is_null_safe_equality() {
        assert_eq!(
            to_postgres("WHERE a IS NOT b AND c IS ?"),
            "WHERE a IS DISTINCT FROM b AND c IS NOT DISTINCT FROM $1"
        );
        assert_eq!(
            to_postgres("WHERE a IS NOT NULL AND b IS NULL AND c IS TRUE"),
            "WHERE a IS NOT NULL AND b IS NULL AND c IS TRUE"
        );
        assert_eq!(
            to_postgres("WHERE a IS DISTINCT FROM b"),
            "WHERE a IS DISTINCT FROM b"
        );
    }

    #[test]
    fn non_ascii_text_survives() {
        assert_eq!(to_postgres("SELECT 'é' || ? -- ü"), "SELECT 'é' || $1 -- ü");
        assert_eq!(to_postgres("SELECT gCO₂ FROM t"), "SELECT gCO₂ FROM t");
    }
}
