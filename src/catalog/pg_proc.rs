//! PostgreSQL's built-in functions as its catalog describes them, and the
//! catalog functions that print them: `format_type`,
//! `pg_get_function_result`, `pg_get_function_arguments`,
//! `pg_get_function_identity_arguments`, `pg_get_functiondef`, and the
//! `regproc` / `regprocedure` conversions between a function's name and
//! its OID. psql's `\df`, `\sf` and `\dT` print through these.
//!
//! The rows are `pg_catalog`'s static `pg_proc`, `pg_type`,
//! `pg_aggregate` and `pg_language` (read once per process); the text is
//! built by PostgreSQL's rules (`ruleutils.c`, `format_type.c`,
//! `regproc.c`), which the tests compare with a PostgreSQL server.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::functions::utils::make_scalar_function;
use datafusion::logical_expr::{ScalarUDF, Volatility, create_udf};
use datafusion_pg_catalog::pg_catalog::ArrowTable;

use crate::error::{Error, ErrorKind};

/// The namespace of PostgreSQL's built-in objects.
const PG_CATALOG: i32 = 11;
/// The namespace OID the static tables give `information_schema`'s
/// functions and types; `pg_namespace` shows the schema with it.
pub const INFORMATION_SCHEMA: i32 = 13283;

/// The function a name cast to `regproc` becomes: the function's OID.
pub const REGPROC_FOUND: &str = "sluice_regproc_found";
/// The function a signature cast to `regprocedure` becomes.
pub const REGPROCEDURE_FOUND: &str = "sluice_regprocedure_found";
/// The function an OID cast to `regproc` in a select item becomes.
pub const REGPROC_NAME: &str = "sluice_regproc_name";
/// The function an OID cast to `regprocedure` in a select item becomes.
pub const REGPROCEDURE_NAME: &str = "sluice_regprocedure_name";

/// Keywords of the static tables' newer PostgreSQL that PostgreSQL 15,
/// whose version Sluice reports, does not have: not quoted.
const NEWER_KEYWORDS: [&str; 13] = [
    "json",
    "json_array",
    "json_arrayagg",
    "json_exists",
    "json_object",
    "json_objectagg",
    "json_query",
    "json_scalar",
    "json_serialize",
    "json_table",
    "json_value",
    "merge_action",
    "system_user",
];

/// One row of `pg_proc`.
struct Proc {
    name: String,
    namespace: i32,
    kind: char,
    lang: i32,
    cost: f32,
    rows: f32,
    support: String,
    security_definer: bool,
    leakproof: bool,
    strict: bool,
    returns_set: bool,
    volatility: char,
    parallel: char,
    rettype: i32,
    argtypes: Vec<i32>,
    allargtypes: Option<Vec<i32>>,
    argmodes: Option<Vec<char>>,
    argnames: Option<Vec<String>>,
    /// The defaults of the last input arguments, as SQL text; `None`
    /// when one of them is an expression this module cannot print.
    argdefaults: Option<Vec<String>>,
    src: String,
    bin: Option<String>,
    /// A SQL-standard body (`RETURN ...`, `BEGIN ATOMIC ... END`): the
    /// static table keeps it as a parse tree; its text is PostgreSQL 15's
    /// (see [`sql_bodies`]), `Some(None)` for a function PostgreSQL 15
    /// lacks.
    sql_body: Option<Option<String>>,
}

/// PostgreSQL 15's text of its built-in functions' SQL-standard bodies,
/// by `schema.name(argument types)` (`scripts/pg-sql-bodies.sh` writes
/// the file).
fn sql_bodies() -> HashMap<String, String> {
    #[derive(serde::Deserialize)]
    struct Row {
        function: String,
        body: String,
    }
    include_str!("pg_sql_bodies.jsonl")
        .lines()
        .filter_map(|line| serde_json::from_str::<Row>(line).ok())
        .map(|r| (r.function, r.body))
        .collect()
}

/// One row of `pg_type`.
struct TypeRow {
    name: String,
    namespace: i32,
    /// The element type of a true array type (`_int4` → `int4`).
    array_of: Option<i32>,
}

/// The static catalog rows this module reads.
pub struct Functions {
    procs: HashMap<i32, Proc>,
    by_name: HashMap<String, Vec<i32>>,
    types: HashMap<i32, TypeRow>,
    type_by_name: HashMap<String, i32>,
    /// Keywords that are not unreserved: quoted as identifiers.
    keywords: std::collections::HashSet<String>,
    languages: HashMap<i32, String>,
    /// Ordered-set aggregates by name: their number of direct arguments.
    ordered_sets: HashMap<String, usize>,
    /// `pg_description` of the built-in objects: by (OID, catalog OID).
    descriptions: HashMap<(i64, i64), String>,
}

/// The catalogs whose built-in objects' descriptions are shown: those
/// Sluice adds no objects of its own to.
const DESCRIBED: [i64; 13] = [
    1247, 1255, 2601, 2605, 2607, 2612, 2616, 2617, 2753, 3456, 3600, 3601, 3764,
];

/// The description PostgreSQL gives its built-in object `oid` of the
/// catalog `class` (`obj_description(oid, 'pg_proc')`).
pub fn builtin_description(oid: i64, class: i64) -> Option<String> {
    if !DESCRIBED.contains(&class) {
        return None;
    }
    Functions::get()
        .ok()?
        .descriptions
        .get(&(oid, class))
        .cloned()
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> DfResult<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| DataFusionError::Internal(format!("static pg_catalog has no column {name}")))
}

fn strings(batch: &RecordBatch, name: &str) -> DfResult<Vec<Option<String>>> {
    let col = cast(column(batch, name)?, &DataType::Utf8)?;
    Ok(col
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect())
}

fn ints(batch: &RecordBatch, name: &str) -> DfResult<Vec<i64>> {
    let col = cast(column(batch, name)?, &DataType::Int64)?;
    Ok(col
        .as_primitive::<Int64Type>()
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect())
}

