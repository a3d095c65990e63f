//! Session settings: `SET`, `SHOW`, `RESET`, and the functions clients call
//! to read them (`version()`, `current_setting()`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::functions::utils::make_scalar_function;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, create_udf,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Expr, Ident, ObjectName, ResetStatement, Set, Value};

use super::{Output, Session};
use crate::catalog::DEFAULT_SCHEMA;
use crate::error::{Error, ErrorKind, Result};

pub const SERVER_VERSION: &str = "15.0 (Sluice 0.1.0)";

/// Known settings and their defaults, as PostgreSQL 15 names them.
const DEFAULTS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("client_encoding", "UTF8"),
    ("client_min_messages", "notice"),
    ("datestyle", "ISO, MDY"),
    ("default_transaction_isolation", "read committed"),
    // What pg_class.relam says of tables (SQLAlchemy compares the two).
    ("default_table_access_method", "heap"),
    ("extra_float_digits", "1"),
    ("intervalstyle", "postgres"),
    ("lock_timeout", "0"),
    ("search_path", "\"$user\", public"),
    ("server_encoding", "UTF8"),
    ("server_version", SERVER_VERSION),
    ("server_version_num", "150000"),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("timezone", "UTC"),
    ("transaction_isolation", "read committed"),
    ("idle_in_transaction_session_timeout", "0"),
    ("integer_datetimes", "on"),
    ("max_identifier_length", "63"),
    ("is_superuser", "on"),
    // Compile-time limits clients read (pgjdbc's getImportedKeys reads
    // max_index_keys from pg_settings).
    ("max_index_keys", "32"),
    ("max_function_args", "100"),
    ("block_size", "8192"),
];

/// Settings a session cannot change (PostgreSQL's `internal` context).
const READ_ONLY: &[&str] = &[
    "server_version",
    "server_encoding",
    "server_version_num",
    "integer_datetimes",
    "max_identifier_length",
    "is_superuser",
    "max_index_keys",
    "max_function_args",
    "block_size",
];

#[derive(Debug, Clone)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        let mut values: BTreeMap<String, String> = DEFAULTS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(v) = idle_in_transaction_default() {
            values.insert("idle_in_transaction_session_timeout".into(), v.clone());
        }
        Settings { values }
    }
}

/// The server's default `idle_in_transaction_session_timeout`, from
/// `SLUICE_IDLE_IN_TRANSACTION_TIMEOUT` (`"5min"`, `"30s"`, milliseconds);
/// a value that does not parse is logged once and ignored.
fn idle_in_transaction_default() -> Option<&'static String> {
    static VALUE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    VALUE
        .get_or_init(|| {
            let raw = std::env::var("SLUICE_IDLE_IN_TRANSACTION_TIMEOUT").ok()?;
            match parse_duration_ms(&raw) {
                Ok(_) => Some(raw),
                Err(_) => {
                    tracing::warn!(
                        "SLUICE_IDLE_IN_TRANSACTION_TIMEOUT={raw:?} is not a duration; ignored"
                    );
                    None
                }
            }
        })
        .as_ref()
}

impl Settings {
    pub fn get(&self, name: &str) -> Option<&str> {
        // Asked for on every statement (statement_timeout, search_path):
        // lowered only when it is not already.
        let value = if name.chars().any(|c| !c.is_lowercase() && c.is_alphabetic()) {
            self.values.get(&name.to_lowercase())
        } else {
            self.values.get(name)
        };
        value.map(|s| s.as_str())
    }

