//! Jinja for models, snapshots and singular tests (minijinja): `ref`,
//! `source`, `config`, `this`, `is_incremental`, `var`, `env_var`, `log`,
//! `target` and the macros of `macros/*.sql`.
//!
//! Every node is rendered once while the project is read, to learn what it
//! reads and its `config()`; then again when it runs, with the relations
//! and `is_incremental()` of that moment.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use minijinja::value::{Kwargs, Object, Value};
use minijinja::{Environment, ErrorKind as JinjaKind, UndefinedBehavior};
use serde_json::Value as Json;

use super::{NodeKind, Project, Relation};

/// What rendering a node found.
#[derive(Debug, Default, Clone)]
pub struct Rendered {
    pub sql: String,
    /// Ids of the nodes `ref` named, in order, without repeats.
    pub refs: Vec<String>,
    pub sources: Vec<Relation>,
    pub config: BTreeMap<String, Json>,
}

/// A relation in a template: renders as `schema.name` and has dbt's
/// attributes.
#[derive(Debug)]
struct RelationValue {
    relation: Relation,
    /// Set for an ephemeral model: renders as its CTE name instead.
    cte: Option<String>,
}

impl Object for RelationValue {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "schema" => Some(Value::from(self.relation.schema.clone())),
            "name" | "identifier" | "table" => Some(Value::from(self.relation.name.clone())),
            "database" => Some(Value::from("sluice")),
            _ => None,
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result
    where
        Self: Sized + 'static,
    {
        match &self.cte {
            Some(c) => f.write_str(c),
            None => f.write_str(&self.relation.sql()),
        }
    }
}

/// The name an ephemeral model's CTE has in the models that read it.
pub fn cte_name(model: &str) -> String {
    format!("__dbt__cte__{model}")
}

/// What the template functions of one render see and record.
struct Scope {
    /// Node name → (id, relation, materialized).
    names: BTreeMap<String, (String, Relation, String)>,
    sources: BTreeMap<(String, String), Relation>,
    vars: BTreeMap<String, Json>,
    found: Mutex<Rendered>,
    /// When running (not while reading the project): `log` prints.
    execute: bool,
}

fn jinja_error(msg: impl Into<String>) -> minijinja::Error {
    minijinja::Error::new(JinjaKind::InvalidOperation, msg.into())
}

fn to_value(j: &Json) -> Value {
    match j {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::from(s.clone()),
        Json::Array(a) => a.iter().map(to_value).collect(),
        Json::Object(m) => Value::from_pairs(m.iter().map(|(k, v)| (k.clone(), to_value(v)))),
    }
}

fn to_json(v: &Value) -> Json {
    use minijinja::value::ValueKind;
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => Json::Null,
        ValueKind::Bool => Json::Bool(v.is_true()),
        ValueKind::Number => match v.as_i64() {
            Some(i) => Json::from(i),
            None => v
                .to_string()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Json::Number)
                .unwrap_or(Json::Null),
        },
        ValueKind::Seq | ValueKind::Iterable => Json::Array(
            v.try_iter()
                .map(|it| it.map(|x| to_json(&x)).collect())
                .unwrap_or_default(),
        ),
        ValueKind::Map => {
            let mut m = serde_json::Map::new();
            if let Ok(keys) = v.try_iter() {
                for k in keys {
                    if let Ok(x) = v.get_item(&k) {
                        m.insert(k.to_string(), to_json(&x));
                    }
                }
            }
            Json::Object(m)
        }
        _ => Json::String(v.to_string()),
    }
}

/// A message naming the file and line of a template error.
pub fn describe(path: &str, e: &minijinja::Error) -> String {
    let line = e.line().map(|l| format!(" line {l}")).unwrap_or_default();
    let what = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    format!("{path}{line}: {what}")
}