fn floats(batch: &RecordBatch, name: &str) -> DfResult<Vec<f32>> {
    let col = cast(column(batch, name)?, &DataType::Float32)?;
    Ok(col
        .as_primitive::<datafusion::arrow::datatypes::Float32Type>()
        .iter()
        .map(|v| v.unwrap_or(0.0))
        .collect())
}

fn bools(batch: &RecordBatch, name: &str) -> DfResult<Vec<bool>> {
    let col = cast(column(batch, name)?, &DataType::Boolean)?;
    Ok(col
        .as_boolean()
        .iter()
        .map(|v| v.unwrap_or(false))
        .collect())
}

fn first_char(s: &Option<String>) -> char {
    s.as_deref().and_then(|s| s.chars().next()).unwrap_or(' ')
}

/// A list as the static tables hold one: `[1034, 26]`, `['i', 'o']`, or
/// an `oidvector`'s `23 23 701`.
fn list(text: &str) -> Vec<String> {
    text.trim_matches(|c| c == '[' || c == ']' || c == '{' || c == '}')
        .split([',', ' '])
        .map(|p| p.trim().trim_matches('\'').to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn oids(text: &str) -> Vec<i32> {
    list(text).iter().filter_map(|p| p.parse().ok()).collect()
}

impl Functions {
    /// The rows, read once per process.
    pub fn get() -> DfResult<&'static Functions> {
        static FUNCTIONS: OnceLock<std::result::Result<Functions, String>> = OnceLock::new();
        FUNCTIONS
            .get_or_init(|| Self::load().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| DataFusionError::Internal(e.clone()))
    }

    fn load() -> DfResult<Functions> {
        let statics = super::pg_setup::static_tables()?;
        let batches = |t: &Arc<ArrowTable>| t.data().to_vec();
        let mut functions = Functions {
            procs: HashMap::new(),
            by_name: HashMap::new(),
            types: HashMap::new(),
            type_by_name: HashMap::new(),
            keywords: Default::default(),
            languages: HashMap::new(),
            ordered_sets: HashMap::new(),
            descriptions: HashMap::new(),
        };
        for b in batches(&statics.pg_description) {
            let (oid, class, sub) = (
                ints(&b, "objoid")?,
                ints(&b, "classoid")?,
                ints(&b, "objsubid")?,
            );
            let text = strings(&b, "description")?;
            for i in 0..b.num_rows() {
                if sub[i] == 0
                    && let Some(t) = &text[i]
                {
                    functions.descriptions.insert((oid[i], class[i]), t.clone());
                }
            }
        }
        for b in batches(&statics.pg_type) {
            let (oid, name, ns) = (
                ints(&b, "oid")?,
                strings(&b, "typname")?,
                ints(&b, "typnamespace")?,
            );
            let (elem, subscript) = (ints(&b, "typelem")?, strings(&b, "typsubscript")?);
            let storage = strings(&b, "typstorage")?;
            for i in 0..b.num_rows() {
                let name = name[i].clone().unwrap_or_default();
                // A true array, not a fixed-length one (`int2vector`).
                let array = subscript[i].as_deref() == Some("array_subscript_handler")
                    && storage[i].as_deref() != Some("p");
                functions
                    .type_by_name
                    .entry(name.clone())
                    .or_insert(oid[i] as i32);
                functions.types.insert(
                    oid[i] as i32,
                    TypeRow {
                        name,
                        namespace: ns[i] as i32,
                        array_of: (array && elem[i] != 0).then_some(elem[i] as i32),
                    },
                );
            }
        }
        for b in batches(&statics.pg_get_keywords) {
            let (word, code) = (strings(&b, "word")?, strings(&b, "catcode")?);
            for i in 0..b.num_rows() {
                if let (Some(w), Some(c)) = (&word[i], &code[i])
                    && c != "U"
                    && !NEWER_KEYWORDS.contains(&w.as_str())
                {
                    functions.keywords.insert(w.clone());
                }
            }
        }
        for b in batches(&statics.pg_language) {
            let (oid, name) = (ints(&b, "oid")?, strings(&b, "lanname")?);
            for i in 0..b.num_rows() {
                functions
                    .languages
                    .insert(oid[i] as i32, name[i].clone().unwrap_or_default());
            }
        }
        for b in batches(&statics.pg_aggregate) {
            let (oid, kind, direct) = (
                strings(&b, "aggfnoid")?,
                strings(&b, "aggkind")?,
                ints(&b, "aggnumdirectargs")?,
            );
            for i in 0..b.num_rows() {
                // aggfnoid is a regproc column: the function's name, the
                // same for every overload of an ordered-set aggregate.
                if matches!(first_char(&kind[i]), 'o' | 'h')
                    && let Some(name) = &oid[i]
                {
                    let name = name.strip_prefix("pg_catalog.").unwrap_or(name);
                    functions
                        .ordered_sets
                        .insert(name.to_string(), direct[i] as usize);
                }
            }
        }
        for b in batches(&statics.pg_proc) {
            let oid = ints(&b, "oid")?;
            let name = strings(&b, "proname")?;
            let ns = ints(&b, "pronamespace")?;
            let kind = strings(&b, "prokind")?;
            let lang = ints(&b, "prolang")?;
            let cost = floats(&b, "procost")?;
            let rows = floats(&b, "prorows")?;
            let support = strings(&b, "prosupport")?;
            let secdef = bools(&b, "prosecdef")?;
            let leakproof = bools(&b, "proleakproof")?;
            let strict = bools(&b, "proisstrict")?;
            let retset = bools(&b, "proretset")?;
            let volatile = strings(&b, "provolatile")?;
            let parallel = strings(&b, "proparallel")?;
            let rettype = ints(&b, "prorettype")?;
            let argtypes = strings(&b, "proargtypes")?;
            let allargtypes = strings(&b, "proallargtypes")?;
            let argmodes = strings(&b, "proargmodes")?;
            let argnames = strings(&b, "proargnames")?;
            let argdefaults = strings(&b, "proargdefaults")?;
            let src = strings(&b, "prosrc")?;
            let bin = strings(&b, "probin")?;
            let sqlbody = strings(&b, "prosqlbody")?;
            for i in 0..b.num_rows() {
                let name = name[i].clone().unwrap_or_default();
                let proc = Proc {
                    name: name.clone(),
                    namespace: ns[i] as i32,
                    kind: first_char(&kind[i]),
                    lang: lang[i] as i32,
                    cost: cost[i],
                    rows: rows[i],
                    support: support[i].clone().unwrap_or_else(|| "-".into()),
                    security_definer: secdef[i],
                    leakproof: leakproof[i],
                    strict: strict[i],
                    returns_set: retset[i],
                    volatility: first_char(&volatile[i]),
                    parallel: first_char(&parallel[i]),
                    rettype: rettype[i] as i32,
                    argtypes: argtypes[i].as_deref().map(oids).unwrap_or_default(),
                    allargtypes: allargtypes[i].as_deref().map(oids),
                    argmodes: argmodes[i]
                        .as_deref()
                        .map(|m| list(m).iter().filter_map(|m| m.chars().next()).collect()),
                    argnames: argnames[i].as_deref().map(list_names),
                    argdefaults: match argdefaults[i].as_deref() {
                        None => Some(Vec::new()),
                        Some(text) => defaults(text, &functions),
                    },
                    src: src[i].clone().unwrap_or_default(),
                    bin: bin[i].clone(),
                    // Its text is found below, once the types are known.
                    sql_body: sqlbody[i].is_some().then_some(None),
                };
                functions
                    .by_name
                    .entry(name)
                    .or_default()
                    .push(oid[i] as i32);
                functions.procs.insert(oid[i] as i32, proc);
            }
        }
        for oids in functions.by_name.values_mut() {
            oids.sort_unstable();
        }
        let mut bodies = sql_bodies();
        let with_body: Vec<(i32, String)> = functions
            .procs
            .iter()
            .filter(|(_, p)| p.sql_body.is_some())
            .map(|(oid, p)| {
                let types: Vec<String> =
                    p.argtypes.iter().map(|t| functions.type_name(*t)).collect();
                let key = format!(
                    "{}.{}({})",
                    namespace_name(p.namespace),
                    p.name,
                    types.join(", ")
                );
                (*oid, key)
            })
            .collect();
        for (oid, key) in with_body {
            if let Some(p) = functions.procs.get_mut(&oid) {
                p.sql_body = Some(bodies.remove(&key));
            }
        }
        Ok(functions)
    }
}

/// `proargnames` as the static table holds it (`['years', 'months']`);
/// an unnamed argument is an empty string.
fn list_names(text: &str) -> Vec<String> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    inner
        .split(',')
        .map(|p| p.trim().trim_matches('\'').trim_matches('"').to_string())
        .collect()
}