    /// Schemas in `search_path`, `$user` skipped.
    pub fn search_path(&self) -> Vec<String> {
        self.get("search_path")
            .unwrap_or("public")
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_string())
            .filter(|s| !s.is_empty() && s != "$user")
            .collect()
    }

    /// Where unqualified new objects go: the first schema on the path.
    pub fn current_schema(&self) -> String {
        self.search_path()
            .into_iter()
            .next()
            .unwrap_or_else(|| DEFAULT_SCHEMA.to_string())
    }

    pub fn statement_timeout(&self) -> Option<Duration> {
        self.duration("statement_timeout")
    }

    /// How long a session may wait inside a transaction block for its
    /// next statement before its connection is closed.
    pub fn idle_in_transaction_timeout(&self) -> Option<Duration> {
        self.duration("idle_in_transaction_session_timeout")
    }

    /// A time setting; `None` when it is 0 (off).
    fn duration(&self, name: &str) -> Option<Duration> {
        let ms = parse_duration_ms(self.get(name)?).ok()?;
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let name = name.to_lowercase();
        match name.as_str() {
            "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout" => {
                parse_duration_ms(value)?;
            }
            n if READ_ONLY.contains(&n) => {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    format!("parameter \"{name}\" cannot be changed"),
                ));
            }
            "timezone" => {
                self.values.insert(name, utc_zone(value)?);
                return Ok(());
            }
            "datestyle" => {
                self.values.insert(name, iso_date_style(value)?);
                return Ok(());
            }
            "intervalstyle" => {
                if !value.trim().eq_ignore_ascii_case("postgres") {
                    return Err(Error::not_supported(format!("IntervalStyle {value}"))
                        .with_hint("Intervals are shown in the postgres style."));
                }
                self.values.insert(name, "postgres".into());
                return Ok(());
            }
            "client_encoding" => {
                let v = value.to_uppercase().replace('-', "");
                if v != "UTF8" && v != "UNICODE" {
                    return Err(Error::not_supported(format!("client_encoding {value}")));
                }
                self.values.insert(name, "UTF8".into());
                return Ok(());
            }
            _ => {}
        }
        self.values.insert(name, value.to_string());
        Ok(())
    }

    pub fn reset(&mut self, name: &str) {
        let name = name.to_lowercase();
        match DEFAULTS.iter().find(|(k, _)| *k == name) {
            Some((_, v)) => {
                self.values.insert(name, v.to_string());
            }
            None => {
                self.values.remove(&name);
            }
        }
    }

    pub fn all(&self) -> &BTreeMap<String, String> {
        &self.values
    }
}

/// `5000`, `5s`, `100ms`, `1min` → milliseconds.
fn parse_duration_ms(raw: &str) -> Result<u64> {
    let v = raw.trim().trim_matches('\'').to_lowercase();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        Error::new(
            ErrorKind::InvalidParameter,
            format!("invalid value for parameter \"statement_timeout\": \"{raw}\""),
        )
    })?;
    let factor = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1000,
        "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("invalid value for parameter \"statement_timeout\": \"{raw}\""),
            ));
        }
    };
    Ok(n * factor)
}

fn expr_text(e: &Expr) -> String {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(id) => id.value.clone(),
        other => other.to_string(),
    }
}

fn name_of(n: &ObjectName) -> String {
    n.to_string().to_lowercase()
}

pub fn set(session: &mut Session, set: Set) -> Result<Output> {
    match set {
        Set::SingleAssignment {
            variable, values, ..
        } => {
            let name = name_of(&variable);
            let value = values.iter().map(expr_text).collect::<Vec<_>>().join(", ");
            if value.eq_ignore_ascii_case("default") {
                session.settings.reset(&name);
            } else {
                session.settings.set(&name, &value)?;
            }
        }
        Set::SetTimeZone { value, .. } => {
            let v = expr_text(&value);
            session.settings.set("timezone", &v)?;
        }
        Set::SetNames { charset_name, .. } => {
            session
                .settings
                .set("client_encoding", &charset_name.value)?;
        }
        Set::SetTransaction { .. } | Set::SetSessionParam(_) | Set::SetRole { .. } => {}
        other => return Err(Error::not_supported(format!("\"{other}\""))),
    }
    Ok(Output::command("SET"))
}

/// The names PostgreSQL reads as UTC (and `LOCAL`: the server's zone,
/// which is UTC).
const UTC_NAMES: &[&str] = &[
    "utc",
    "etc/utc",
    "uct",
    "etc/uct",
    "gmt",
    "etc/gmt",
    "gmt0",
    "gmt+0",
    "gmt-0",
    "etc/gmt0",
    "etc/gmt+0",
    "etc/gmt-0",
    "greenwich",
    "etc/greenwich",
    "universal",
    "etc/universal",
    "zulu",
    "etc/zulu",
    "z",
    "local",
    "default",
    "0",
    "+0",
    "-0",
    "00",
    "+00",
    "-00",
    "+00:00",
    "-00:00",
];

