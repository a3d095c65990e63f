//! Configs from the project file's trees (`models: project: folder:
//! +materialized: table`): each level on the node's path applies, deeper
//! levels win.

use std::collections::BTreeMap;

use serde_json::Value as Json;

/// Config names that may be written without `+` at any level.
const KNOWN: &[&str] = &[
    "materialized",
    "schema",
    "alias",
    "tags",
    "enabled",
    "unique_key",
    "incremental_strategy",
    "on_schema_change",
    "full_refresh",
    "column_types",
    "severity",
    "store_failures",
    "target_schema",
    "strategy",
    "updated_at",
    "check_cols",
    "quote_columns",
    "persist_docs",
    "docs",
    "meta",
    "warn_if",
    "error_if",
    "where",
    "limit",
    "delimiter",
    "partition_by",
    "schedule",
    "retries",
];

/// Merge into `out` the configs of `tree` along `fqn` (project name first).
pub fn from_tree(tree: &Json, fqn: &[String], out: &mut BTreeMap<String, Json>) {
    let mut level = tree;
    let mut depth = 0;
    loop {
        let Json::Object(map) = level else {
            return;
        };
        for (k, v) in map {
            if let Some(name) = k.strip_prefix('+') {
                out.insert(name.to_string(), v.clone());
            } else if KNOWN.contains(&k.as_str())
                && !(v.is_object() && fqn.get(depth).is_some_and(|f| f == k))
            {
                out.insert(k.clone(), v.clone());
            }
        }
        let Some(step) = fqn.get(depth) else {
            return;
        };
        match map.get(step) {
            Some(next) if next.is_object() => {
                level = next;
                depth += 1;
            }
            _ => return,
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn deeper_levels_win_and_plus_is_optional() {
        let tree: Json = serde_json::json!({
            "demo": {
                "+materialized": "view",
                "tags": ["all"],
                "raw": {"+materialized": "table", "+schema": "raw"},
                "clean": {"materialized": "incremental"}
            }
        });
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut out = BTreeMap::new();
        from_tree(&tree, &path(&["demo", "raw", "users"]), &mut out);
        assert_eq!(out["materialized"], "table");
        assert_eq!(out["schema"], "raw");
        assert_eq!(out["tags"], serde_json::json!(["all"]));
        let mut out = BTreeMap::new();
        from_tree(&tree, &path(&["demo", "clean", "x"]), &mut out);
        assert_eq!(out["materialized"], "incremental");
        let mut out = BTreeMap::new();
        from_tree(&tree, &path(&["other", "x"]), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_seed_named_like_a_config_is_a_path() {
        // seeds: project: orders: +column_types: {...}
        let tree: Json = serde_json::json!({
            "p": {"orders": {"+column_types": {"amount": "numeric(12,2)"}}}
        });
        let mut out = BTreeMap::new();
        let fqn = vec!["p".to_string(), "orders".to_string()];
        from_tree(&tree, &fqn, &mut out);
        assert_eq!(out["column_types"]["amount"], "numeric(12,2)");
    }
}
