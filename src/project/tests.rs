//! Generic tests declared in YAML (`unique`, `not_null`, `accepted_values`,
//! `relationships`), both in dbt's older form (arguments beside `config`)
//! and its newer one (`arguments:`). A test is a query whose rows are the
//! failures.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::{GenericTest, Node, NodeKind, Project, Relation, project_error, quote};
use crate::error::Result;

const GENERIC: &[&str] = &["unique", "not_null", "accepted_values", "relationships"];

/// The test node for one entry of a `data_tests:` / `tests:` list.
pub fn generic_node(
    project: &Project,
    yaml: &str,
    on: &str,
    on_name: &str,
    column: Option<String>,
    entry: &Json,
) -> Result<Node> {
    let (test, body) = match entry {
        Json::String(s) => (s.clone(), Json::Object(Default::default())),
        Json::Object(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().expect("one entry");
            (k.clone(), v.clone())
        }
        Json::Object(m) if m.contains_key("test_name") => (
            m["test_name"].as_str().unwrap_or_default().to_string(),
            entry.clone(),
        ),
        other => {
            return Err(project_error(format!(
                "{yaml}: a test of {on_name} is neither a name nor a one-key mapping: {other}"
            )));
        }
    };
    let test = test.rsplit('.').next().unwrap_or(&test).to_string();
    let mut args: BTreeMap<String, Json> = BTreeMap::new();
    let mut config: BTreeMap<String, Json> = BTreeMap::new();
    let mut custom_name = None;
    if let Json::Object(m) = &body {
        for (k, v) in m {
            match k.as_str() {
                "arguments" => {
                    if let Json::Object(a) = v {
                        args.extend(a.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                }
                "config" => {
                    if let Json::Object(c) = v {
                        config.extend(c.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                }
                "name" => custom_name = v.as_str().map(str::to_string),
                "test_name" | "description" => {}
                // Older form: configs may sit beside the arguments.
                "severity" | "store_failures" | "where" | "enabled" | "tags" | "warn_if"
                | "error_if" | "limit" => {
                    config.insert(k.clone(), v.clone());
                }
                _ => {
                    args.insert(k.clone(), v.clone());
                }
            }
        }
    }
    let sanitize = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut name = match &column {
        Some(c) => format!("{test}_{on_name}_{}", sanitize(c)),
        None => format!("{test}_{on_name}"),
    };
    match test.as_str() {
        "accepted_values" => {
            for v in args
                .get("values")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
            {
                let s = match v {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                name.push_str("__");
                name.push_str(&sanitize(&s));
            }
        }
        "relationships" => {
            if let Some(f) = args.get("field").and_then(|v| v.as_str()) {
                name.push_str(&format!("__{}", sanitize(f)));
            }
            if let Some(t) = args.get("to").and_then(|v| v.as_str()) {
                name.push_str(&format!("__{}", sanitize(t)));
            }
        }
        _ => {}
    }
    if let Some(n) = custom_name {
        name = n;
    }
    let mut unique = name.clone();
    let mut k = 2;
    while project
        .nodes
        .iter()
        .any(|n| n.kind == NodeKind::Test && n.name == unique)
    {
        unique = format!("{name}_{k}");
        k += 1;
    }
    let mut error = None;
    if !GENERIC.contains(&test.as_str()) {
        error = Some(format!(
            "{yaml}: test `{test}` on {on_name} is not a generic test Sluice knows \
             (unique, not_null, accepted_values, relationships)"
        ));
    } else if test != "relationships" && test != "accepted_values" && column.is_none() {
        error = Some(format!("{yaml}: test `{test}` on {on_name} needs a column"));
    }
    let mut depends_on = vec![on.to_string()];
    let mut sources = vec![];
    if test == "relationships" {
        match args.get("to").and_then(|v| v.as_str()).map(parse_target) {
            Some(Some(Target::Ref(m))) => match project.by_name(&m) {
                Some(n) => depends_on.push(n.id.clone()),
                None => {
                    error = Some(format!(
                        "{yaml}: relationships test on {on_name}: ref('{m}') names no model, seed or snapshot"
                    ))
                }
            },
            Some(Some(Target::Source(s, t))) => match project.source(&s, &t) {
                Some(src) => sources.push(src.relation.clone()),
                None => {
                    error = Some(format!(
                        "{yaml}: relationships test on {on_name}: source('{s}', '{t}') is not declared"
                    ))
                }
            },
            _ => {
                error = Some(format!(
                    "{yaml}: relationships test on {on_name} needs `to: ref('model')` and `field:`"
                ))
            }
        }
    }
    Ok(Node {
        id: format!("test.{}.{unique}", project.name),
        kind: NodeKind::Test,
        name: unique,
        path: std::path::PathBuf::from(yaml),
        raw: String::new(),
        config,
        fqn: vec![on_name.to_string()],
        depends_on,
        sources,
        relation: None,
        generic: Some(GenericTest {
            test,
            on: on.to_string(),
            column,
            args,
        }),
        description: None,
        error,
    })
}

enum Target {
    Ref(String),
    Source(String, String),
}

/// `ref('m')` or `source('s', 't')` as written in a YAML argument.
fn parse_target(text: &str) -> Option<Target> {
    let re = regex::Regex::new(
        r#"^\s*(ref|source)\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?\)\s*$"#,
    )
    .expect("regex");
    let c = re.captures(text)?;
    match (&c[1], c.get(3)) {
        ("ref", None) => Some(Target::Ref(c[2].to_string())),
        ("ref", Some(m)) => Some(Target::Ref(m.as_str().to_string())),
        ("source", Some(t)) => Some(Target::Source(c[2].to_string(), t.as_str().to_string())),
        _ => None,
    }
}

fn literal(v: &Json, quoted: bool) -> String {
    match v {
        Json::String(s) if quoted => format!("'{}'", s.replace('\'', "''")),
        Json::String(s) => s.clone(),
        Json::Null => "NULL".into(),
        other if quoted => format!("'{}'", other.to_string().replace('\'', "''")),
        other => other.to_string(),
    }
}

/// The failing-rows query of a generic test.
pub fn generic_sql(project: &Project, node: &Node) -> std::result::Result<String, String> {
    let g = node.generic.as_ref().ok_or("not a generic test")?;
    let on = project
        .node(&g.on)
        .and_then(|n| n.relation.clone())
        .ok_or_else(|| format!("{} tests a node that is not built", node.name))?;
    let filter = node
        .config_str("where")
        .map(|w| format!("(SELECT * FROM {on} WHERE {w}) AS t"))
        .unwrap_or_else(|| on.sql());
    let col = g.column.as_deref().map(quote);
    Ok(match g.test.as_str() {
        "not_null" => format!(
            "SELECT * FROM {filter} WHERE {} IS NULL",
            col.ok_or("not_null needs a column")?
        ),
        "unique" => {
            let c = col.ok_or("unique needs a column")?;
            format!(
                "SELECT {c} AS unique_field, count(*) AS n_records FROM {filter} \
                 WHERE {c} IS NOT NULL GROUP BY {c} HAVING count(*) > 1"
            )
        }
        "accepted_values" => {
            let c = col.ok_or("accepted_values needs a column")?;
            let quoted = g
                .args
                .get("quote")
                .and_then(|v| v.as_bool())
                .unwrap_or(true);
            let values: Vec<String> = g
                .args
                .get("values")
                .and_then(|v| v.as_array())
                .ok_or("accepted_values needs `values:`")?
                .iter()
                .map(|v| literal(v, quoted))
                .collect();
            if values.is_empty() {
                return Err("accepted_values needs at least one value".into());
            }
            format!(
                "SELECT {c} AS value_field, count(*) AS n_records FROM {filter} \
                 WHERE {c} IS NOT NULL AND {c} NOT IN ({}) GROUP BY {c}",
                values.join(", ")
            )
        }
        "relationships" => {
            let c = col.ok_or("relationships needs a column")?;
            let field = g
                .args
                .get("field")
                .and_then(|v| v.as_str())
                .ok_or("relationships needs `field:`")?;
            let to = match g
                .args
                .get("to")
                .and_then(|v| v.as_str())
                .and_then(parse_target)
            {
                Some(Target::Ref(m)) => project
                    .by_name(&m)
                    .and_then(|n| n.relation.clone())
                    .ok_or_else(|| format!("ref('{m}') is not built"))?,
                Some(Target::Source(s, t)) => project
                    .source(&s, &t)
                    .map(|s| s.relation.clone())
                    .ok_or_else(|| format!("source('{s}', '{t}') is not declared"))?,
                None => return Err("relationships needs `to:`".into()),
            };
            let f = quote(field);
            format!(
                "SELECT child.{c} AS from_field FROM {filter} AS child \
                 LEFT JOIN {to} AS parent ON child.{c} = parent.{f} \
                 WHERE child.{c} IS NOT NULL AND parent.{f} IS NULL"
            )
        }
        other => return Err(format!("unknown generic test {other}")),
    })
}

/// The relation a test's failing rows are stored in (`store_failures`).
pub fn failures_relation(project: &Project, node: &Node) -> Relation {
    let schema = node
        .config_str("schema")
        .map(|s| format!("{}_{s}", project.schema))
        .unwrap_or_else(|| format!("{}_dbt_test__audit", project.schema));
    Relation {
        schema,
        name: node.name.chars().take(60).collect(),
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn targets_parse() {
        assert!(
            matches!(parse_target("ref('customers')"), Some(Target::Ref(m)) if m == "customers")
        );
        assert!(matches!(parse_target("ref(\"p\", \"c\")"), Some(Target::Ref(m)) if m == "c"));
        assert!(
            matches!(parse_target("source('raw', 'users')"), Some(Target::Source(s, t)) if s == "raw" && t == "users")
        );
        assert!(parse_target("customers").is_none());
    }

    #[test]
    fn literals_quote() {
        assert_eq!(literal(&Json::String("it's".into()), true), "'it''s'");
        assert_eq!(literal(&serde_json::json!(3), false), "3");
        assert_eq!(literal(&serde_json::json!(3), true), "'3'");
    }
}