/// `TimeZone`: Sluice computes and shows every time in UTC, so a session
/// may name UTC in any of its spellings; another zone would be accepted
/// and then ignored (a `date` compared with a `timestamptz` at the wrong
/// midnight), so it is refused: 0A000 for a zone PostgreSQL knows, 22023
/// for a name it does not.
fn utc_zone(value: &str) -> Result<String> {
    let v = value.trim();
    // SET TIME ZONE INTERVAL '+00:00' HOUR TO MINUTE
    let v = match v.get(..8) {
        Some(head) if head.eq_ignore_ascii_case("interval") => {
            v.split('\'').nth(1).unwrap_or(v).trim()
        }
        _ => v,
    };
    if UTC_NAMES.iter().any(|n| v.eq_ignore_ascii_case(n)) {
        return Ok("UTC".into());
    }
    let known = v.parse::<datafusion::arrow::array::timezone::Tz>().is_ok()
        || v.trim_start_matches(['+', '-'])
            .split(':')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if known {
        Err(Error::not_supported(format!("time zone \"{v}\""))
            .with_hint("Sluice computes and shows times in UTC: TimeZone can only be UTC."))
    } else {
        Err(Error::new(
            ErrorKind::InvalidParameter,
            format!("invalid value for parameter \"TimeZone\": \"{v}\""),
        ))
    }
}

/// `DateStyle`: dates are shown as ISO (`2024-02-29`) and read month
/// first; a setting that keeps both is accepted, another refused (0A000),
/// an unknown word is 22023 as in PostgreSQL.
fn iso_date_style(value: &str) -> Result<String> {
    for part in value.split(',') {
        let p = part.trim().trim_matches('\'').trim();
        match p.to_ascii_lowercase().as_str() {
            "iso" | "mdy" | "us" | "noneuropean" | "" => {}
            "sql" | "postgres" | "german" | "dmy" | "ymd" | "euro" | "european" => {
                return Err(Error::not_supported(format!("DateStyle {value}"))
                    .with_hint("Dates are shown as ISO and read month first (ISO, MDY)."));
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    format!("invalid value for parameter \"DateStyle\": \"{value}\""),
                ));
            }
        }
    }
    Ok("ISO, MDY".into())
}

/// The name PostgreSQL gives a setting (and `SHOW`'s column): the few
/// mixed-case ones as PostgreSQL spells them, the SQL-standard spellings
/// under their setting names, the rest in lower case.
fn canonical_name(lower: &str) -> String {
    match lower {
        "datestyle" => "DateStyle",
        "intervalstyle" => "IntervalStyle",
        "timezone" | "time zone" => "TimeZone",
        "transaction isolation level" => "transaction_isolation",
        other => other,
    }
    .to_string()
}

pub fn show_schema(variable: &[Ident]) -> SchemaRef {
    let name = variable
        .iter()
        .map(|i| i.value.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    let name = canonical_name(&name);
    if name == "all" {
        Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("setting", DataType::Utf8, false),
        ]))
    } else {
        Arc::new(Schema::new(vec![Field::new(&name, DataType::Utf8, false)]))
    }
}

pub fn show(session: &mut Session, variable: &[Ident]) -> Result<Output> {
    let name = variable
        .iter()
        .map(|i| i.value.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    let schema = show_schema(variable);
    let name = match name.as_str() {
        "time zone" => "timezone".to_string(),
        "transaction isolation level" => "transaction_isolation".to_string(),
        _ => name,
    };
    let batch = if name == "all" {
        let all = session.settings.all();
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(all.keys())),
                Arc::new(StringArray::from_iter_values(all.values())),
            ],
        )?
    } else {
        let value = session.settings.get(&name).ok_or_else(|| {
            Error::new(
                ErrorKind::UndefinedObject,
                format!("unrecognized configuration parameter \"{name}\""),
            )
        })?;
        RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec![value.to_string()]))],
        )?
    };
    Output::batches(schema, vec![batch], "SHOW")
}