/// The top-level `{...}` nodes of a node-tree list.
fn nodes(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '{' => {
                if depth == 0 {
                    start = i;
                }
                depth += 1;
            }
            // A closing brace with none open (the end of an enclosing
            // node) ends nothing.
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(&text[start..=i]);
                }
            }
            _ => {}
        }
    }
    out
}

/// The value that follows `:field ` in a node.
fn field<'a>(node: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(":{name} ");
    let at = node.find(&key)? + key.len();
    node[at..].split_whitespace().next()
}

/// The bytes of a `CONST`'s `:constvalue N [ b0 b1 ... ]`.
fn const_bytes(node: &str) -> Option<Vec<u8>> {
    let at = node.find(":constvalue ")?;
    let rest = &node[at..];
    let open = rest.find('[')?;
    let close = rest.find(']')?;
    rest[open + 1..close]
        .split_whitespace()
        .map(|b| b.parse::<i16>().ok().map(|b| b as u8))
        .collect()
}

/// The payload of a varlena datum (after its 1- or 4-byte header).
fn varlena(bytes: &[u8]) -> Option<&[u8]> {
    let first = *bytes.first()?;
    if first & 0x01 == 1 {
        let len = (first >> 1) as usize;
        bytes.get(1..len)
    } else {
        let len = (u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) >> 2) as usize;
        bytes.get(4..len)
    }
}

