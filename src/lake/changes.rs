//! What happened to a Delta table between two versions, read from its log:
//! whether the versions in between only appended rows, and which files
//! they added. Incremental refresh reads only those files.

use deltalake::DeltaTable;

use crate::error::Result;

/// The commits after one version up to a later one.
#[derive(Debug, Clone, PartialEq)]
pub enum Changes {
    /// Only new rows: the data files that hold them (paths as the log
    /// writes them, relative to the table), all still in the newest
    /// snapshot.
    Appended(Vec<String>),
    /// Rows were changed or removed, or the schema changed: why.
    Other(String),
}

/// The changes of `table` (open at its newest version `to`) after `from`.
pub async fn since(table: &DeltaTable, from: i64, to: i64) -> Result<Changes> {
    let mut added: Vec<String> = Vec::new();
    for version in (from + 1)..=to {
        let Some(actions) = super::commit_actions(table, version as u64).await? else {
            return Ok(Changes::Other(format!(
                "the log entry of version {version} is no longer kept"
            )));
        };
        let mut operation = String::new();
        let mut removed_new_file = false;
        let mut removed_rows = false;
        let mut metadata = false;
        for action in actions {
            let data_change = |a: &serde_json::Value| {
                a.get("dataChange")
                    .and_then(|d| d.as_bool())
                    .unwrap_or(true)
            };
            if let Some(add) = action.get("add") {
                if data_change(add)
                    && let Some(p) = add.get("path").and_then(|p| p.as_str())
                {
                    added.push(p.to_string());
                }
            } else if let Some(remove) = action.get("remove") {
                let path = remove.get("path").and_then(|p| p.as_str()).unwrap_or("");
                if data_change(remove) {
                    removed_rows = true;
                } else if added.iter().any(|a| a == path) {
                    removed_new_file = true;
                }
            } else if action.get("metaData").is_some() {
                metadata = true;
            } else if let Some(info) = action.get("commitInfo") {
                operation = info
                    .get("operation")
                    .and_then(|o| o.as_str())
                    .unwrap_or("")
                    .to_string();
            }
        }
        let named = |what: &str| {
            if operation.is_empty() {
                format!("version {version} {what}")
            } else {
                format!("version {version} ({operation}) {what}")
            }
        };
        if removed_rows {
            return Ok(Changes::Other(named("changed or removed rows")));
        }
        if metadata {
            return Ok(Changes::Other(named("changed the table's metadata")));
        }
        if removed_new_file {
            return Ok(Changes::Other(named(
                "rewrote files added since the last refresh",
            )));
        }
    }
    Ok(Changes::Appended(added))
}
