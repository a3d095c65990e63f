//! Model projects: a folder of dbt-style `.sql` models, seeds, snapshots and
//! tests, built into the lake in dependency order.
//!
//! ```text
//!   load (files, YAML) ──▶ parse (render each node once: refs, config())
//!        ──▶ DAG + selection ──▶ run (workers, one Session each; every
//!        node one atomic statement) ──▶ sluice.runs / sluice.models
//! ```
//!
//! A project is `sluice_project.yml` or `dbt_project.yml`, `models/**/*.sql`
//! with `*.yml` beside them (tests, sources, configs), `seeds/*.csv`,
//! `snapshots/*.sql`, `tests/*.sql` and `macros/*.sql`.

mod config;
mod render;
mod run;
mod select;
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

pub use run::{Command, NodeResult, Options, Status, Summary, run};

use crate::error::{Error, ErrorKind, Result};

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    Seed,
    Model,
    Snapshot,
    Test,
}

impl NodeKind {
    pub fn label(self) -> &'static str {
        match self {
            NodeKind::Seed => "seed",
            NodeKind::Model => "model",
            NodeKind::Snapshot => "snapshot",
            NodeKind::Test => "test",
        }
    }
}

/// A relation a node builds or reads: `schema.name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Relation {
    pub schema: String,
    pub name: String,
}

impl Relation {
    /// The SQL spelling, quoting only names that need it.
    pub fn sql(&self) -> String {
        format!("{}.{}", quote(&self.schema), quote(&self.name))
    }
}

impl std::fmt::Display for Relation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.sql())
    }
}

/// An identifier as SQL: bare when it is lower case, quoted otherwise.
pub fn quote(ident: &str) -> String {
    let plain = !ident.is_empty()
        && ident
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && ident
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let keyword = datafusion::sql::sqlparser::keywords::ALL_KEYWORDS
        .binary_search(&ident.to_ascii_uppercase().as_str())
        .is_ok();
    if plain && !keyword {
        ident.to_string()
    } else {
        crate::frontend::names::quote_ident(ident)
    }
}

/// A generic test declared in YAML.
#[derive(Debug, Clone)]
pub struct GenericTest {
    /// `unique`, `not_null`, `accepted_values` or `relationships`.
    pub test: String,
    /// The node it is declared on, and the column (if any).
    pub on: String,
    pub column: Option<String>,
    pub args: BTreeMap<String, Json>,
}

/// One seed, model, snapshot or test.
#[derive(Debug, Clone)]
pub struct Node {
    /// `model.<project>.<name>`, `seed.…`, `snapshot.…`, `test.…`.
    pub id: String,
    pub kind: NodeKind,
    pub name: String,
    /// Path relative to the project folder.
    pub path: PathBuf,
    /// The file's text (for a snapshot: the inside of its block).
    pub raw: String,
    /// Config from the project file, YAML and `config()`, in that order.
    pub config: BTreeMap<String, Json>,
    /// Folder path inside the resource path (for config and `path:`).
    pub fqn: Vec<String>,
    /// Ids of the nodes it reads, and the sources (`schema.name`).
    pub depends_on: Vec<String>,
    pub sources: Vec<Relation>,
    /// What it builds (tests: none).
    pub relation: Option<Relation>,
    pub generic: Option<GenericTest>,
    pub description: Option<String>,
    /// A problem found while parsing: the node fails with it when run.
    pub error: Option<String>,
}

impl Node {
    pub fn materialized(&self) -> &str {
        match self.kind {
            NodeKind::Seed => "seed",
            NodeKind::Snapshot => "snapshot",
            NodeKind::Test => "test",
            NodeKind::Model => self
                .config
                .get("materialized")
                .and_then(|v| v.as_str())
                .unwrap_or("view"),
        }
    }