fn macro_imports(project: &Project) -> (String, Vec<(String, String)>) {
    static DEF: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\{%-?\s*macro\s+(\w+)").expect("regex"));
    let def = &*DEF;
    let mut imports = String::new();
    for (path, text) in &project.macros {
        let names: Vec<&str> = def
            .captures_iter(text)
            .filter_map(|c| c.get(1).map(|m| m.as_str()))
            .collect();
        if !names.is_empty() {
            imports.push_str(&format!(
                "{{% from {:?} import {} %}}",
                path,
                names.join(", ")
            ));
        }
    }
    (imports, project.macros.clone())
}

/// Render `text` (the template of node `path`) with `this` = `this`.
fn render_text(
    project: &Project,
    scope: Arc<Scope>,
    path: &str,
    text: &str,
    this: Option<Relation>,
    is_incremental: bool,
) -> Result<Rendered, String> {
    let mut env = Environment::new();
    // As Jinja2 (and so dbt): an undefined name renders empty; using it
    // further (calling it, reading its attributes) is an error.
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    let (imports, macros) = macro_imports(project);
    for (p, t) in macros {
        env.add_template_owned(p.clone(), t)
            .map_err(|e| describe(&p, &e))?;
    }
    let s = scope.clone();
    env.add_function(
        "ref",
        move |args: &[Value]| -> Result<Value, minijinja::Error> {
            let name = match args {
                [n] | [_, n] => n.as_str().unwrap_or_default().to_string(),
                _ => {
                    return Err(jinja_error(
                        "ref() takes a model name (and optionally a package)",
                    ));
                }
            };
            let Some((id, relation, materialized)) = s.names.get(&name) else {
                return Err(jinja_error(format!(
                    "ref('{name}') names no model, seed or snapshot of this project"
                )));
            };
            let mut found = s.found.lock().expect("render state");
            if !found.refs.contains(id) {
                found.refs.push(id.clone());
            }
            let cte = (materialized == "ephemeral").then(|| cte_name(&name));
            Ok(Value::from_object(RelationValue {
                relation: relation.clone(),
                cte,
            }))
        },
    );
    let s = scope.clone();
    env.add_function("source", move |source: String, table: String| {
        let Some(relation) = s.sources.get(&(source.clone(), table.clone())) else {
            return Err(jinja_error(format!(
                "source('{source}', '{table}') is not declared in any YAML file's `sources:`"
            )));
        };
        let mut found = s.found.lock().expect("render state");
        if !found.sources.contains(relation) {
            found.sources.push(relation.clone());
        }
        Ok(Value::from_object(RelationValue {
            relation: relation.clone(),
            cte: None,
        }))
    });
    let s = scope.clone();
    env.add_function("config", move |kwargs: Kwargs| {
        let mut found = s.found.lock().expect("render state");
        for k in kwargs.args() {
            let v: Value = kwargs.get(k)?;
            found.config.insert(k.to_string(), to_json(&v));
        }
        Ok(Value::from(""))
    });
    let s = scope.clone();
    env.add_function("var", move |name: String, default: Option<Value>| {
        match (s.vars.get(&name), default) {
            (Some(v), _) => Ok(to_value(v)),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(jinja_error(format!(
                "required var '{name}' is not set (project file `vars:` or --vars)"
            ))),
        }
    });
    env.add_function("env_var", |name: String, default: Option<String>| {
        match (std::env::var(&name), default) {
            (Ok(v), _) => Ok(Value::from(v)),
            (Err(_), Some(d)) => Ok(Value::from(d)),
            (Err(_), None) => Err(jinja_error(format!(
                "env var '{name}' is not set and has no default"
            ))),
        }
    });
    let s = scope.clone();
    env.add_function("log", move |msg: Value, _kwargs: Kwargs| {
        if s.execute {
            eprintln!("{msg}");
        }
        Ok(Value::from(""))
    });
    env.add_function("is_incremental", move || is_incremental);
    let this_value = this.map(|r| {
        Value::from_object(RelationValue {
            relation: r,
            cte: None,
        })
    });
    if let Some(t) = &this_value {
        env.add_global("this", t.clone());
    }
    env.add_global(
        "target",
        Value::from_pairs([
            ("name", Value::from("default")),
            ("schema", Value::from(project.schema.clone())),
            ("type", Value::from("sluice")),
            ("database", Value::from("sluice")),
        ]),
    );
    env.add_global("execute", scope.execute);
    env.add_global(
        "run_started_at",
        chrono::Utc::now()
            .format("%Y-%m-%d %H:%M:%S%.6f+00:00")
            .to_string(),
    );
    // The imports go on the first line, so lines stay where they are.
    let source = format!("{imports}{text}");
    env.add_template_owned(path.to_string(), source)
        .map_err(|e| describe(path, &e))?;
    let tmpl = env.get_template(path).map_err(|e| describe(path, &e))?;
    let sql = tmpl
        .render(minijinja::context! {})
        .map_err(|e| describe(path, &e))?;
    let mut found = scope.found.lock().expect("render state").clone();
    found.sql = sql;
    Ok(found)
}

fn scope(project: &Project, execute: bool) -> Arc<Scope> {
    let names = project
        .nodes
        .iter()
        .filter(|n| n.kind != NodeKind::Test)
        .map(|n| {
            let relation = n.relation.clone().unwrap_or_else(|| Relation {
                schema: project.schema.clone(),
                name: n.name.clone(),
            });
            (
                n.name.clone(),
                (n.id.clone(), relation, n.materialized().to_string()),
            )
        })
        .collect();
    let sources = project
        .sources
        .iter()
        .map(|s| ((s.source.clone(), s.table.clone()), s.relation.clone()))
        .collect();
    Arc::new(Scope {
        names,
        sources,
        vars: project.vars.clone(),
        found: Mutex::new(Rendered::default()),
        execute,
    })
}

/// Read each node's template once: its `config()`, refs and sources, and
/// then the relation it builds. A template that does not render leaves its
/// node with an error (its run fails with it; nodes not reading it build).
pub fn parse(project: &mut Project) {
    let scope0 = scope(project, false);
    let mut results = Vec::new();
    for (i, node) in project.nodes.iter().enumerate() {
        if node.error.is_some() || node.generic.is_some() || node.kind == NodeKind::Seed {
            continue;
        }
        let s = Arc::new(Scope {
            names: scope0.names.clone(),
            sources: scope0.sources.clone(),
            vars: scope0.vars.clone(),
            found: Mutex::new(Rendered::default()),
            execute: false,
        });
        let path = node.path.to_string_lossy().to_string();
        let this = Relation {
            schema: project.schema.clone(),
            name: node.name.clone(),
        };
        results.push((
            i,
            render_text(project, s, &path, &node.raw, Some(this), false),
        ));
    }
    for (i, r) in results {
        let node = &mut project.nodes[i];
        match r {
            Ok(r) => {
                node.config.extend(r.config);
                node.depends_on.extend(r.refs);
                node.sources = r.sources;
            }
            Err(e) => node.error = Some(e),
        }
    }
    for i in 0..project.nodes.len() {
        if project.nodes[i].kind != NodeKind::Test {
            let schema = project.schema_for(&project.nodes[i]);
            let node = &mut project.nodes[i];
            let name = node
                .config_str("alias")
                .unwrap_or_else(|| node.name.clone());
            node.relation = Some(Relation { schema, name });
        }
    }
    for n in &mut project.nodes {
        n.depends_on.sort();
        n.depends_on.dedup();
    }
}

/// The SQL of `node` to run now: rendered with the final relations, with
/// the ephemeral models it reads put in front as CTEs.
pub fn compile(project: &Project, node_id: &str, is_incremental: bool) -> Result<String, String> {
    let node = project
        .node(node_id)
        .ok_or_else(|| format!("no node {node_id}"))?;
    let path = node.path.to_string_lossy().to_string();
    let base = scope(project, true);
    let fresh = || {
        Arc::new(Scope {
            names: base.names.clone(),
            sources: base.sources.clone(),
            vars: base.vars.clone(),
            found: Mutex::new(Rendered::default()),
            execute: true,
        })
    };
    let main = render_text(
        project,
        fresh(),
        &path,
        &node.raw,
        node.relation.clone(),
        is_incremental,
    )?;
    // Ephemeral models read (also through other ephemerals), dependencies
    // first.
    let mut ctes: Vec<(String, String)> = Vec::new();
    let mut visiting: Vec<String> = Vec::new();
    fn visit(
        project: &Project,
        id: &str,
        fresh: &dyn Fn() -> Arc<Scope>,
        ctes: &mut Vec<(String, String)>,
        visiting: &mut Vec<String>,
    ) -> Result<(), String> {
        let Some(n) = project.node(id) else {
            return Ok(());
        };
        if n.materialized() != "ephemeral" || ctes.iter().any(|(name, _)| *name == n.name) {
            return Ok(());
        }
        if visiting.iter().any(|v| v == id) {
            return Err(format!(
                "ephemeral models reference each other in a cycle at {}",
                n.name
            ));
        }
        visiting.push(id.to_string());
        let path = n.path.to_string_lossy().to_string();
        let r = render_text(project, fresh(), &path, &n.raw, n.relation.clone(), false)?;
        for d in &r.refs {
            visit(project, d, fresh, ctes, visiting)?;
        }
        visiting.pop();
        ctes.push((n.name.clone(), strip_semicolon(&r.sql)));
        Ok(())
    }
    for d in &main.refs {
        visit(project, d, &fresh, &mut ctes, &mut visiting)?;
    }
    let sql = strip_semicolon(&main.sql);
    if ctes.is_empty() {
        return Ok(sql);
    }
    let list = ctes
        .iter()
        .map(|(name, body)| format!("{} AS (\n{body}\n)", cte_name(name)))
        .collect::<Vec<_>>()
        .join(",\n");
    Ok(with_ctes(&sql, &list))
}

/// A query's text without a trailing `;`.
pub fn strip_semicolon(sql: &str) -> String {
    sql.trim_end().trim_end_matches(';').trim_end().to_string()
}

/// `ctes` put in front of `sql`: into its own WITH list when it has one.
fn with_ctes(sql: &str, ctes: &str) -> String {
    let start = sql_start(sql);
    let rest = &sql[start..];
    let lower = rest.to_ascii_lowercase();
    if lower.starts_with("with") && lower[4..].starts_with(|c: char| c.is_whitespace()) {
        let after = &rest[4..];
        let trimmed = after.trim_start();
        if trimmed.to_ascii_lowercase().starts_with("recursive")
            && trimmed[9..].starts_with(|c: char| c.is_whitespace())
        {
            let skip = after.len() - trimmed.len() + 9;
            return format!("{}WITH RECURSIVE {ctes},{}", &sql[..start], &after[skip..]);
        }
        return format!("{}WITH {ctes},{after}", &sql[..start]);
    }
    format!("{}WITH {ctes}\n{rest}", &sql[..start])
}

/// Where the statement starts: after leading blanks and comments.
fn sql_start(sql: &str) -> usize {
    let mut i = 0;
    let b = sql.as_bytes();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if sql[i..].starts_with("--") {
            match sql[i..].find('\n') {
                Some(n) => i += n + 1,
                None => return sql.len(),
            }
        } else if sql[i..].starts_with("/*") {
            match sql[i..].find("*/") {
                Some(n) => i += n + 2,
                None => return sql.len(),
            }
        } else {
            return i;
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn ctes_join_an_existing_with_list() {
        assert_eq!(
            with_ctes("-- c\nselect 1", "a AS (x)"),
            "-- c\nWITH a AS (x)\nselect 1"
        );
        assert_eq!(
            with_ctes("with b as (select 1) select * from b", "a AS (x)"),
            "WITH a AS (x), b as (select 1) select * from b"
        );
        assert_eq!(
            with_ctes("WITH RECURSIVE r(n) AS (select 1) select 1", "a AS (x)"),
            "WITH RECURSIVE a AS (x), r(n) AS (select 1) select 1"
        );
        assert_eq!(
            with_ctes("without_table_name", "a AS (x)"),
            "WITH a AS (x)\nwithout_table_name"
        );
    }

    #[test]
    fn semicolons_at_the_end_go() {
        assert_eq!(strip_semicolon("select 1;\n"), "select 1");
    }
}