/// A string literal as `ruleutils.c` quotes one.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A `numeric` datum (its short or long on-disk form) as text.
fn numeric_text(bytes: &[u8]) -> Option<String> {
    let data = varlena(bytes)?;
    let header = u16::from_le_bytes(data.get(..2)?.try_into().ok()?);
    let (negative, scale, weight, digits_at) = if header & 0xC000 == 0x8000 {
        let weight = (header & 0x3F) as i32;
        let weight = if header & 0x40 != 0 {
            weight | !0x3F
        } else {
            weight
        };
        (
            header & 0x2000 != 0,
            ((header & 0x1F80) >> 7) as usize,
            weight,
            2,
        )
    } else if header & 0xC000 == 0 || header & 0xC000 == 0x4000 {
        let weight = i16::from_le_bytes(data.get(2..4)?.try_into().ok()?) as i32;
        (header & 0x4000 != 0, (header & 0x3FFF) as usize, weight, 4)
    } else {
        return None;
    };
    let digits: Vec<u16> = data[digits_at..]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let digit = |i: i32| {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .copied()
            .unwrap_or(0)
    };
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for w in 0..=weight {
            let d = digit(w);
            if w == 0 {
                out.push_str(&d.to_string());
            } else {
                out.push_str(&format!("{d:04}"));
            }
        }
    }
    if scale > 0 {
        let mut frac = String::new();
        let mut w = weight + 1;
        while frac.len() < scale {
            frac.push_str(&format!("{:04}", digit(w)));
            w += 1;
        }
        frac.truncate(scale);
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

/// An expression of a node tree as `deparse_expression` prints a
/// function argument's default; `None` for a node it does not know.
fn deparse(node: &str, functions: &Functions) -> Option<String> {
    if node.starts_with("{FUNCEXPR") {
        // An implicit cast (`:funcformat 2`) prints as its argument.
        if field(node, "funcformat")? != "2" {
            return None;
        }
        let at = node.find(":args ")?;
        let inner = nodes(&node[at..]);
        return match inner.as_slice() {
            [one] => deparse(one, functions),
            _ => None,
        };
    }
    if !node.starts_with("{CONST") {
        return None;
    }
    let ty: i32 = field(node, "consttype")?.parse().ok()?;
    let label = || format!("::{}", functions.type_name(ty));
    if field(node, "constisnull")? == "true" {
        return Some(format!("NULL{}", label()));
    }
    let bytes = const_bytes(node)?;
    let datum = |n: usize| -> Option<i64> {
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(bytes.get(..n)?);
        Some(match n {
            2 => i16::from_le_bytes([b[0], b[1]]) as i64,
            4 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            _ => i64::from_le_bytes(b),
        })
    };
    Some(match ty {
        16 => if *bytes.first()? != 0 {
            "true"
        } else {
            "false"
        }
        .to_string(),
        23 => {
            let v = datum(4)?;
            if v >= 0 {
                v.to_string()
            } else {
                format!("'{v}'{}", label())
            }
        }
        20 => format!("'{}'{}", datum(8)?, label()),
        21 => format!("'{}'{}", datum(2)?, label()),
        25 | 1043 | 19 => {
            let text = std::str::from_utf8(varlena(&bytes)?).ok()?;
            format!("{}{}", literal(text.trim_end_matches('\0')), label())
        }
        1700 => {
            let text = numeric_text(&bytes)?;
            if text.starts_with(|c: char| c.is_ascii_digit()) && text.contains(['.', 'e', 'E']) {
                text
            } else {
                format!("{}{}", literal(&text), label())
            }
        }
        // jsonb: only an empty object or array is read here.
        3802 => {
            let header = u32::from_le_bytes(varlena(&bytes)?.get(..4)?.try_into().ok()?);
            let text = match header {
                0x2000_0000 => "{}",
                0x4000_0000 => "[]",
                _ => return None,
            };
            format!("{}{}", literal(text), label())
        }
        // An array: only an empty one (no dimensions) is read here.
        _ if functions
            .types
            .get(&ty)
            .is_some_and(|t| t.array_of.is_some()) =>
        {
            let ndim = i32::from_le_bytes(varlena(&bytes)?.get(..4)?.try_into().ok()?);
            if ndim != 0 {
                return None;
            }
            format!("'{{}}'{}", label())
        }
        _ => return None,
    })
}

/// The defaults of `proargdefaults`, printed; `None` if one cannot be.
fn defaults(text: &str, functions: &Functions) -> Option<Vec<String>> {
    nodes(text.trim().trim_start_matches('(').trim_end_matches(')'))
        .into_iter()
        .map(|n| deparse(n, functions))
        .collect()
}

/// A namespace's name.
fn namespace_name(oid: i32) -> &'static str {
    if oid == PG_CATALOG {
        "pg_catalog"
    } else {
        "information_schema"
    }
}

impl Functions {
    /// An identifier as `quote_identifier` prints it: quoted unless it is
    /// lower case letters, digits and underscores and no keyword other
    /// than an unreserved one.
    pub fn quote(&self, ident: &str) -> String {
        let plain = ident.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && ident
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if plain && !self.keywords.contains(ident) {
            ident.to_string()
        } else {
            format!("\"{}\"", ident.replace('"', "\"\""))
        }
    }

    /// A type as `format_type(oid, NULL)` prints it.
    pub fn type_name(&self, oid: i32) -> String {
        self.format_type(oid, None).unwrap_or_else(|| "???".into())
    }

    /// The function `oid` names, if any: an OID beyond int4 (a Sluice
    /// relation's, from a hash) is no built-in function, not one it
    /// would wrap to.
    fn proc(&self, oid: i64) -> Option<&Proc> {
        self.procs.get(&i32::try_from(oid).ok()?)
    }

    /// [`Self::format_type`] of an OID column's value.
    fn format_type_of(&self, oid: i64, typmod: Option<i32>) -> Option<String> {
        self.format_type(i32::try_from(oid).ok()?, typmod)
    }

    /// `format_type(oid, typmod)`: None for an OID that is no type.
    pub fn format_type(&self, oid: i32, typmod: Option<i32>) -> Option<String> {
        let row = self.types.get(&oid)?;
        let (oid, row, array) = match row.array_of.and_then(|e| Some((e, self.types.get(&e)?))) {
            Some((elem, elem_row)) => (elem, elem_row, true),
            None => (oid, row, false),
        };
        let given = typmod.is_some();
        let typmod = typmod.unwrap_or(-1);
        let with = given && typmod >= 0;
        let precision = |name: &str, tz: &str| {
            if with {
                format!("{name}({typmod}){tz}")
            } else {
                format!("{name}{tz}")
            }
        };
        let named = match oid {
            1560 if with => Some(format!("bit({typmod})")),
            1560 if given => Some("\"bit\"".into()),
            1560 => Some("bit".into()),
            16 => Some("boolean".into()),
            1042 if with => Some(if typmod > 4 {
                format!("character({})", typmod - 4)
            } else {
                "character".into()
            }),
            1042 if given => None,
            1042 => Some("character".into()),
            700 => Some("real".into()),
            701 => Some("double precision".into()),
            21 => Some("smallint".into()),
            23 => Some("integer".into()),
            20 => Some("bigint".into()),
            1700 if with => {
                let t = typmod - 4;
                let scale = (((t & 0x7ff) ^ 1024) - 1024) as i64;
                Some(format!("numeric({},{scale})", (t >> 16) & 0xffff))
            }
            1700 => Some("numeric".into()),
            1186 => Some(if with {
                format!("interval{}", interval_typmod(typmod))
            } else {
                "interval".into()
            }),
            1083 => Some(precision("time", " without time zone")),
            1266 => Some(precision("time", " with time zone")),
            1114 => Some(precision("timestamp", " without time zone")),
            1184 => Some(precision("timestamp", " with time zone")),
            1562 => Some(if with {
                format!("bit varying({typmod})")
            } else {
                "bit varying".into()
            }),
            1043 => Some(if with && typmod > 4 {
                format!("character varying({})", typmod - 4)
            } else {
                "character varying".into()
            }),
            _ => None,
        };
        let name = named.unwrap_or_else(|| {
            let name = self.quote(&row.name);
            let name = if row.namespace == PG_CATALOG {
                name
            } else {
                format!("{}.{name}", self.quote(namespace_name(row.namespace)))
            };
            // A modifier of a type without a printer of its own.
            if with {
                format!("{name}({typmod})")
            } else {
                name
            }
        });
        Some(if array { format!("{name}[]") } else { name })
    }