pub fn reset(session: &mut Session, r: ResetStatement) -> Result<Output> {
    let text = r.to_string();
    let name = text.trim_start_matches("RESET").trim().to_lowercase();
    if name == "all" {
        session.settings = Settings::default();
    } else {
        session.settings.reset(&name);
    }
    Ok(Output::command("RESET"))
}

fn constant_udf(name: &str, value: &'static str) -> ScalarUDF {
    create_udf(
        name,
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                value.to_string(),
            ))))
        }),
    )
}

/// `pg_function_is_visible(oid)` and friends: every object Sluice lists is
/// on the search path's terms visible.
fn visible_udf(name: &str) -> ScalarUDF {
    create_udf(
        name,
        vec![DataType::Int64],
        DataType::Boolean,
        Volatility::Stable,
        Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))),
    )
}

/// `current_setting('name' [, missing_ok])` with a constant name becomes
/// the session's value of that setting, as text, and
/// `pg_table_is_visible(oid)` is given the session's search path. Plans are kept per
/// statement and settings (`Session::plan_cached`), so a later `SET` is
/// seen. An unknown name is `42704`, or NULL with `missing_ok` true.
pub fn inline_current_settings(
    stmt: &mut datafusion::sql::sqlparser::ast::Statement,
    settings: &Settings,
) -> Result<()> {
    use crate::visit::visit_expressions_mut;
    use datafusion::sql::sqlparser::ast::{
        FunctionArg, FunctionArgExpr, FunctionArguments, ValueWithSpan,
    };
    use std::ops::ControlFlow;
    let found = visit_expressions_mut(stmt, |e| {
        let Expr::Function(f) = e else {
            return ControlFlow::Continue(());
        };
        let named = match f.name.0.as_slice() {
            [n] => n.as_ident(),
            [schema, n]
                if schema
                    .as_ident()
                    .is_some_and(|s| s.value.eq_ignore_ascii_case("pg_catalog")) =>
            {
                n.as_ident()
            }
            _ => None,
        };
        // pg_table_is_visible(oid), and a regclass shown as a name, are
        // answered by the session's search path, given as a second argument.
        if named.is_some_and(|n| {
            n.value.eq_ignore_ascii_case("pg_table_is_visible")
                || n.value == crate::catalog::pg_constraints::REGCLASS_NAME
        }) {
            if let FunctionArguments::List(list) = &mut f.args
                && list.args.len() == 1
            {
                let path = settings.search_path().join(",");
                list.args
                    .push(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::value(
                        Value::SingleQuotedString(path),
                    ))));
            }
            return ControlFlow::Continue(());
        }
        if !named.is_some_and(|n| n.value.eq_ignore_ascii_case("current_setting")) {
            return ControlFlow::Continue(());
        }
        let FunctionArguments::List(list) = &f.args else {
            return ControlFlow::Continue(());
        };
        let literal = |a: &FunctionArg| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(ValueWithSpan {
                value,
                ..
            }))) => Some(value.clone()),
            _ => None,
        };
        let (name, missing_ok) = match list.args.as_slice() {
            [n] => (literal(n), Some(Value::Boolean(false))),
            [n, m] => (literal(n), literal(m)),
            _ => return ControlFlow::Continue(()),
        };
        let (Some(Value::SingleQuotedString(name)), Some(Value::Boolean(missing_ok))) =
            (name, missing_ok)
        else {
            return ControlFlow::Continue(());
        };
        let value = match settings.get(&name) {
            Some(v) => Value::SingleQuotedString(v.to_string()),
            None if missing_ok => Value::Null,
            None => {
                return ControlFlow::Break(Error::new(
                    ErrorKind::UndefinedObject,
                    format!("unrecognized configuration parameter \"{name}\""),
                ));
            }
        };
        *e = Expr::Cast {
            kind: datafusion::sql::sqlparser::ast::CastKind::DoubleColon,
            expr: Box::new(Expr::value(value)),
            data_type: datafusion::sql::sqlparser::ast::DataType::Text,
            array: false,
            format: None,
        };
        ControlFlow::Continue(())
    });
    match found {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// `current_setting(name [, missing_ok])` where the name is not a constant
/// (a parameter: SQLAlchemy over psycopg 3 binds it), over `settings` as
/// they are when a `SET` or `RESET` last changed them.
pub fn current_setting_udf(settings: &Settings) -> ScalarUDF {
    let values = Arc::new(settings.values.clone());
    let missing = |name: &str| {
        datafusion::error::DataFusionError::from(Error::new(
            ErrorKind::UndefinedObject,
            format!("unrecognized configuration parameter \"{name}\""),
        ))
    };
    let one_or_two = Signature::one_of(
        vec![
            datafusion::logical_expr::TypeSignature::Exact(vec![DataType::Utf8]),
            datafusion::logical_expr::TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
        ],
        Volatility::Stable,
    );
    ScalarUDF::from(
        datafusion::logical_expr::expr_fn::SimpleScalarUDF::new_with_signature(
            "current_setting",
            one_or_two,
            DataType::Utf8,
            Arc::new(make_scalar_function(
                move |args: &[ArrayRef]| {
                    let n = args[0].len();
                    let names = args[0].as_string::<i32>();
                    let missing_ok = args.get(1);
                    let mut out = datafusion::arrow::array::StringBuilder::new();
                    for i in 0..n {
                        if names.is_null(i) {
                            out.append_null();
                            continue;
                        }
                        let name = names.value(i);
                        match values.get(&name.to_lowercase()) {
                            Some(v) => out.append_value(v),
                            None if missing_ok
                                .as_ref()
                                .is_some_and(|m| m.as_boolean().value(i)) =>
                            {
                                out.append_null()
                            }
                            None => return Err(missing(name)),
                        }
                    }
                    Ok(Arc::new(out.finish()) as ArrayRef)
                },
                vec![],
            )),
        ),
    )
}

/// The schemas of `path` that exist now, in order, as
/// `current_schemas(include_implicit)` lists them: with the implicit
/// `pg_catalog` first unless the path names it.
fn existing_schemas(
    catalog: &crate::catalog::Catalog,
    path: &[String],
    implicit: bool,
) -> Vec<String> {
    let snapshot = catalog.snapshot();
    let mut out: Vec<String> = Vec::new();
    if implicit && !path.iter().any(|s| s == "pg_catalog") {
        out.push("pg_catalog".to_string());
    }
    for s in path {
        if snapshot.schema_exists(s) && !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

/// `current_schema()` and `current_schemas(include_implicit)` over the
/// session's search path as a `SET` last left it: the first schema of the
/// path that exists (NULL when none does), and the existing ones in order.
pub fn schema_udfs(catalog: Arc<crate::catalog::Catalog>, path: Vec<String>) -> [ScalarUDF; 2] {
    let (c1, p1) = (catalog.clone(), path.clone());
    let current = create_udf(
        "current_schema",
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_| {
            let first = existing_schemas(&c1, &p1, false).into_iter().next();
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(first)))
        }),
    );
    let item = Arc::new(Field::new("item", DataType::Utf8, true));
    let list_type = DataType::List(item.clone());
    let schemas = create_udf(
        "current_schemas",
        vec![DataType::Boolean],
        list_type,
        Volatility::Stable,
        Arc::new(make_scalar_function(
            move |args: &[ArrayRef]| {
                let flags = args[0].as_boolean();
                let mut out = datafusion::arrow::array::ListBuilder::new(
                    datafusion::arrow::array::StringBuilder::new(),
                )
                .with_field(item.clone());
                for i in 0..flags.len() {
                    if flags.is_null(i) {
                        out.append_null();
                        continue;
                    }
                    for s in existing_schemas(&catalog, &path, flags.value(i)) {
                        out.values().append_value(s);
                    }
                    out.append(true);
                }
                Ok(Arc::new(out.finish()) as ArrayRef)
            },
            vec![],
        )),
    );
    [current, schemas]
}

