//! Node selection, as dbt spells it: `m`, `+m`, `m+`, `2+m`, `m+1`, `@m`,
//! `path:models/marts`, `tag:daily`, `config.materialized:table`,
//! `resource_type:seed`, `source:raw`; terms separated by spaces are a
//! union, joined by commas an intersection. Tests follow the nodes they test
//! (a test is selected when any node it tests is).

use std::collections::{BTreeSet, HashMap};

use super::{NodeKind, Project, project_error};
use crate::error::Result;

struct Graph<'a> {
    parents: HashMap<&'a str, Vec<&'a str>>,
    children: HashMap<&'a str, Vec<&'a str>>,
}

impl<'a> Graph<'a> {
    fn of(project: &'a Project) -> Graph<'a> {
        let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        for n in &project.nodes {
            for d in &n.depends_on {
                parents.entry(n.id.as_str()).or_default().push(d.as_str());
                children.entry(d.as_str()).or_default().push(n.id.as_str());
            }
        }
        Graph { parents, children }
    }

    fn walk(
        edges: &HashMap<&'a str, Vec<&'a str>>,
        from: &str,
        depth: Option<usize>,
        out: &mut BTreeSet<String>,
    ) {
        let mut frontier = vec![from.to_string()];
        let mut level = 0;
        while !frontier.is_empty() && depth.is_none_or(|d| level < d) {
            let mut next = Vec::new();
            for x in &frontier {
                for y in edges.get(x.as_str()).into_iter().flatten() {
                    if out.insert(y.to_string()) {
                        next.push(y.to_string());
                    }
                }
            }
            frontier = next;
            level += 1;
        }
    }
}

fn matches(
    project: &Project,
    node: &super::Node,
    method: Option<&str>,
    value: &str,
) -> Result<bool> {
    let glob = |pattern: &str, s: &str| -> bool {
        glob::Pattern::new(pattern)
            .map(|p| p.matches(s))
            .unwrap_or(false)
    };
    Ok(match method {
        None | Some("fqn") => {
            glob(value, &node.name) || glob(value, &node.fqn.join(".")) || {
                let mut full = vec![project.name.clone()];
                full.extend(node.fqn.iter().cloned());
                glob(value, &full.join("."))
            }
        }
        Some("path") => {
            let p = node.path.to_string_lossy();
            let v = value.trim_end_matches('/');
            p == v || p.starts_with(&format!("{v}/")) || glob(v, &p)
        }
        Some("tag") => node.tags().iter().any(|t| glob(value, t)),
        Some("resource_type") => node.kind.label() == value,
        Some("source") => {
            let (s, t) = value.split_once('.').unwrap_or((value, "*"));
            node.sources.iter().any(|r| {
                project
                    .sources
                    .iter()
                    .any(|src| src.relation == *r && glob(s, &src.source) && glob(t, &src.table))
            })
        }
        Some(m) if m.starts_with("config.") => {
            let key = &m["config.".len()..];
            match node.config.get(key) {
                Some(serde_json::Value::String(s)) => glob(value, s),
                Some(serde_json::Value::Array(a)) => {
                    a.iter().any(|v| v.as_str().is_some_and(|s| glob(value, s)))
                }
                Some(other) => format!("{other}") == value,
                None => false,
            }
        }
        Some(other) => {
            return Err(project_error(format!(
                "selector method `{other}:` is not supported (use a name, path:, tag:, \
                 config.<key>:, resource_type: or source:)"
            )));
        }
    })
}

/// A graph operator of a selector: none (`part` empty), all levels
/// (`+`), or `n` levels (`n+` / `+n`); `digits` is `part` without its `+`.
#[allow(clippy::option_option)]
fn depth(part: &str, digits: Option<&str>, text: &str) -> Result<Option<Option<usize>>> {
    if part.is_empty() {
        return Ok(None);
    }
    match digits {
        Some("") => Ok(Some(None)),
        Some(n) => n
            .parse::<usize>()
            .map(|n| Some(Some(n)))
            .map_err(|_| project_error(format!("invalid selector `{text}`"))),
        None => Err(project_error(format!("invalid selector `{text}`"))),
    }
}

/// The nodes one term (no spaces, no commas) selects.
fn term(project: &Project, graph: &Graph, text: &str) -> Result<BTreeSet<String>> {
    let mut t = text;
    let at = t.starts_with('@');
    if at {
        t = &t[1..];
    }
    let lead = t
        .find(|c: char| !c.is_ascii_digit() && c != '+')
        .unwrap_or(t.len());
    let (up, rest) = t.split_at(lead);
    let up = depth(up, up.strip_suffix('+'), text)?;
    let trail = rest
        .rfind(|c: char| !c.is_ascii_digit() && c != '+')
        .map(|i| i + 1)
        .unwrap_or(0);
    let (core, down) = rest.split_at(trail);
    let down = depth(down, down.strip_prefix('+'), text)?;
    let (method, value) = match core.split_once(':') {
        Some((m, v)) => (Some(m), v),
        None => (None, core),
    };
    let mut base = BTreeSet::new();
    for n in &project.nodes {
        if matches(project, n, method, value)? {
            base.insert(n.id.clone());
        }
    }
    let mut out = base.clone();
    for id in &base {
        if let Some(depth) = up {
            Graph::walk(&graph.parents, id, depth, &mut out);
        }
        if let Some(depth) = down {
            Graph::walk(&graph.children, id, depth, &mut out);
        }
        if at {
            let mut below = BTreeSet::new();
            Graph::walk(&graph.children, id, None, &mut below);
            out.extend(below.iter().cloned());
            for b in below.iter().chain(std::iter::once(id)) {
                Graph::walk(&graph.parents, b, None, &mut out);
            }
        }
    }
    Ok(out)
}

fn expression(project: &Project, graph: &Graph, terms: &[String]) -> Result<BTreeSet<String>> {
    let mut union = BTreeSet::new();
    for t in terms.iter().flat_map(|t| t.split_whitespace()) {
        let mut inter: Option<BTreeSet<String>> = None;
        for part in t.split(',').filter(|p| !p.is_empty()) {
            let s = term(project, graph, part)?;
            inter = Some(match inter {
                None => s,
                Some(i) => i.intersection(&s).cloned().collect(),
            });
        }
        union.extend(inter.unwrap_or_default());
    }
    Ok(union)
}

/// Ids of the nodes of `kinds` that `select` (everything when empty) picks
/// and `exclude` does not.
pub fn select(
    project: &Project,
    select: &[String],
    exclude: &[String],
    kinds: &[NodeKind],
) -> Result<BTreeSet<String>> {
    let graph = Graph::of(project);
    let mut chosen: BTreeSet<String> = if select.iter().all(|s| s.trim().is_empty()) {
        project.nodes.iter().map(|n| n.id.clone()).collect()
    } else {
        let mut s = expression(project, &graph, select)?;
        // A test goes with the nodes it tests.
        for n in &project.nodes {
            if n.kind == NodeKind::Test && n.depends_on.iter().any(|d| s.contains(d)) {
                s.insert(n.id.clone());
            }
        }
        s
    };
    if !exclude.is_empty() {
        let mut out = expression(project, &graph, exclude)?;
        for n in &project.nodes {
            if n.kind == NodeKind::Test && n.depends_on.iter().any(|d| out.contains(d)) {
                out.insert(n.id.clone());
            }
        }
        chosen.retain(|id| !out.contains(id));
    }
    chosen.retain(|id| project.node(id).is_some_and(|n| kinds.contains(&n.kind)));
    Ok(chosen)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn graph_operators_parse() {
        assert_eq!(depth("", None, "m").unwrap(), None);
        assert_eq!(depth("+", Some(""), "+m").unwrap(), Some(None));
        assert_eq!(depth("2+", Some("2"), "2+m").unwrap(), Some(Some(2)));
        assert!(depth("x", None, "xm").is_err());
        assert!(
            depth(
                "9999999999999999999999+",
                Some("9999999999999999999999"),
                "t"
            )
            .is_err()
        );
    }
}
