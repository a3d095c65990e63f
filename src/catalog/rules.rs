//! The rules a table declares, as the catalog records them: CHECK
//! constraints, PRIMARY KEY / UNIQUE keys, FOREIGN KEYs and expectations.
//! Only their definitions live here; `quality` enforces them.

use serde::{Deserialize, Serialize};

/// A CHECK constraint as declared: its name and condition (SQL text over
/// the table's columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckDef {
    pub name: String,
    pub expr: String,
}

/// An index declared with `CREATE [UNIQUE] INDEX`. Delta tables have no
/// index structures: files are skipped by their column statistics. A
/// plain index is recorded for the clients and tools that list and drop
/// indexes; a unique one is enforced as a key of the same name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexDef {
    pub name: String,
    pub columns: Vec<String>,
    #[serde(default)]
    pub unique: bool,
    /// The condition of a partial index (`WHERE ...`), as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<String>,
    /// The index's elements as written, when one is an expression
    /// (`lower(email)`): `columns` are then the columns they read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expressions: Vec<String>,
}

/// A PRIMARY KEY or UNIQUE constraint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyDef {
    pub name: String,
    pub columns: Vec<String>,
    #[serde(default)]
    pub primary: bool,
}

impl KeyDef {
    /// Whether the key is on exactly `columns`, in any order (what a
    /// foreign key's referenced columns must match).
    pub fn is_on(&self, columns: &[String]) -> bool {
        let (mut mine, mut theirs) = (self.columns.clone(), columns.to_vec());
        mine.sort();
        theirs.sort();
        mine == theirs
    }
}

/// A FOREIGN KEY: `columns` of this table name a row of the parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForeignKeyDef {
    pub name: String,
    pub columns: Vec<String>,
    pub parent_schema: String,
    pub parent_table: String,
    pub parent_columns: Vec<String>,
    /// ON DELETE CASCADE; otherwise deleting a referenced row fails,
    /// unless `on_delete_set` says what the referencing columns become.
    #[serde(default)]
    pub cascade: bool,
    /// ON DELETE SET NULL / SET DEFAULT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_delete_set: Option<SetOnDelete>,
}

/// What ON DELETE SET ... puts in the referencing columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetOnDelete {
    Null,
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Keep the row; count it.
    Record,
    Fail,
    Drop,
    Quarantine,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "record" => Action::Record,
            "fail" => Action::Fail,
            "drop" => Action::Drop,
            "quarantine" => Action::Quarantine,
            _ => return None,
        })
    }

    /// As `sluice.expectation_results` and the docs spell it.
    pub fn label(self) -> &'static str {
        match self {
            Action::Record => "record",
            Action::Fail => "fail",
            Action::Drop => "drop row",
            Action::Quarantine => "quarantine",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectDef {
    pub name: String,
    pub expr: String,
    pub action: Action,
}
