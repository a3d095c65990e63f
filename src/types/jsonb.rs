//! JSON documents kept as text: validation (`json`), PostgreSQL's
//! normalised `jsonb` text (`{"a": 1, "b": [1, 2]}`: keys sorted shorter
//! first, the last of duplicate keys kept, numbers as written), and the
//! operators `->`, `->>`, `#>`, `#>>`.

use std::fmt::Write;

/// A parsed JSON value; `span` is where it stands in the parsed text.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub kind: Kind,
    pub span: (usize, usize),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    /// The number's text as written (PostgreSQL keeps `1.50` as `1.50`).
    Number(String),
    String(String),
    Array(Vec<Value>),
    /// Members in the order written, duplicates included.
    Object(Vec<(String, Value)>),
}

/// Parse one JSON document; `None` when `text` is not JSON.
pub fn parse(text: &str) -> Option<Value> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    let v = p.value()?;
    p.ws();
    (p.i == p.s.len()).then_some(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.ws();
        let start = self.i;
        let kind = match *self.s.get(self.i)? {
            b'n' if self.eat(b"null") => Kind::Null,
            b't' if self.eat(b"true") => Kind::Bool(true),
            b'f' if self.eat(b"false") => Kind::Bool(false),
            b'"' => Kind::String(self.string()?),
            b'[' => {
                self.nest()?;
                self.i += 1;
                let mut items = vec![];
                self.ws();
                if !self.eat(b"]") {
                    loop {
                        items.push(self.value()?);
                        self.ws();
                        if self.eat(b"]") {
                            break;
                        }
                        if !self.eat(b",") {
                            return None;
                        }
                    }
                }
                self.depth -= 1;
                Kind::Array(items)
            }
            b'{' => {
                self.nest()?;
                self.i += 1;
                let mut members = vec![];
                self.ws();
                if !self.eat(b"}") {
                    loop {
                        self.ws();
                        if self.s.get(self.i) != Some(&b'"') {
                            return None;
                        }
                        let key = self.string()?;
                        self.ws();
                        if !self.eat(b":") {
                            return None;
                        }
                        members.push((key, self.value()?));
                        self.ws();
                        if self.eat(b"}") {
                            break;
                        }
                        if !self.eat(b",") {
                            return None;
                        }
                    }
                }
                self.depth -= 1;
                Kind::Object(members)
            }
            b'-' | b'0'..=b'9' => Kind::Number(self.number()?),
            _ => return None,
        };
        Some(Value {
            kind,
            span: (start, self.i),
        })
    }

    /// PostgreSQL's limit on nesting (its stack depth) is far above any
    /// real document; this keeps a hostile one from exhausting the stack.
    fn nest(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= 1000).then_some(())
    }

    fn number(&mut self) -> Option<String> {
        let start = self.i;
        self.eat(b"-");
        let digits = |p: &mut Self| {
            let from = p.i;
            while p.i < p.s.len() && p.s[p.i].is_ascii_digit() {
                p.i += 1;
            }
            p.i > from
        };
        if self.eat(b"0") {
            // no leading zeros
        } else if !digits(self) {
            return None;
        }
        if self.eat(b".") && !digits(self) {
            return None;
        }
        if self.s.get(self.i).is_some_and(|c| matches!(c, b'e' | b'E')) {
            self.i += 1;
            if !self.eat(b"+") {
                self.eat(b"-");
            }
            if !digits(self) {
                return None;
            }
        }
        Some(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
        let v = u32::from_str_radix(h, 16).ok()?;
        self.i += 4;
        Some(v)
    }

    fn string(&mut self) -> Option<String> {
        self.i += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            let c = *self.s.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{08}',
                        b'f' => '\u{0c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if !self.eat(b"\\u") {
                                    return None;
                                }
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return None;
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            // PostgreSQL rejects \u0000 in text.
                            if code == 0 {
                                return None;
                            }
                            char::from_u32(code)?
                        }
                        _ => return None,
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c if c < 0x20 => return None,
                c => out.push(c),
            }
        }
        String::from_utf8(out).ok()
    }
}

/// `s` as a JSON string literal.
pub fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// PostgreSQL's jsonb text of `v`.
pub fn jsonb_text(v: &Value) -> String {
    let mut out = String::new();
    write_jsonb(&mut out, v);
    out
}

fn write_jsonb(out: &mut String, v: &Value) {
    match &v.kind {
        Kind::Null => out.push_str("null"),
        Kind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Kind::Number(n) => out.push_str(n),
        Kind::String(s) => quote(out, s),
        Kind::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_jsonb(out, item);
            }
            out.push(']');
        }
        Kind::Object(members) => {
            out.push('{');
            for (i, (k, item)) in jsonb_members(members).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                quote(out, k);
                out.push_str(": ");
                write_jsonb(out, item);
            }
            out.push('}');
        }
    }
}