    pub fn tags(&self) -> Vec<String> {
        match self.config.get("tags") {
            Some(Json::String(s)) => vec![s.clone()],
            Some(Json::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        }
    }

    pub fn config_str(&self, key: &str) -> Option<String> {
        match self.config.get(key)? {
            Json::String(s) => Some(s.clone()),
            Json::Null => None,
            other => Some(other.to_string()),
        }
    }

    pub fn config_bool(&self, key: &str) -> Option<bool> {
        match self.config.get(key)? {
            Json::Bool(b) => Some(*b),
            Json::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// A config that is a column or a list of columns (`unique_key`).
    pub fn config_list(&self, key: &str) -> Vec<String> {
        match self.config.get(key) {
            Some(Json::String(s)) => s
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
            Some(Json::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        }
    }

    pub fn enabled(&self) -> bool {
        self.config_bool("enabled").unwrap_or(true)
    }
}

/// A source table declared in YAML.
#[derive(Debug, Clone)]
pub struct Source {
    pub source: String,
    pub table: String,
    pub relation: Relation,
}

/// A loaded and parsed project.
#[derive(Debug)]
pub struct Project {
    pub root: PathBuf,
    pub name: String,
    /// Where models go unless configured otherwise.
    pub schema: String,
    pub vars: BTreeMap<String, Json>,
    pub nodes: Vec<Node>,
    pub sources: Vec<Source>,
    /// Macro files: (path relative to the root, text).
    pub macros: Vec<(String, String)>,
    /// The config trees of the project file, by resource kind.
    trees: HashMap<&'static str, Json>,
}

/// How a project is read.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Overrides the project's default schema.
    pub schema: Option<String>,
    /// `--vars`: merged over the project file's vars.
    pub vars: BTreeMap<String, Json>,
}

fn project_error(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidParameter, msg)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("could not read file \"{}\": {e}", path.display()),
        )
    })
}

/// YAML text as JSON values (the one value type configs use).
pub fn parse_yaml(text: &str, path: &Path) -> Result<Json> {
    let y: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" line {}", l.line()))
            .unwrap_or_default();
        project_error(format!("{}{at}: invalid YAML: {e}", path.display()))
    })?;
    serde_json::to_value(y)
        .map_err(|e| project_error(format!("{}: invalid YAML: {e}", path.display())))
}

fn paths_of(file: &Json, key: &str, default: &str) -> Vec<String> {
    match file.get(key) {
        Some(Json::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Json::String(s)) => vec![s.clone()],
        _ => vec![default.to_string()],
    }
}

/// Files under `dir` (recursively) ending in one of `exts`, sorted.
fn files_under(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| exts.contains(&x))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