    /// The arguments of `oid` as `print_function_arguments` prints them:
    /// the table columns (`TABLE(...)`) when `table`, else the others;
    /// with their defaults when `with_defaults`. `None` when a default
    /// cannot be printed. The count is of the arguments printed.
    fn arguments(&self, proc: &Proc, table: bool, with_defaults: bool) -> Option<(String, usize)> {
        let types = proc.allargtypes.as_ref().unwrap_or(&proc.argtypes);
        let mut with_defaults = with_defaults;
        let defaults: &[String] = if with_defaults {
            proc.argdefaults.as_deref()?
        } else {
            &[]
        };
        let lacking = proc.argtypes.len().saturating_sub(defaults.len());
        let order_by_at = if proc.kind == 'a' {
            self.ordered_sets.get(&proc.name).copied()
        } else {
            None
        };
        let mut out = String::new();
        let (mut input, mut printed, mut next_default) = (0usize, 0usize, 0usize);
        let mut i = 0;
        while i < types.len() {
            let mode = proc
                .argmodes
                .as_ref()
                .and_then(|m| m.get(i))
                .copied()
                .unwrap_or('i');
            let (mode_name, is_input) = match mode {
                'o' => ("OUT ", false),
                'b' => ("INOUT ", true),
                'v' => ("VARIADIC ", true),
                't' => ("", false),
                _ => ("", true),
            };
            if is_input {
                input += 1;
            }
            if table != (mode == 't') {
                i += 1;
                continue;
            }
            if Some(printed) == order_by_at {
                if printed > 0 {
                    out.push(' ');
                }
                out.push_str("ORDER BY ");
            } else if printed > 0 {
                out.push_str(", ");
            }
            out.push_str(mode_name);
            if let Some(name) = proc.argnames.as_ref().and_then(|n| n.get(i))
                && !name.is_empty()
            {
                out.push_str(&self.quote(name));
                out.push(' ');
            }
            out.push_str(&self.type_name(types[i]));
            if with_defaults && is_input && input > lacking {
                out.push_str(" DEFAULT ");
                out.push_str(defaults.get(next_default)?);
                next_default += 1;
            }
            printed += 1;
            // A variadic ordered-set aggregate prints its last argument
            // again after ORDER BY.
            if Some(printed) == order_by_at && i + 1 == types.len() {
                with_defaults = false;
                continue;
            }
            i += 1;
        }
        Some((out, printed))
    }

    /// `pg_get_function_result`.
    fn result(&self, proc: &Proc) -> Option<String> {
        if proc.kind == 'p' {
            return None;
        }
        if proc.returns_set
            && let Some((columns, n)) = self.arguments(proc, true, false)
            && n > 0
        {
            return Some(format!("TABLE({columns})"));
        }
        let set = if proc.returns_set { "SETOF " } else { "" };
        Some(format!("{set}{}", self.type_name(proc.rettype)))
    }

    /// The error for a function whose SQL-standard body (`RETURN ...`,
    /// `BEGIN ATOMIC ... END`) is kept only as a parse tree here and that
    /// PostgreSQL 15 does not have.
    fn unprintable(&self, proc: &Proc) -> Error {
        Error::new(
            ErrorKind::FeatureNotSupported,
            format!(
                "the SQL body of function {}.{} cannot be shown",
                namespace_name(proc.namespace),
                proc.name
            ),
        )
    }

    /// `pg_get_functiondef`: the statement that would create `proc`.
    fn definition(&self, proc: &Proc) -> Result<String, Error> {
        if proc.kind == 'a' {
            return Err(Error::new(
                ErrorKind::WrongObjectType,
                format!("\"{}\" is an aggregate function", proc.name),
            ));
        }
        let sql_body = match &proc.sql_body {
            Some(None) => return Err(self.unprintable(proc)),
            Some(Some(body)) => Some(body),
            None => None,
        };
        let function = proc.kind != 'p';
        let (arguments, _) = self.arguments(proc, false, true).ok_or_else(|| {
            Error::new(
                ErrorKind::FeatureNotSupported,
                format!(
                    "an argument default of function {}.{} cannot be shown",
                    namespace_name(proc.namespace),
                    proc.name
                ),
            )
        })?;
        let mut out = format!(
            "CREATE OR REPLACE {} {}.{}({arguments})\n",
            if function { "FUNCTION" } else { "PROCEDURE" },
            self.quote(namespace_name(proc.namespace)),
            self.quote(&proc.name),
        );
        if function {
            out.push_str(&format!(
                " RETURNS {}\n",
                self.result(proc).unwrap_or_default()
            ));
        }
        let language = self.languages.get(&proc.lang).cloned().unwrap_or_default();
        out.push_str(&format!(" LANGUAGE {}\n", self.quote(&language)));
        let options = out.len();
        if proc.kind == 'w' {
            out.push_str(" WINDOW");
        }
        match proc.volatility {
            'i' => out.push_str(" IMMUTABLE"),
            's' => out.push_str(" STABLE"),
            _ => {}
        }
        match proc.parallel {
            's' => out.push_str(" PARALLEL SAFE"),
            'r' => out.push_str(" PARALLEL RESTRICTED"),
            _ => {}
        }
        if proc.strict {
            out.push_str(" STRICT");
        }
        if proc.security_definer {
            out.push_str(" SECURITY DEFINER");
        }
        if proc.leakproof {
            out.push_str(" LEAKPROOF");
        }
        // The default cost is 1 for internal and C functions, 100 else.
        let default_cost = if matches!(language.as_str(), "internal" | "c") {
            1.0
        } else {
            100.0
        };
        if proc.cost != default_cost {
            out.push_str(&format!(" COST {}", proc.cost));
        }
        if proc.returns_set && proc.rows != 0.0 && proc.rows != 1000.0 {
            out.push_str(&format!(" ROWS {}", proc.rows));
        }
        if proc.support != "-" {
            let support = proc
                .support
                .strip_prefix("pg_catalog.")
                .unwrap_or(&proc.support);
            out.push_str(&format!(" SUPPORT {support}"));
        }
        if out.len() != options {
            out.push('\n');
        }
        if let Some(body) = sql_body {
            out.push_str(body);
            out.push('\n');
            return Ok(out);
        }
        out.push_str("AS ");
        if let Some(bin) = &proc.bin {
            out.push_str(&literal(bin));
            out.push_str(", ");
        }
        let mut quote = if function { "$function" } else { "$procedure" }.to_string();
        while proc.src.contains(&quote) {
            quote.push('x');
        }
        quote.push('$');
        out.push_str(&format!("{quote}{}{quote}\n", proc.src));
        Ok(out)
    }