/// An object's members as jsonb keeps them: shorter keys first, then by
/// bytes; of duplicate keys the last one.
pub fn jsonb_members(members: &[(String, Value)]) -> Vec<(&String, &Value)> {
    // A set of the keys seen: an aggregated object can have many members.
    let mut seen = std::collections::HashSet::with_capacity(members.len());
    let mut kept: Vec<(&String, &Value)> = Vec::with_capacity(members.len());
    for (k, v) in members.iter().rev() {
        if seen.insert(k.as_str()) {
            kept.push((k, v));
        }
    }
    kept.sort_by(|a, b| (a.0.len(), a.0.as_bytes()).cmp(&(b.0.len(), b.0.as_bytes())));
    kept
}

/// One step of a path: an object key or an array index (negative counts
/// from the end).
pub enum Step<'a> {
    Key(&'a str),
    Index(i64),
    /// A step of a `#>` path: a key of an object or the index of an array.
    Part(&'a str),
}

/// The element `step` selects in `v`, as `->` finds it (the last of
/// duplicate keys, as jsonb keeps it).
pub fn get<'v>(v: &'v Value, step: &Step) -> Option<&'v Value> {
    match (&v.kind, step) {
        (Kind::Object(members), Step::Key(k) | Step::Part(k)) => members
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v),
        (Kind::Array(items), Step::Index(i)) => {
            let i = if *i < 0 { items.len() as i64 + i } else { *i };
            usize::try_from(i).ok().and_then(|i| items.get(i))
        }
        // `#>` paths name array elements as text: '{a,0}'.
        (Kind::Array(items), Step::Part(k)) => {
            let i: i64 = k.trim().parse().ok()?;
            let i = if i < 0 { items.len() as i64 + i } else { i };
            usize::try_from(i).ok().and_then(|i| items.get(i))
        }
        _ => None,
    }
}

/// A value as `->>` gives it: a string unquoted, `null` as SQL NULL, any
/// other value as its JSON text (`source` is the text `v` was parsed from).
pub fn as_text(v: &Value, source: &str, normalized: bool) -> Option<String> {
    match &v.kind {
        Kind::Null => None,
        Kind::String(s) => Some(s.clone()),
        _ => Some(as_json(v, source, normalized)),
    }
}

/// A value as `->` gives it: json keeps the text as written, jsonb prints
/// its normalised form.
pub fn as_json(v: &Value, source: &str, normalized: bool) -> String {
    if normalized {
        jsonb_text(v)
    } else {
        source[v.span.0..v.span.1].to_string()
    }
}

/// The text of the value `step` selects at the top of `src`, found by
/// skipping over the other members instead of building the document (the
/// operators' path for stored documents, which were checked when written).
/// `Some(None)` when there is no such value; `None` when this scan cannot
/// tell (an escaped key, a negative index, text that does not scan) and the
/// full parser must answer.
pub fn find<'s>(src: &'s str, step: &Step) -> Option<Option<&'s str>> {
    let mut sc = Scan {
        s: src.as_bytes(),
        i: 0,
    };
    sc.ws();
    let first = *sc.s.get(sc.i)?;
    let index = match (first, step) {
        (b'{', Step::Key(k) | Step::Part(k)) => return sc.member(src, k),
        (b'[', Step::Index(i)) => *i,
        (b'[', Step::Part(k)) => k.trim().parse::<i64>().ok()?,
        (b'{' | b'[', _) => return Some(None),
        // A scalar has no members (the full parser checks it is one).
        _ => return None,
    };
    if index < 0 {
        return None;
    }
    sc.element(src, index as usize)
}

/// The text of a value as `->>` gives it: a string unquoted, `null` as
/// None; `None` outside when the string needs unescaping by the parser.
pub fn raw_as_text(raw: &str) -> Option<Option<&str>> {
    if raw == "null" {
        return Some(None);
    }
    match raw.strip_prefix('"') {
        Some(inner) if !inner.contains('\\') => Some(inner.strip_suffix('"')),
        Some(_) => None,
        None => Some(Some(raw)),
    }
}