/// `pg_catalog.pg_settings` as `settings` are now: one row per setting
/// with PostgreSQL 15's columns.
pub fn pg_settings(
    settings: &Settings,
) -> datafusion::error::Result<Arc<dyn datafusion::catalog::TableProvider>> {
    use datafusion::arrow::array::{ArrayRef, BooleanArray, Int32Array, ListArray};
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let schema = Arc::new(Schema::new(vec![
        text("name"),
        text("setting"),
        text("unit"),
        text("category"),
        text("short_desc"),
        text("extra_desc"),
        text("context"),
        text("vartype"),
        text("source"),
        text("min_val"),
        text("max_val"),
        Field::new(
            "enumvals",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        text("boot_val"),
        text("reset_val"),
        text("sourcefile"),
        Field::new("sourceline", DataType::Int32, true),
        Field::new("pending_restart", DataType::Boolean, true),
    ]));
    let rows: Vec<(&String, &String)> = settings.all().iter().collect();
    let default = |name: &str| DEFAULTS.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let column = |f: &dyn Fn(&str, &str) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(|(k, v)| f(k, v)).collect::<StringArray>())
    };
    let vartype = |name: &str, value: &str| -> &'static str {
        match (name, value) {
            (_, "on" | "off") => "bool",
            ("statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout", _) => {
                "integer"
            }
            (_, v) if v.parse::<i64>().is_ok() && default(name).is_some() => "integer",
            _ => "string",
        }
    };
    let n = rows.len();
    let columns: Vec<ArrayRef> = vec![
        column(&|k, _| Some(k.to_string())),
        column(&|_, v| Some(v.to_string())),
        column(&|k, _| {
            matches!(
                k,
                "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout"
            )
            .then(|| "ms".to_string())
        }),
        column(&|_, _| Some("Sluice".to_string())),
        column(&|_, _| Some(String::new())),
        column(&|_, _| None),
        column(&|k, _| {
            Some(
                if READ_ONLY.contains(&k) {
                    "internal"
                } else {
                    "user"
                }
                .to_string(),
            )
        }),
        column(&|k, v| Some(vartype(k, v).to_string())),
        column(&|k, v| {
            Some(
                if default(k) == Some(v) {
                    "default"
                } else {
                    "session"
                }
                .to_string(),
            )
        }),
        column(&|_, _| None),
        column(&|_, _| None),
        Arc::new(ListArray::new_null(
            Arc::new(Field::new("item", DataType::Utf8, true)),
            n,
        )),
        column(&|k, v| Some(default(k).unwrap_or(v).to_string())),
        column(&|k, v| Some(default(k).unwrap_or(v).to_string())),
        column(&|_, _| None),
        Arc::new(Int32Array::new_null(n)),
        Arc::new(BooleanArray::from(vec![false; n])),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Ok(Arc::new(datafusion::datasource::MemTable::try_new(
        schema,
        vec![vec![batch]],
    )?))
}