    /// `regprocout`: a function's name, qualified when the bare name is
    /// not unique among the functions the search path sees.
    fn regproc_text(&self, oid: i64) -> String {
        if oid == 0 {
            return "-".into();
        }
        let Some(proc) = self.proc(oid) else {
            return oid.to_string();
        };
        let visible = self.visible(&proc.name);
        if proc.namespace == PG_CATALOG && visible.len() == 1 {
            self.quote(&proc.name)
        } else {
            format!(
                "{}.{}",
                self.quote(namespace_name(proc.namespace)),
                self.quote(&proc.name)
            )
        }
    }

    /// `regprocedureout`: `name(type,type)`.
    fn regprocedure_text(&self, oid: i64) -> String {
        if oid == 0 {
            return "-".into();
        }
        let Some(proc) = self.proc(oid) else {
            return oid.to_string();
        };
        let name = if proc.namespace == PG_CATALOG {
            self.quote(&proc.name)
        } else {
            format!(
                "{}.{}",
                self.quote(namespace_name(proc.namespace)),
                self.quote(&proc.name)
            )
        };
        let args: Vec<String> = proc.argtypes.iter().map(|t| self.type_name(*t)).collect();
        format!("{name}({})", args.join(","))
    }

    /// The OIDs of the functions named `name` that the search path sees
    /// (PostgreSQL's own are in `pg_catalog`, always searched).
    fn visible(&self, name: &str) -> Vec<i32> {
        self.by_name
            .get(name)
            .map(|oids| {
                oids.iter()
                    .copied()
                    .filter(|o| self.procs.get(o).is_some_and(|p| p.namespace == PG_CATALOG))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The functions `parts` (a name, optionally qualified) names.
    fn named(&self, parts: &[String], text: &str) -> Result<Vec<i32>, Error> {
        let undefined = || {
            Error::new(
                ErrorKind::UndefinedFunction,
                format!("function \"{text}\" does not exist"),
            )
        };
        match parts {
            [name] => Ok(self.visible(name)),
            [schema, name] => {
                let namespace = match schema.as_str() {
                    "pg_catalog" => PG_CATALOG,
                    "information_schema" => {
                        match self.procs.values().find(|p| p.namespace != PG_CATALOG) {
                            Some(p) => p.namespace,
                            None => return Ok(Vec::new()),
                        }
                    }
                    _ => return Ok(Vec::new()),
                };
                Ok(self
                    .by_name
                    .get(name)
                    .map(|oids| {
                        oids.iter()
                            .copied()
                            .filter(|o| self.procs.get(o).is_some_and(|p| p.namespace == namespace))
                            .collect()
                    })
                    .unwrap_or_default())
            }
            _ => Err(undefined()),
        }
    }

    /// `regprocin`: the OID of the one function `text` names.
    fn regproc(&self, text: &str) -> Result<i32, Error> {
        if let Ok(oid) = text.trim().parse::<i32>() {
            return Ok(oid);
        }
        let parts = crate::types::ident::parse_ident(text, true)?;
        let found = self.named(&parts, text)?;
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(Error::new(
                ErrorKind::UndefinedFunction,
                format!("function \"{text}\" does not exist"),
            )),
            _ => Err(Error::new(
                ErrorKind::AmbiguousFunction,
                format!("more than one function named \"{text}\""),
            )),
        }
    }

    /// A type named in a `regprocedure`'s argument list.
    fn type_named(&self, name: &str) -> Result<i32, Error> {
        let name = name.trim();
        if let Some(elem) = name.strip_suffix("[]") {
            let elem = self.type_named(elem)?;
            if let Some((oid, _)) = self.types.iter().find(|(_, t)| t.array_of == Some(elem)) {
                return Ok(*oid);
            }
        }
        if let Some(oid) = sql_type_oid(name) {
            return Ok(oid);
        }
        let bare = name.trim_matches('"');
        let key = if name.starts_with('"') {
            bare.to_string()
        } else {
            bare.to_ascii_lowercase()
        };
        let key = key.strip_prefix("pg_catalog.").unwrap_or(&key);
        self.type_by_name.get(key).copied().ok_or_else(|| {
            Error::new(
                ErrorKind::UndefinedObject,
                format!("type \"{name}\" does not exist"),
            )
        })
    }

    /// `regprocedurein`: the OID of the function `name(type, ...)`.
    fn regprocedure(&self, text: &str) -> Result<i32, Error> {
        if let Ok(oid) = text.trim().parse::<i32>() {
            return Ok(oid);
        }
        let undefined = || {
            Error::new(
                ErrorKind::UndefinedFunction,
                format!("function \"{text}\" does not exist"),
            )
        };
        let (name, args) = match (text.find('('), text.rfind(')')) {
            (Some(open), Some(close)) if close > open && text[close + 1..].trim().is_empty() => {
                (&text[..open], &text[open + 1..close])
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidText,
                    "expected a left parenthesis",
                ));
            }
        };
        let parts = crate::types::ident::parse_ident(name, true)?;
        let types = split_types(args)
            .iter()
            .map(|t| self.type_named(t))
            .collect::<Result<Vec<_>, _>>()?;
        self.named(&parts, text)?
            .into_iter()
            .find(|o| self.procs.get(o).is_some_and(|p| p.argtypes == types))
            .ok_or_else(undefined)
    }
}