impl Project {
    /// Read the project in `root`: its project file and every file it names.
    pub fn load(root: &Path, options: &LoadOptions) -> Result<Project> {
        let file = ["sluice_project.yml", "dbt_project.yml"]
            .iter()
            .map(|f| root.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                project_error(format!(
                    "no sluice_project.yml or dbt_project.yml in \"{}\"",
                    root.display()
                ))
            })?;
        let spec = parse_yaml(&read(&file)?, &file)?;
        let name = spec
            .get("name")
            .and_then(|v| v.as_str())
            .ok_or_else(|| project_error(format!("{}: `name` is missing", file.display())))?
            .to_string();
        let schema = options
            .schema
            .clone()
            .or_else(|| {
                spec.get("schema")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "public".to_string());
        let mut vars: BTreeMap<String, Json> = match spec.get("vars") {
            Some(Json::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => BTreeMap::new(),
        };
        vars.extend(options.vars.clone());
        let mut trees = HashMap::new();
        for kind in ["models", "seeds", "snapshots", "data_tests", "tests"] {
            if let Some(t) = spec.get(kind) {
                trees.insert(kind, t.clone());
            }
        }
        let mut project = Project {
            root: root.to_path_buf(),
            name,
            schema,
            vars,
            nodes: Vec::new(),
            sources: Vec::new(),
            macros: Vec::new(),
            trees,
        };
        let model_paths = paths_of(&spec, "model-paths", "models");
        let seed_paths = paths_of(&spec, "seed-paths", "seeds");
        let snapshot_paths = paths_of(&spec, "snapshot-paths", "snapshots");
        let test_paths = paths_of(&spec, "test-paths", "tests");
        let macro_paths = paths_of(&spec, "macro-paths", "macros");

        for dir in &macro_paths {
            for p in files_under(&root.join(dir), &["sql"]) {
                let rel = project.relative(&p);
                project.macros.push((rel, read(&p)?));
            }
        }
        for dir in &seed_paths {
            for p in files_under(&root.join(dir), &["csv"]) {
                project.add_file_node(NodeKind::Seed, &p, dir, String::new());
            }
        }
        for dir in &model_paths {
            for p in files_under(&root.join(dir), &["sql"]) {
                let text = read(&p)?;
                project.add_file_node(NodeKind::Model, &p, dir, text);
            }
        }
        for dir in &snapshot_paths {
            for p in files_under(&root.join(dir), &["sql"]) {
                let text = read(&p)?;
                project.add_snapshots(&p, dir, &text);
            }
        }
        for dir in &test_paths {
            for p in files_under(&root.join(dir), &["sql"]) {
                let text = read(&p)?;
                project.add_file_node(NodeKind::Test, &p, dir, text);
            }
        }
        let mut yamls = Vec::new();
        for dir in model_paths
            .iter()
            .chain(&seed_paths)
            .chain(&snapshot_paths)
            .chain(&test_paths)
        {
            yamls.extend(files_under(&root.join(dir), &["yml", "yaml"]));
        }
        let root_sources = root.join("sources.yml");
        if root_sources.is_file() {
            yamls.push(root_sources);
        }
        yamls.sort();
        yamls.dedup();
        for p in yamls {
            let doc = parse_yaml(&read(&p)?, &p)?;
            project.add_yaml(&p, &doc)?;
        }
        for node in &mut project.nodes {
            let tree_kind = match node.kind {
                NodeKind::Model => "models",
                NodeKind::Seed => "seeds",
                NodeKind::Snapshot => "snapshots",
                NodeKind::Test => "data_tests",
            };
            let mut merged = BTreeMap::new();
            let mut fqn = vec![project.name.clone()];
            fqn.extend(node.fqn.iter().cloned());
            for t in [
                tree_kind,
                if node.kind == NodeKind::Test {
                    "tests"
                } else {
                    ""
                },
            ] {
                if let Some(tree) = project.trees.get(t) {
                    config::from_tree(tree, &fqn, &mut merged);
                }
            }
            // YAML configs were put in `config` already: they win.
            merged.extend(std::mem::take(&mut node.config));
            node.config = merged;
        }
        render::parse(&mut project);
        project.nodes.retain(|n| n.enabled());
        Ok(project)
    }

    fn relative(&self, p: &Path) -> String {
        p.strip_prefix(&self.root)
            .unwrap_or(p)
            .to_string_lossy()
            .replace('\\', "/")
    }

    fn add_file_node(&mut self, kind: NodeKind, p: &Path, dir: &str, raw: String) {
        let name = p
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let under = self.root.join(dir);
        let mut fqn: Vec<String> = p
            .parent()
            .and_then(|d| d.strip_prefix(&under).ok())
            .map(|d| {
                d.components()
                    .map(|c| c.as_os_str().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        fqn.push(name.clone());
        let path = PathBuf::from(self.relative(p));
        self.nodes.push(Node {
            id: format!("{}.{}.{}", kind.label(), self.name, name),
            kind,
            name,
            path,
            raw,
            config: BTreeMap::new(),
            fqn,
            depends_on: vec![],
            sources: vec![],
            relation: None,
            generic: None,
            description: None,
            error: None,
        });
    }

    /// `{% snapshot name %} … {% endsnapshot %}` blocks of one file.
    fn add_snapshots(&mut self, p: &Path, dir: &str, text: &str) {
        static OPEN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
            regex::Regex::new(r"\{%-?\s*snapshot\s+(\w+)\s*-?%\}").expect("regex")
        });
        static CLOSE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
            regex::Regex::new(r"\{%-?\s*endsnapshot\s*-?%\}").expect("regex")
        });
        let (open, close) = (&*OPEN, &*CLOSE);
        for m in open.captures_iter(text) {
            let whole = m.get(0).expect("match");
            let name = m[1].to_string();
            let rest = &text[whole.end()..];
            let (body, error) = match close.find(rest) {
                // Lines before the block stay, so errors keep their line.
                Some(c) => (
                    format!(
                        "{}{}",
                        "\n".repeat(text[..whole.end()].lines().count() - 1),
                        &rest[..c.start()]
                    ),
                    None,
                ),
                None => (
                    String::new(),
                    Some(format!(
                        "{}: snapshot {name} has no {{% endsnapshot %}}",
                        self.relative(p)
                    )),
                ),
            };
            self.add_file_node(NodeKind::Snapshot, p, dir, body);
            let node = self.nodes.last_mut().expect("just added");
            node.name = name.clone();
            node.id = format!("snapshot.{}.{name}", self.name);
            if let Some(last) = node.fqn.last_mut() {
                *last = name;
            }
            node.error = error;
        }
    }

    fn node_mut(&mut self, kinds: &[NodeKind], name: &str) -> Option<&mut Node> {
        self.nodes
            .iter_mut()
            .find(|n| kinds.contains(&n.kind) && n.name == name)
    }