struct Scan<'a> {
    s: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn at(&self, c: u8) -> bool {
        self.s.get(self.i) == Some(&c)
    }

    /// Past a string starting at the quote; whether it had an escape.
    fn string(&mut self) -> Option<bool> {
        self.i += 1;
        let mut escaped = false;
        loop {
            match *self.s.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.i += 2;
                }
                _ => self.i += 1,
            }
        }
    }

    /// Past one value.
    fn value(&mut self) -> Option<()> {
        match *self.s.get(self.i)? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match *self.s.get(self.i)? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                let from = self.i;
                while self.i < self.s.len()
                    && !matches!(
                        self.s[self.i],
                        b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'
                    )
                {
                    self.i += 1;
                }
                (self.i > from).then_some(())
            }
        }
    }

    /// The last member named `key` of the object at the cursor.
    fn member<'s>(&mut self, src: &'s str, key: &str) -> Option<Option<&'s str>> {
        self.i += 1;
        self.ws();
        let mut found = None;
        if self.at(b'}') {
            return Some(None);
        }
        loop {
            self.ws();
            if !self.at(b'"') {
                return None;
            }
            let start = self.i + 1;
            if self.string()? {
                return None;
            }
            let name = &src[start..self.i - 1];
            self.ws();
            if !self.at(b':') {
                return None;
            }
            self.i += 1;
            self.ws();
            let from = self.i;
            self.value()?;
            if name == key {
                found = Some(&src[from..self.i]);
            }
            self.ws();
            match self.s.get(self.i)? {
                b',' => self.i += 1,
                b'}' => return Some(found),
                _ => return None,
            }
        }
    }

    /// Element `index` of the array at the cursor.
    fn element<'s>(&mut self, src: &'s str, index: usize) -> Option<Option<&'s str>> {
        self.i += 1;
        self.ws();
        if self.at(b']') {
            return Some(None);
        }
        let mut n = 0;
        loop {
            self.ws();
            let from = self.i;
            self.value()?;
            if n == index {
                return Some(Some(&src[from..self.i]));
            }
            n += 1;
            self.ws();
            match self.s.get(self.i)? {
                b',' => self.i += 1,
                b']' => return Some(None),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonb_text_is_postgres_normal_form() {
        let v = parse(r#"{"bb":1.50, "a" : [1,2,"x"], "a":{"z":null,"y":true}}"#).unwrap();
        assert_eq!(
            jsonb_text(&v),
            r#"{"a": {"y": true, "z": null}, "bb": 1.50}"#
        );
        assert_eq!(jsonb_text(&parse(" [ ] ").unwrap()), "[]");
        assert_eq!(jsonb_text(&parse(r#""é\n\u00e9""#).unwrap()), r#""é\né""#);
    }

    #[test]
    fn invalid_documents_are_rejected() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\"}",
            "01",
            "1.",
            "-",
            "tru",
            "\"\\x\"",
            "1 2",
            "{'a':1}",
            "\"\\u0000\"",
            "nan",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        let deep = "[".repeat(5000) + &"]".repeat(5000);
        assert!(parse(&deep).is_none());
        assert!(parse("-0.5e+10").is_some());
    }

    #[test]
    fn operators_find_keys_and_indexes() {
        let src = r#"{"a": {"b" : [10, "x", null]}, "a2": 1}"#;
        let v = parse(src).unwrap();
        let a = get(&v, &Step::Key("a")).unwrap();
        assert_eq!(as_json(a, src, false), r#"{"b" : [10, "x", null]}"#);
        assert_eq!(as_json(a, src, true), r#"{"b": [10, "x", null]}"#);
        let b = get(a, &Step::Key("b")).unwrap();
        assert_eq!(
            as_text(get(b, &Step::Index(1)).unwrap(), src, false).as_deref(),
            Some("x")
        );
        assert_eq!(
            as_text(get(b, &Step::Index(-3)).unwrap(), src, false).as_deref(),
            Some("10")
        );
        assert_eq!(as_text(get(b, &Step::Index(2)).unwrap(), src, false), None);
        assert!(get(b, &Step::Index(3)).is_none());
        assert!(get(&v, &Step::Index(0)).is_none());
        assert!(get(b, &Step::Part("0")).is_some());
        assert!(get(b, &Step::Key("0")).is_none());
    }

    #[test]
    fn the_quick_scan_agrees_with_the_parser() {
        let src = r#"{"a": {"b" : [10, "x", null, {"c]": "}"}]}, "s": "q\"t", "a2": 1, "a": 7}"#;
        assert_eq!(find(src, &Step::Key("a")), Some(Some("7")));
        assert_eq!(find(src, &Step::Key("a2")), Some(Some("1")));
        assert_eq!(find(src, &Step::Key("zz")), Some(None));
        assert_eq!(find(src, &Step::Key("s")), Some(Some(r#""q\"t""#)));
        assert_eq!(raw_as_text(r#""q\"t""#), None);
        assert_eq!(raw_as_text(r#""qt""#), Some(Some("qt")));
        assert_eq!(raw_as_text("null"), Some(None));
        let inner = r#"{"b" : [10, "x", null, {"c]": "}"}]}"#;
        let b = find(inner, &Step::Key("b")).unwrap().unwrap();
        assert_eq!(find(b, &Step::Index(1)), Some(Some(r#""x""#)));
        assert_eq!(find(b, &Step::Index(3)), Some(Some(r#"{"c]": "}"}"#)));
        assert_eq!(find(b, &Step::Index(4)), Some(None));
        assert_eq!(find(b, &Step::Part("0")), Some(Some("10")));
        assert_eq!(find(b, &Step::Index(-1)), None);
        assert_eq!(find(b, &Step::Key("x")), Some(None));
        assert_eq!(find("[]", &Step::Index(0)), Some(None));
        assert_eq!(find("{}", &Step::Key("a")), Some(None));
        assert_eq!(find(r#"{"a\u0062": 1}"#, &Step::Key("ab")), None);
        assert_eq!(find("3", &Step::Key("a")), None);
        assert_eq!(find("{\"a\": 1", &Step::Key("a")), None);
    }
}
