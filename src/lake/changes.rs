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
    /// Rows were also changed or removed, and every commit that did so
    /// wrote its change data (`cdc` files): the table's change data feed
    /// has the rows before and after each change.
    Feed,
    /// Rows were changed or removed without change data, or the schema
    /// changed: why.
    Other(String),
}

/// The changes of `table` (open at its newest version `to`) after `from`.
pub async fn since(table: &DeltaTable, from: i64, to: i64) -> Result<Changes> {
    let mut added: Vec<String> = Vec::new();
    let mut feed = false;
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
        let mut change_data = false;
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
            } else if action.get("cdc").is_some() {
                change_data = true;
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
        if removed_rows && change_data {
            feed = true;
        } else if removed_rows {
            return Ok(Changes::Other(named(
                "changed or removed rows without change data",
            )));
        }
        // Turning the change data feed on changes only properties.
        if metadata && operation != "SET TBLPROPERTIES" {
            return Ok(Changes::Other(named("changed the table's metadata")));
        }
        // A compaction: the feed does not list it; the files read by an
        // append refresh must still be there.
        if removed_new_file && !feed {
            return Ok(Changes::Other(named(
                "rewrote files added since the last refresh",
            )));
        }
    }
    Ok(if feed {
        Changes::Feed
    } else {
        Changes::Appended(added)
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use deltalake::DeltaTable;

    use super::{Changes, since};

    fn batch(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
    }

    async fn append(table: DeltaTable, values: &[i64]) -> DeltaTable {
        table.write(vec![batch(values)]).await.unwrap()
    }

    #[tokio::test]
    async fn appends_name_their_files_and_a_delete_ends_them() {
        let dir = tempfile::tempdir().unwrap();
        let url = url::Url::from_directory_path(dir.path()).unwrap();
        let table = deltalake::DeltaTableBuilder::from_url(url)
            .unwrap()
            .build()
            .unwrap();
        let table = append(table, &[1, 2]).await; // version 0
        let table = append(table, &[3]).await; // version 1
        let table = append(table, &[4]).await; // version 2
        let Changes::Appended(files) = since(&table, 0, 2).await.unwrap() else {
            panic!("appends only")
        };
        assert_eq!(files.len(), 2);
        assert!(files.iter().all(|f| f.ends_with(".parquet")), "{files:?}");
        assert_eq!(
            since(&table, 2, 2).await.unwrap(),
            Changes::Appended(vec![])
        );

        let (table, _) = table.delete().with_predicate("a = 3").await.unwrap(); // version 3
        let table = append(table, &[5]).await; // version 4
        let Changes::Other(why) = since(&table, 1, 4).await.unwrap() else {
            panic!("a delete is not an append")
        };
        assert!(why.contains("version 3") && why.contains("DELETE"), "{why}");
        // After the delete, appends again.
        assert!(matches!(
            since(&table, 3, 4).await.unwrap(),
            Changes::Appended(f) if f.len() == 1
        ));
    }
}