/// The argument types of a signature, split at the top-level commas
/// (`numeric(10, 2)` is one type).
fn split_types(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut current) = (0, String::new());
    for c in args.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// The `interval` type modifier as `intervaltypmodout` prints it.
fn interval_typmod(typmod: i32) -> String {
    const YEAR: i32 = 1 << 2;
    const MONTH: i32 = 1 << 1;
    const DAY: i32 = 1 << 3;
    const HOUR: i32 = 1 << 10;
    const MINUTE: i32 = 1 << 11;
    const SECOND: i32 = 1 << 12;
    let precision = typmod & 0xFFFF;
    let fields = (typmod >> 16) & 0x7FFF;
    let text = match fields {
        YEAR => " year",
        MONTH => " month",
        DAY => " day",
        HOUR => " hour",
        MINUTE => " minute",
        SECOND => " second",
        f if f == YEAR | MONTH => " year to month",
        f if f == DAY | HOUR => " day to hour",
        f if f == DAY | HOUR | MINUTE => " day to minute",
        f if f == DAY | HOUR | MINUTE | SECOND => " day to second",
        f if f == HOUR | MINUTE => " hour to minute",
        f if f == HOUR | MINUTE | SECOND => " hour to second",
        f if f == MINUTE | SECOND => " minute to second",
        _ => "",
    };
    if precision != 0xFFFF {
        format!("{text}({precision})")
    } else {
        text.to_string()
    }
}

/// The OID of a type by any of its SQL spellings (`integer`, `int4`,
/// `character varying`), as Sluice's types know them.
pub fn sql_type_oid(name: &str) -> Option<i32> {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    let ty = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(name)
        .and_then(|mut p| p.parse_data_type())
        .ok()?;
    crate::types::PgType::from_sql(&ty)
        .ok()?
        .known_oid()
        .map(|o| o as i32)
}

/// A function of one OID column answering text (NULL for a NULL OID).
fn text_of_oid(name: &str, f: fn(&Functions, i64) -> Result<Option<String>, Error>) -> ScalarUDF {
    create_udf(
        name,
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(make_scalar_function(
            move |args: &[ArrayRef]| {
                let functions = Functions::get()?;
                let oids = cast(&args[0], &DataType::Int64)?;
                let out = oids
                    .as_primitive::<Int64Type>()
                    .iter()
                    .map(|o| match o {
                        Some(o) => f(functions, o),
                        None => Ok(None),
                    })
                    .collect::<Result<StringArray, Error>>()?;
                Ok(Arc::new(out) as ArrayRef)
            },
            vec![],
        )),
    )
}

/// A function of one name column answering an OID.
fn oid_of_text(name: &str, f: fn(&Functions, &str) -> Result<i32, Error>) -> ScalarUDF {
    create_udf(
        name,
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(make_scalar_function(
            move |args: &[ArrayRef]| {
                let functions = Functions::get()?;
                let names = cast(&args[0], &DataType::Utf8)?;
                let out = names
                    .as_string::<i32>()
                    .iter()
                    .map(|n| n.map(|n| f(functions, n)).transpose())
                    .collect::<Result<Int32Array, Error>>()?;
                Ok(Arc::new(out) as ArrayRef)
            },
            vec![],
        )),
    )
}

/// `format_type(type_oid, typmod)`.
pub fn format_type_udf() -> ScalarUDF {
    create_udf(
        "format_type",
        vec![DataType::Int64, DataType::Int64],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(make_scalar_function(
            |args: &[ArrayRef]| {
                let functions = Functions::get()?;
                let oids = cast(&args[0], &DataType::Int64)?;
                let mods = cast(&args[1], &DataType::Int64)?;
                let (oids, mods) = (
                    oids.as_primitive::<Int64Type>(),
                    mods.as_primitive::<Int64Type>(),
                );
                let out: StringArray = (0..oids.len())
                    .map(|i| {
                        (!oids.is_null(i)).then(|| {
                            // A modifier beyond int4 is none.
                            let typmod = (!mods.is_null(i))
                                .then(|| i32::try_from(mods.value(i)).unwrap_or(-1));
                            functions
                                .format_type_of(oids.value(i), typmod)
                                .unwrap_or_else(|| "???".into())
                        })
                    })
                    .collect();
                Ok(Arc::new(out) as ArrayRef)
            },
            vec![],
        )),
    )
}