/// Functions clients call on connect.
pub fn register_functions(ctx: &SessionContext) {
    ctx.register_udf(current_setting_udf(&Settings::default()));
    for name in [
        "pg_function_is_visible",
        "pg_type_is_visible",
        "pg_collation_is_visible",
        "pg_conversion_is_visible",
        "pg_operator_is_visible",
        "pg_opclass_is_visible",
        "pg_opfamily_is_visible",
        "pg_statistics_obj_is_visible",
        "pg_ts_config_is_visible",
        "pg_ts_dict_is_visible",
        "pg_ts_parser_is_visible",
        "pg_ts_template_is_visible",
    ] {
        ctx.register_udf(visible_udf(name));
    }
    // An encoding's number (psql's `\dO` compares collencoding with the
    // database's): UTF8 is 6 and SQL_ASCII 0 in PostgreSQL, an unknown name -1.
    ctx.register_udf(create_udf(
        "pg_char_to_encoding",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(make_scalar_function(
            |args: &[ArrayRef]| {
                let out: datafusion::arrow::array::Int32Array = args[0]
                    .as_string::<i32>()
                    .iter()
                    .map(|n| {
                        n.map(
                            |n| match n.to_ascii_uppercase().replace(['-', '_'], "").as_str() {
                                "SQLASCII" => 0,
                                "UTF8" | "UNICODE" => 6,
                                _ => -1,
                            },
                        )
                    })
                    .collect();
                Ok(Arc::new(out) as ArrayRef)
            },
            vec![],
        )),
    ));
    // The one tablespace, pg_default, is in the data directory, whose
    // location PostgreSQL shows as an empty string (psql's `\db`).
    ctx.register_udf(create_udf(
        "pg_tablespace_location",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|_| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(
                Some(String::new()),
            )))
        }),
    ));
    // Sluice has no shared objects: these answer NULL, as
    // PostgreSQL does for an object without one (`obj_description` and
    // `col_description` are pg_catalog's, with the catalog's comments). A
    // relation's size is pg_catalog's (it reads the table's Delta log); a
    // database's or tablespace's is not computed: NULL, shown as empty.
    for (name, ty) in [
        ("shobj_description", DataType::Utf8),
        ("pg_indexes_size", DataType::Int64),
        ("pg_database_size", DataType::Int64),
        ("pg_tablespace_size", DataType::Int64),
    ] {
        ctx.register_udf(null_udf(name, ty));
    }
    // The OID of a type named in SQL ('int8', 'character varying',
    // 'text[]'): NULL for a type Sluice does not have from `to_regtype`
    // (psycopg's TypeInfo probes for hstore this way), `42704` from
    // `'name'::regtype`.
    for (name, strict) in [
        ("to_regtype", false),
        (crate::catalog::pg_constraints::REGTYPE_FOUND, true),
    ] {
        ctx.register_udf(create_udf(
            name,
            vec![DataType::Utf8],
            DataType::Int32,
            Volatility::Stable,
            Arc::new(make_scalar_function(
                move |args: &[ArrayRef]| {
                    let out = args[0]
                        .as_string::<i32>()
                        .iter()
                        .map(
                            |n| match n.map(|n| (n, crate::catalog::pg_proc::sql_type_oid(n))) {
                                Some((n, None)) if strict => {
                                    Err(datafusion::error::DataFusionError::from(Error::new(
                                        ErrorKind::UndefinedObject,
                                        format!("type \"{n}\" does not exist"),
                                    )))
                                }
                                found => Ok(found.and_then(|(_, oid)| oid)),
                            },
                        )
                        .collect::<datafusion::error::Result<datafusion::arrow::array::Int32Array>>(
                        )?;
                    Ok(Arc::new(out) as ArrayRef)
                },
                vec![],
            )),
        ));
    }
    ctx.register_udf(crate::types::json::json_build_object());
    // No session has a temporary schema (ADBC's schema query).
    ctx.register_udf(create_udf(
        "pg_my_temp_schema",
        vec![],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Int32(Some(0))))),
    ));
    ctx.register_udf(create_udf(
        "pg_size_pretty",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(make_scalar_function(
            |args: &[ArrayRef]| {
                let sizes = datafusion::arrow::compute::cast(&args[0], &DataType::Int64)?;
                let out: datafusion::arrow::array::StringArray = sizes
                    .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                    .iter()
                    .map(|v| v.map(size_pretty))
                    .collect();
                Ok(Arc::new(out) as ArrayRef)
            },
            vec![],
        )),
    ));
    ctx.register_udf(constant_udf("getdatabaseencoding", "UTF8"));
    ctx.register_udf(constant_udf(
        "version",
        "PostgreSQL 15.0 (Sluice 0.1.0) on x86_64-pc-linux-gnu, compiled by rustc, 64-bit",
    ));
}

