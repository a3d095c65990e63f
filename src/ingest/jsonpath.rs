//! The small JSONPath subset that finds records and cursors in API
//! responses: `$`, `.name`, `['name']`, `[0]`, `[*]` (and `.*`).
//!
//! ```text
//!  $.data            {"data": [r1, r2]}             → the array at data
//!  $.result.items    nested objects
//!  $.pages[0].rows   an element of an array, then a member
//!  $[*]              every element of a top-level array
//!  $.meta.next       a cursor or next-page URL
//! ```

use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Member(String),
    Index(usize),
    All,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    text: String,
    steps: Vec<Step>,
}

fn bad(path: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidParameter,
        format!("bad JSON path \"{path}\": {why} (supported: $, .name, ['name'], [0], [*])"),
    )
}

impl JsonPath {
    pub fn parse(path: &str) -> Result<JsonPath> {
        let text = path.trim();
        let mut rest = text
            .strip_prefix('$')
            .ok_or_else(|| bad(path, "it must start with $"))?;
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix(".*") {
                steps.push(Step::All);
                rest = r;
            } else if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let name = &r[..end];
                if name.is_empty() {
                    return Err(bad(path, "a member name is missing after ."));
                }
                steps.push(Step::Member(name.to_string()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let r = r.trim_start();
                if let Some(q) = r.chars().next().filter(|c| *c == '\'' || *c == '"') {
                    let body = &r[1..];
                    let close = body
                        .find(q)
                        .ok_or_else(|| bad(path, "an unterminated quoted name"))?;
                    steps.push(Step::Member(body[..close].to_string()));
                    rest = body[close + 1..]
                        .trim_start()
                        .strip_prefix(']')
                        .ok_or_else(|| bad(path, "] expected after a quoted name"))?;
                } else {
                    let close = r.find(']').ok_or_else(|| bad(path, "] is missing"))?;
                    let inner = r[..close].trim();
                    if inner == "*" {
                        steps.push(Step::All);
                    } else {
                        let i = inner
                            .parse::<usize>()
                            .map_err(|_| bad(path, "an index must be a number or *"))?;
                        steps.push(Step::Index(i));
                    }
                    rest = &r[close + 1..];
                }
            } else {
                return Err(bad(path, "expected . or ["));
            }
        }
        Ok(JsonPath {
            text: text.to_string(),
            steps,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// `$` or `$[*]`: the records are the document's own elements, so the
    /// body can be read as a stream.
    pub fn is_whole_document(&self) -> bool {
        matches!(self.steps.as_slice(), [] | [Step::All])
    }

    /// Every value the path selects in `doc`.
    pub fn select<'a>(&self, doc: &'a Value) -> Vec<&'a Value> {
        let mut cur = vec![doc];
        for step in &self.steps {
            let mut next = Vec::new();
            for v in cur {
                match (step, v) {
                    (Step::Member(m), Value::Object(o)) => next.extend(o.get(m)),
                    (Step::Index(i), Value::Array(a)) => next.extend(a.get(*i)),
                    (Step::All, Value::Array(a)) => next.extend(a.iter()),
                    (Step::All, Value::Object(o)) => next.extend(o.values()),
                    _ => {}
                }
            }
            cur = next;
        }
        cur
    }

    /// The one value the path selects (a cursor), if any and not null.
    pub fn select_one<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        self.select(doc).into_iter().find(|v| !v.is_null())
    }

    /// The records the path selects: the elements when it selects one
    /// array, else the values selected; `null` and nothing are none.
    pub fn records(&self, doc: Value) -> Vec<Value> {
        // Take the values out rather than clone them: pages can be large.
        let mut doc = doc;
        let mut selected = self.select_owned(&mut doc);
        if selected.len() == 1 && selected[0].is_array() {
            return match selected.pop() {
                Some(Value::Array(a)) => a,
                _ => unreachable!(),
            };
        }
        selected.retain(|v| !v.is_null());
        selected
    }

    fn select_owned(&self, doc: &mut Value) -> Vec<Value> {
        let mut cur: Vec<&mut Value> = vec![doc];
        for step in &self.steps {
            let mut next = Vec::new();
            for v in cur {
                match (step, v) {
                    (Step::Member(m), Value::Object(o)) => next.extend(o.get_mut(m)),
                    (Step::Index(i), Value::Array(a)) => next.extend(a.get_mut(*i)),
                    (Step::All, Value::Array(a)) => next.extend(a.iter_mut()),
                    (Step::All, Value::Object(o)) => next.extend(o.values_mut()),
                    _ => {}
                }
            }
            cur = next;
        }
        cur.into_iter().map(Value::take).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> JsonPath {
        JsonPath::parse(s).unwrap()
    }

    #[test]
    fn paths_parse() {
        assert_eq!(p("$").steps, vec![]);
        assert_eq!(
            p("$.a.b").steps,
            vec![Step::Member("a".into()), Step::Member("b".into())]
        );
        assert_eq!(
            p("$.a[0].b").steps,
            vec![
                Step::Member("a".into()),
                Step::Index(0),
                Step::Member("b".into())
            ]
        );
        assert_eq!(p("$[*]").steps, vec![Step::All]);
        assert_eq!(p("$.*").steps, vec![Step::All]);
        assert_eq!(
            p("$['odd key'][\"x.y\"]").steps,
            vec![Step::Member("odd key".into()), Step::Member("x.y".into())]
        );
        assert!(p("$[*]").is_whole_document());
        assert!(!p("$.data").is_whole_document());
        for bad in ["data", "$.", "$[", "$[x]", "$['a'", "$..a", "$a"] {
            let e = JsonPath::parse(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidParameter, "{bad}");
            assert!(e.message.contains(bad), "{}", e.message);
        }
    }

    #[test]
    fn paths_select_records_and_cursors() {
        let doc = json!({
            "data": [{"id": 1}, {"id": 2}],
            "meta": {"next": "abc", "pages": [{"rows": [{"id": 3}]}]},
            "none": null
        });
        assert_eq!(
            p("$.data").records(doc.clone()),
            vec![json!({"id": 1}), json!({"id": 2})]
        );
        assert_eq!(
            p("$.data[*]").records(doc.clone()),
            vec![json!({"id": 1}), json!({"id": 2})]
        );
        assert_eq!(
            p("$.meta.pages[0].rows").records(doc.clone()),
            vec![json!({"id": 3})]
        );
        assert_eq!(p("$.data[1]").records(doc.clone()), vec![json!({"id": 2})]);
        assert!(p("$.missing").records(doc.clone()).is_empty());
        assert!(p("$.none").records(doc.clone()).is_empty());
        assert!(p("$.data[5]").records(doc.clone()).is_empty());
        assert_eq!(p("$.meta.next").select_one(&doc), Some(&json!("abc")));
        assert_eq!(p("$.none").select_one(&doc), None);
        assert_eq!(
            p("$[*]").records(json!([{"a": 1}, {"a": 2}])).len(),
            2,
            "a top-level array"
        );
        assert_eq!(p("$").records(json!([{"a": 1}])).len(), 1);
        assert_eq!(p("$").records(json!({"a": 1})), vec![json!({"a": 1})]);
    }
}