/// The functions of this module, to register in a session.
pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        format_type_udf(),
        text_of_oid("pg_get_function_result", |f, oid| {
            Ok(f.proc(oid).and_then(|p| f.result(p)))
        }),
        text_of_oid("pg_get_function_arguments", |f, oid| {
            Ok(f.proc(oid)
                .and_then(|p| f.arguments(p, false, true))
                .map(|(a, _)| a))
        }),
        text_of_oid("pg_get_function_identity_arguments", |f, oid| {
            Ok(f.proc(oid)
                .and_then(|p| f.arguments(p, false, false))
                .map(|(a, _)| a))
        }),
        text_of_oid("pg_get_functiondef", |f, oid| {
            f.proc(oid).map(|p| f.definition(p)).transpose()
        }),
        // psql's `\df+` reads a SQL-standard body through this; the
        // others have none (NULL).
        text_of_oid("pg_get_function_sqlbody", |f, oid| match f.proc(oid) {
            Some(p) => match &p.sql_body {
                Some(Some(body)) => Ok(Some(body.clone())),
                Some(None) => Err(f.unprintable(p)),
                None => Ok(None),
            },
            None => Ok(None),
        }),
        text_of_oid(REGPROC_NAME, |f, oid| Ok(Some(f.regproc_text(oid)))),
        text_of_oid(REGPROCEDURE_NAME, |f, oid| {
            Ok(Some(f.regprocedure_text(oid)))
        }),
        oid_of_text(REGPROC_FOUND, Functions::regproc),
        oid_of_text(REGPROCEDURE_FOUND, Functions::regprocedure),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sql_body_of_postgresql_15_is_found() {
        // The file's every line parses, and each names a function of the
        // static pg_proc: a body lost to a typo would answer 0A000.
        let file = include_str!("pg_sql_bodies.jsonl").lines().count();
        assert_eq!(sql_bodies().len(), file);
        let f = Functions::get().unwrap();
        let found = f
            .procs
            .values()
            .filter(|p| matches!(p.sql_body, Some(Some(_))))
            .count();
        assert_eq!(found, file, "of {file} bodies");
    }

    #[test]
    fn every_argument_list_prints_with_its_defaults() {
        let f = Functions::get().unwrap();
        assert!(f.procs.len() > 3000, "{} functions", f.procs.len());
        for (oid, p) in &f.procs {
            assert!(
                f.arguments(p, false, true).is_some(),
                "the defaults of {} ({oid}) do not print",
                p.name
            );
            assert!(
                p.namespace == PG_CATALOG || namespace_name(p.namespace) == "information_schema"
            );
        }
        let interval = f.by_name["make_interval"][0];
        assert_eq!(
            f.arguments(&f.procs[&interval], false, true).unwrap().0,
            "years integer DEFAULT 0, months integer DEFAULT 0, weeks integer DEFAULT 0, \
             days integer DEFAULT 0, hours integer DEFAULT 0, mins integer DEFAULT 0, \
             secs double precision DEFAULT 0.0"
        );
    }

    #[test]
    fn names_resolve_as_postgres_resolves_them() {
        let f = Functions::get().unwrap();
        assert_eq!(
            f.regproc("lower").unwrap_err().kind,
            ErrorKind::AmbiguousFunction
        );
        assert_eq!(
            f.regproc("nope").unwrap_err().kind,
            ErrorKind::UndefinedFunction
        );
        assert_eq!(
            f.regproc("nope.lower").unwrap_err().kind,
            ErrorKind::UndefinedFunction
        );
        let upper = i64::from(f.regprocedure("upper(text)").unwrap());
        assert_eq!(
            i64::from(f.regprocedure("pg_catalog.UPPER( text )").unwrap()),
            upper
        );
        // An OID beyond int4 is no function, not the one it would wrap to.
        let wrapped = upper + (1i64 << 32);
        assert!(f.proc(wrapped).is_none());
        assert_eq!(f.regproc_text(wrapped), wrapped.to_string());
        assert_eq!(f.format_type_of(25 + (1i64 << 32), None), None);
        assert_eq!(f.regprocedure_text(upper), "upper(text)");
        assert_eq!(f.regproc_text(upper), "pg_catalog.upper");
        assert_eq!(
            f.regproc_text(f.regproc("array_in").unwrap().into()),
            "array_in"
        );
        assert_eq!(f.regproc_text(0), "-");
        assert_eq!(
            f.regprocedure("upper(nope)").unwrap_err().kind,
            ErrorKind::UndefinedObject
        );
        let numeric = f.regprocedure("round(numeric, integer)").unwrap().into();
        assert_eq!(f.regprocedure_text(numeric), "round(numeric,integer)");
        assert_eq!(
            split_types("numeric(10, 2), text[]"),
            ["numeric(10, 2)", " text[]"]
        );
    }

    #[test]
    fn types_print_as_format_type_prints_them() {
        let f = Functions::get().unwrap();
        for (oid, typmod, text) in [
            (2276, None, "\"any\""),
            (18, None, "\"char\""),
            (22, None, "int2vector"),
            (1007, None, "integer[]"),
            (1700, Some(655366), "numeric(10,2)"),
            (1700, Some((5 << 16) + (-2i32 & 0x7ff) + 4), "numeric(5,-2)"),
            (1042, Some(-1), "bpchar"),
            (1560, Some(-1), "\"bit\""),
            (
                1186,
                Some((((1 << 3) | (1 << 10)) << 16) | 0xFFFF),
                "interval day to hour",
            ),
            (1186, Some((0x7FFF << 16) | 3), "interval(3)"),
            (114, None, "json"),
        ] {
            assert_eq!(
                f.format_type(oid, typmod).as_deref(),
                Some(text),
                "{oid} {typmod:?}"
            );
        }
        assert_eq!(f.format_type(999_999, None), None);
        assert_eq!(f.quote("select"), "\"select\"");
        assert_eq!(f.quote("Mixed"), "\"Mixed\"");
        assert_eq!(f.quote("name"), "name");
    }

    #[test]
    fn numeric_constants_decode() {
        // 6-byte short numerics: 0.0, and 12.5 (weight 0, digits 12 and 5000, scale 1).
        assert_eq!(
            numeric_text(&[24, 0, 0, 0, 0x80, 0x80]).as_deref(),
            Some("0.0")
        );
        let bytes = [40, 0, 0, 0, 0x80, 0x80, 12, 0, 0x88, 0x13];
        assert_eq!(numeric_text(&bytes).as_deref(), Some("12.5"));
        // Negative, weight 1: -10000.
        let bytes = [32, 0, 0, 0, 0x01, 0xA0, 1, 0, 0, 0];
        assert_eq!(numeric_text(&bytes).as_deref(), Some("-10000"));
        assert_eq!(list("[1034, 26]"), ["1034", "26"]);
        assert_eq!(list("['i', 'o']"), ["i", "o"]);
        assert_eq!(list_names("['', 'b']"), ["", "b"]);
    }
}