    /// One YAML file: sources, and configs, descriptions and tests of
    /// models, seeds and snapshots.
    fn add_yaml(&mut self, p: &Path, doc: &Json) -> Result<()> {
        let rel = self.relative(p);
        if let Some(Json::Array(sources)) = doc.get("sources") {
            for s in sources {
                let Some(sname) = s.get("name").and_then(|v| v.as_str()) else {
                    return Err(project_error(format!("{rel}: a source has no name")));
                };
                let schema = s
                    .get("schema")
                    .and_then(|v| v.as_str())
                    .unwrap_or(sname)
                    .to_string();
                for t in s
                    .get("tables")
                    .and_then(|v| v.as_array())
                    .into_iter()
                    .flatten()
                {
                    let Some(tname) = t.get("name").and_then(|v| v.as_str()) else {
                        return Err(project_error(format!(
                            "{rel}: a table of source {sname} has no name"
                        )));
                    };
                    let ident = t
                        .get("identifier")
                        .and_then(|v| v.as_str())
                        .unwrap_or(tname);
                    self.sources.push(Source {
                        source: sname.to_string(),
                        table: tname.to_string(),
                        relation: Relation {
                            schema: schema.clone(),
                            name: ident.to_string(),
                        },
                    });
                }
            }
        }
        for (key, kinds) in [
            ("models", &[NodeKind::Model][..]),
            ("seeds", &[NodeKind::Seed][..]),
            ("snapshots", &[NodeKind::Snapshot][..]),
        ] {
            let Some(Json::Array(entries)) = doc.get(key) else {
                continue;
            };
            for entry in entries {
                let Some(name) = entry.get("name").and_then(|v| v.as_str()) else {
                    return Err(project_error(format!(
                        "{rel}: an entry of `{key}` has no name"
                    )));
                };
                let Some(node) = self.node_mut(kinds, name) else {
                    tracing::warn!("{rel}: `{key}` names {name}, which has no file");
                    continue;
                };
                if let Some(Json::Object(c)) = entry.get("config") {
                    for (k, v) in c {
                        node.config
                            .insert(k.trim_start_matches('+').to_string(), v.clone());
                    }
                }
                if let Some(d) = entry.get("description").and_then(|v| v.as_str()) {
                    node.description = Some(d.to_string());
                }
                let on = node.id.clone();
                let mut found = Vec::new();
                for tkey in ["data_tests", "tests"] {
                    for t in entry
                        .get(tkey)
                        .and_then(|v| v.as_array())
                        .into_iter()
                        .flatten()
                    {
                        found.push((None, t.clone()));
                    }
                }
                for c in entry
                    .get("columns")
                    .and_then(|v| v.as_array())
                    .into_iter()
                    .flatten()
                {
                    let Some(col) = c.get("name").and_then(|v| v.as_str()) else {
                        continue;
                    };
                    for tkey in ["data_tests", "tests"] {
                        for t in c.get(tkey).and_then(|v| v.as_array()).into_iter().flatten() {
                            found.push((Some(col.to_string()), t.clone()));
                        }
                    }
                }
                for (column, t) in found {
                    let node = tests::generic_node(self, &rel, &on, name, column, &t)?;
                    self.nodes.push(node);
                }
            }
        }
        Ok(())
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The model, seed or snapshot called `name`.
    pub fn by_name(&self, name: &str) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|n| n.kind != NodeKind::Test && n.name == name)
    }

    pub fn source(&self, source: &str, table: &str) -> Option<&Source> {
        self.sources
            .iter()
            .find(|s| s.source == source && s.table == table)
    }

    /// The schema a node's config puts it in: dbt's default naming,
    /// `<default>_<custom>` for a custom `schema`.
    fn schema_for(&self, node: &Node) -> String {
        if node.kind == NodeKind::Snapshot
            && let Some(s) = node.config_str("target_schema")
        {
            return s;
        }
        match node.config_str("schema") {
            Some(custom) => format!("{}_{}", self.schema, custom.trim()),
            None => self.schema.clone(),
        }
    }

    /// Ids of every node reachable downstream of `id`.
    pub fn descendants(&self, id: &str) -> std::collections::BTreeSet<String> {
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        for n in &self.nodes {
            for d in &n.depends_on {
                children.entry(d.as_str()).or_default().push(n.id.as_str());
            }
        }
        let mut out = std::collections::BTreeSet::new();
        let mut stack = vec![id];
        while let Some(x) = stack.pop() {
            for c in children.get(x).into_iter().flatten() {
                if out.insert(c.to_string()) {
                    stack.push(c);
                }
            }
        }
        out
    }
}