/// A function of any arguments whose answer is a NULL of type `ty`.
fn null_udf(name: &str, ty: DataType) -> ScalarUDF {
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct Null {
        name: String,
        ty: DataType,
        signature: Signature,
    }
    impl ScalarUDFImpl for Null {
        fn name(&self) -> &str {
            &self.name
        }
        fn signature(&self) -> &Signature {
            &self.signature
        }
        fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
            Ok(self.ty.clone())
        }
        fn invoke_with_args(
            &self,
            _: ScalarFunctionArgs,
        ) -> datafusion::error::Result<ColumnarValue> {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from(&self.ty)?))
        }
    }
    ScalarUDF::new_from_impl(Null {
        name: name.to_string(),
        ty,
        signature: Signature::variadic_any(Volatility::Stable),
    })
}

/// A byte count as PostgreSQL's `pg_size_pretty` prints it: bytes below
/// 10 kB, then the largest of kB, MB, GB, TB, PB that leaves at least 10
/// of it, rounded half away from zero.
fn size_pretty(size: i64) -> String {
    const LIMIT: i64 = 10 * 1024;
    if size.abs() < LIMIT {
        return format!("{size} bytes");
    }
    // One extra bit of precision for the rounding.
    let mut half = size >> 9;
    for unit in ["kB", "MB", "GB", "TB"] {
        if half.abs() < LIMIT * 2 - 1 {
            return format!("{} {unit}", (half + half.signum()) / 2);
        }
        half >>= 10;
    }
    format!("{} PB", (half + half.signum()) / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_resolve_to_postgres_oids() {
        assert_eq!(crate::catalog::pg_proc::sql_type_oid("int8"), Some(20));
        assert_eq!(
            crate::catalog::pg_proc::sql_type_oid("character varying"),
            Some(1043)
        );
        assert_eq!(crate::catalog::pg_proc::sql_type_oid("text[]"), Some(1009));
        assert_eq!(crate::catalog::pg_proc::sql_type_oid("hstore"), None);
        assert_eq!(crate::catalog::pg_proc::sql_type_oid("not a type"), None);
    }

    #[test]
    fn sizes_print_as_postgres_prints_them() {
        // Values and answers from PostgreSQL 15's pg_size_pretty(bigint).
        for (n, text) in [
            (0, "0 bytes"),
            (10239, "10239 bytes"),
            (10240, "10 kB"),
            (-10240, "-10 kB"),
            (20971519, "20 MB"),
            (20971520, "20 MB"),
            (1_000_000_000, "954 MB"),
            (1_099_511_627_776, "1024 GB"),
            (i64::MAX, "8192 PB"),
        ] {
            assert_eq!(size_pretty(n), text, "{n}");
        }
    }

    #[test]
    fn only_utc_time_zones_and_iso_date_styles_are_taken() {
        let mut s = Settings::default();
        for utc in [
            "UTC",
            "Etc/UTC",
            "gmt",
            "Z",
            "0",
            "+00:00",
            "INTERVAL '+00:00' HOUR TO MINUTE",
        ] {
            s.set("TimeZone", utc).unwrap();
            assert_eq!(s.get("timezone").unwrap(), "UTC", "{utc}");
        }
        let code = |r: Result<()>| match r.unwrap_err().kind {
            ErrorKind::FeatureNotSupported => "0A000",
            ErrorKind::InvalidParameter => "22023",
            other => panic!("{other:?}"),
        };
        assert_eq!(code(s.set("timezone", "America/New_York")), "0A000");
        assert_eq!(code(s.set("timezone", "+05:30")), "0A000");
        assert_eq!(code(s.set("timezone", "Mars/Olympus")), "22023");
        assert_eq!(s.get("timezone").unwrap(), "UTC");
        s.set("DateStyle", "ISO").unwrap();
        s.set("DateStyle", "iso, mdy").unwrap();
        assert_eq!(s.get("datestyle").unwrap(), "ISO, MDY");
        assert_eq!(code(s.set("DateStyle", "German")), "0A000");
        assert_eq!(code(s.set("DateStyle", "ISO, DMY")), "0A000");
        assert_eq!(code(s.set("DateStyle", "sideways")), "22023");
        s.set("IntervalStyle", "Postgres").unwrap();
        assert_eq!(code(s.set("IntervalStyle", "iso_8601")), "0A000");
    }

    #[test]
    fn timeouts_parse_with_units() {
        assert_eq!(parse_duration_ms("5000").unwrap(), 5000);
        assert_eq!(parse_duration_ms("2s").unwrap(), 2000);
        assert_eq!(parse_duration_ms("'1min'").unwrap(), 60_000);
        assert!(parse_duration_ms("soon").is_err());
    }

    #[test]
    fn search_path_skips_user() {
        let mut s = Settings::default();
        assert_eq!(s.search_path(), vec!["public"]);
        s.set("search_path", "raw, public").unwrap();
        assert_eq!(s.current_schema(), "raw");
    }
}
