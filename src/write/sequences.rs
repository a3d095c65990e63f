//! Sequences: `nextval`, `currval`, `setval` and `lastval`, which serial
//! and identity columns take their values from.
//!
//! A sequence's definition is a catalog object ([`SequenceDef`]); where it
//! stands is kept apart, in the lake's `_sluice/sequences` Delta table, as
//! two application transactions per sequence written in every commit:
//! `sequence/<id>`, whose version is the last value handed out by any
//! server (or, after `setval(…, false)` or a restart, the value the next
//! call returns), and `sequence/<id>/uncalled`, equal to it exactly when
//! that value was not handed out yet. A server that knows only the first
//! (an older Sluice) moves the position away from the mark, so its
//! values count as handed out and none is handed out twice.
//! A server reserves values in blocks, one commit per block: at least 32
//! values or as many as the statement asks for at once (an INSERT of
//! 10,000 rows reserves them in one commit). A crash or restart skips what
//! was left of a block, as PostgreSQL skips the values it logged ahead;
//! values are never handed out twice, since two servers' commits of one
//! sequence conflict and the loser reads the new position and tries again.
//! Each sequence has its own lock in a server: a reservation waiting on
//! the store holds up the callers of that sequence only.
//!
//! ```text
//!  nextval('s') ──► session: currval, lastval
//!        │
//!        ▼
//!  Sequences (per server): reserved blocks ──► _sluice/sequences
//!                                     txn sequence/<id> = position
//!                                     txn sequence/<id>/uncalled = mark
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, AsArray, Int64Builder};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use crate::catalog::{Catalog, Def, Object, SequenceDef};
use crate::error::{Error, ErrorKind, Result};
use crate::lake::Lake;

const STATE_LOCATION: &str = "_sluice/sequences";
/// The fewest values one reservation takes.
const BLOCK: usize = 32;
/// The most values one reservation takes, whatever CACHE says.
const MAX_BLOCK: usize = 10_000;

/// The values this server reserved for one sequence and has not handed
/// out yet.
type Block = Arc<tokio::sync::Mutex<VecDeque<i64>>>;

/// The values this server has reserved and not handed out yet, per
/// sequence (by id).
pub struct Sequences {
    lake: Arc<Lake>,
    /// Set once the state table is known to exist.
    created: tokio::sync::OnceCell<()>,
    blocks: Mutex<HashMap<String, Block>>,
    /// Where each sequence stands as far as this server's callers see
    /// it: the last value it handed out, or the value set.
    handed: Mutex<HashMap<String, Position>>,
}

impl std::fmt::Debug for Sequences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sequences")
    }
}

fn app_id(def: &SequenceDef) -> String {
    format!("sequence/{}", def.id)
}

fn uncalled_id(def: &SequenceDef) -> String {
    format!("sequence/{}/uncalled", def.id)
}

/// Where a sequence stands, as PostgreSQL shows it: `last_value` and
/// `is_called`. Before the first call `last` is `None`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    pub last: Option<i64>,
    /// Whether `last` was handed out; when not, the next call returns it.
    pub called: bool,
}

impl Position {
    /// The transactions that record this position of `def`.
    fn transactions(&self, def: &SequenceDef) -> Vec<super::AppTransaction> {
        let Some(last) = self.last else {
            return vec![];
        };
        vec![
            super::AppTransaction {
                app_id: app_id(def),
                version: last,
            },
            super::AppTransaction {
                app_id: uncalled_id(def),
                // The position itself when not called; another value
                // when called.
                version: if self.called {
                    last.wrapping_add(1)
                } else {
                    last
                },
            },
        ]
    }
}

impl Sequences {
    pub fn new(lake: Arc<Lake>) -> Arc<Sequences> {
        Arc::new(Sequences {
            lake,
            created: Default::default(),
            blocks: Default::default(),
            handed: Default::default(),
        })
    }

    /// The state table, created on first use.
    async fn state(&self) -> Result<deltalake::DeltaTable> {
        use datafusion::arrow::datatypes::{Field, Schema};
        let url = self.lake.url_for(STATE_LOCATION)?;
        if self.created.initialized() {
            return self.lake.table_now(&url).await;
        }
        if !self.lake.exists(&url).await? {
            let schema = Schema::new(vec![Field::new("sequence", DataType::Utf8, true)]);
            let created = self
                .lake
                .create(&url, &schema, &[], "sluice_sequences")
                .await;
            // Another server creating it at the same time is fine.
            if let Err(e) = created
                && !self.lake.exists(&url).await?
            {
                return Err(e);
            }
        }
        let _ = self.created.set(());
        self.lake.table_now(&url).await
    }

    /// Where `def` stands in the lake (where values reserved by servers
    /// count as handed out).
    async fn stored(table: &deltalake::DeltaTable, def: &SequenceDef) -> Result<Position> {
        let last = super::applied_version(table, &app_id(def)).await?;
        let mark = super::applied_version(table, &uncalled_id(def)).await?;
        Ok(Position {
            last,
            called: last.is_none() || mark != last,
        })
    }

    /// Where `def` stands: as this server last handed out or set it, else
    /// as the lake has it.
    pub async fn position(&self, def: &SequenceDef) -> Result<Position> {
        if let Some(p) = self.handed.lock().unwrap().get(&def.id) {
            return Ok(*p);
        }
        Self::stored(&self.state().await?, def).await
    }

    /// Drop the values this server reserved for `def`, so that the next
    /// value follows its (changed) options (ALTER SEQUENCE). When no other
    /// server reserved after this one, the lake goes back to the last value
    /// this server handed out, so that nothing is skipped (as PostgreSQL
    /// with CACHE 1); otherwise the next value comes after the other
    /// server's reservation.
    pub async fn forget(&self, def: &SequenceDef) -> Result<()> {
        let block = self.block(def);
        let mut block = block.lock().await;
        let handed = self.handed.lock().unwrap().get(&def.id).copied();
        if let (Some(&end), Some(handed @ Position { called: true, .. })) = (block.back(), handed) {
            let reserved = Position {
                last: Some(end),
                called: true,
            };
            let mut attempt = 0;
            loop {
                attempt += 1;
                let table = self.state().await?;
                if Self::stored(&table, def).await? != reserved {
                    break;
                }
                match super::record_transactions(
                    &self.lake,
                    &table,
                    &handed.transactions(def),
                    vec![],
                )
                .await
                {
                    Ok(_) => break,
                    // Another server reserved meanwhile: look again.
                    Err(e) if e.kind == ErrorKind::SerializationFailure && attempt < 100 => {
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        block.clear();
        Ok(())
    }

    /// The lock of `def`'s reserved values.
    fn block(&self, def: &SequenceDef) -> Block {
        self.blocks
            .lock()
            .unwrap()
            .entry(def.id.clone())
            .or_default()
            .clone()
    }

    /// The next `n` values of `def` (`name` for messages).
    pub async fn next(&self, name: &str, def: &SequenceDef, n: usize) -> Result<Vec<i64>> {
        let block = self.block(def);
        let mut block = block.lock().await;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            if let Some(v) = block.pop_front() {
                out.push(v);
                continue;
            }
            // Values are held one by one: a huge CACHE is served in
            // blocks of at most MAX_BLOCK.
            let want = (n - out.len())
                .max(BLOCK)
                .max(def.cache.clamp(1, MAX_BLOCK as i64) as usize);
            let reserved = self.reserve(name, def, want, out.is_empty()).await?;
            if reserved.is_empty() {
                // The end of a sequence without CYCLE, reached part-way.
                return Err(exhausted(name, def));
            }
            block.extend(reserved);
        }
        if let Some(v) = out.last() {
            self.handed.lock().unwrap().insert(
                def.id.clone(),
                Position {
                    last: Some(*v),
                    called: true,
                },
            );
        }
        Ok(out)
    }

    /// Take up to `want` values in one commit; at least one, or the error
    /// of a sequence at its end, when `first`.
    async fn reserve(
        &self,
        name: &str,
        def: &SequenceDef,
        want: usize,
        first: bool,
    ) -> Result<Vec<i64>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let table = self.state().await?;
            let mut at = Self::stored(&table, def).await?;
            let mut values = Vec::with_capacity(want);
            while values.len() < want {
                match step(def, at) {
                    Some(v) => {
                        values.push(v);
                        at = Position {
                            last: Some(v),
                            called: true,
                        };
                    }
                    None if values.is_empty() && first => return Err(exhausted(name, def)),
                    None => break,
                }
            }
            if values.is_empty() {
                return Ok(values);
            }
            match super::record_transactions(&self.lake, &table, &at.transactions(def), vec![])
                .await
            {
                Ok(_) => return Ok(values),
                Err(e) if e.kind == ErrorKind::SerializationFailure && attempt < 100 => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// `setval`: the last value handed out becomes `value` (`called`), or
    /// the next one will be `value` (not `called`). Values this server
    /// reserved are dropped; other servers finish their blocks first.
    pub async fn set(&self, name: &str, def: &SequenceDef, value: i64, called: bool) -> Result<()> {
        if value < def.min || value > def.max {
            return Err(Error::new(
                ErrorKind::NumericOutOfRange,
                format!(
                    "setval: value {value} is out of bounds for sequence \"{name}\" ({}..{})",
                    def.min, def.max
                ),
            ));
        }
        self.reposition(&[(def, value, called)]).await
    }

    /// Restart each of `defs` at its START value, in one commit: all of
    /// them or none (TRUNCATE ... RESTART IDENTITY).
    pub async fn restart(&self, defs: &[&SequenceDef]) -> Result<()> {
        let moves: Vec<(&SequenceDef, i64, bool)> =
            defs.iter().map(|d| (*d, d.start, false)).collect();
        self.reposition(&moves).await
    }

    /// Move each sequence to a value, `called` or not, in one commit,
    /// dropping the values this server reserved for them.
    async fn reposition(&self, moves: &[(&SequenceDef, i64, bool)]) -> Result<()> {
        if moves.is_empty() {
            return Ok(());
        }
        // Locked in one order, so two callers never wait on each other.
        let mut ordered: Vec<&(&SequenceDef, i64, bool)> = moves.iter().collect();
        ordered.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        ordered.dedup_by(|a, b| a.0.id == b.0.id);
        let blocks: Vec<Block> = ordered.iter().map(|(d, _, _)| self.block(d)).collect();
        let mut guards = Vec::with_capacity(blocks.len());
        for b in &blocks {
            guards.push(b.lock().await);
        }
        let positions: Vec<(&SequenceDef, Position)> = ordered
            .iter()
            .map(|(d, value, called)| {
                (
                    *d,
                    Position {
                        last: Some(*value),
                        called: *called,
                    },
                )
            })
            .collect();
        let txns: Vec<super::AppTransaction> = positions
            .iter()
            .flat_map(|(d, p)| p.transactions(d))
            .collect();
        // The new positions do not depend on the old: a conflict with a
        // reservation is tried again.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let table = self.state().await?;
            match super::record_transactions(&self.lake, &table, &txns, vec![]).await {
                Ok(_) => break,
                Err(e) if e.kind == ErrorKind::SerializationFailure && attempt < 100 => continue,
                Err(e) => return Err(e),
            }
        }
        let mut handed = self.handed.lock().unwrap();
        for ((d, p), guard) in positions.iter().zip(guards.iter_mut()) {
            guard.clear();
            handed.insert(d.id.clone(), *p);
        }
        Ok(())
    }
}

/// The value after `at`: the start before the first call, the value set
/// when it was not handed out; `None` at the end of a sequence without
/// CYCLE.
fn step(def: &SequenceDef, at: Position) -> Option<i64> {
    let Some(last) = at.last else {
        return Some(def.start);
    };
    if !at.called {
        return Some(last);
    }
    let next = i128::from(last) + i128::from(def.increment);
    if next > i128::from(def.max) || next < i128::from(def.min) {
        return def
            .cycle
            .then_some(if def.increment > 0 { def.min } else { def.max });
    }
    Some(next as i64)
}

fn exhausted(name: &str, def: &SequenceDef) -> Error {
    let (which, bound) = if def.increment > 0 {
        ("maximum", def.max)
    } else {
        ("minimum", def.min)
    };
    Error::new(
        ErrorKind::SequenceLimit,
        format!("nextval: reached {which} value of sequence \"{name}\" ({bound})"),
    )
}

/// The bounds PostgreSQL gives a sequence of `ty` (smallint, integer or
/// bigint) without MINVALUE / MAXVALUE.
pub fn type_bounds(ty: &str) -> (i64, i64) {
    match ty {
        "smallint" => (i64::from(i16::MIN), i64::from(i16::MAX)),
        "integer" => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN, i64::MAX),
    }
}

/// What `currval` and `lastval` answer in one session.
#[derive(Debug, Default)]
pub struct SessionValues {
    by_sequence: HashMap<String, i64>,
    last: Option<i64>,
}

pub type SessionState = Arc<Mutex<SessionValues>>;

/// Run `work` to completion from inside an executing plan (a scalar
/// function cannot wait): on the runtime's own worker, handing the worker's
/// other tasks on; elsewhere, on a helper thread.
fn wait<T: Send>(work: impl std::future::Future<Output = T> + Send) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| h.block_on(work))
        }
        Ok(h) => std::thread::scope(|s| {
            s.spawn(|| h.block_on(work))
                .join()
                .expect("a sequence reservation does not panic")
        }),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for a sequence reservation")
            .block_on(work),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Call {
    Next,
    Current,
    Set,
    Last,
}

/// One of the sequence functions, bound to a session's search path and
/// values.
#[derive(Clone)]
struct SequenceFn {
    call: Call,
    signature: Signature,
    sequences: Arc<Sequences>,
    names: Names,
    session: SessionState,
}

impl std::fmt::Debug for SequenceFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SequenceFn({:?})", self.call)
    }
}

impl PartialEq for SequenceFn {
    fn eq(&self, other: &Self) -> bool {
        self.call == other.call
            && Arc::ptr_eq(&self.session, &other.session)
            && Arc::ptr_eq(&self.names, &other.names)
    }
}

impl Eq for SequenceFn {}

impl std::hash::Hash for SequenceFn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.call.hash(state);
    }
}

/// The relation a name written as text denotes (`regclass` input:
/// `'s'`, `'mart.s'`, `'"S"'`), by the binder's rules and the session's
/// search path; 42P01 when there is none, `None` for a table of a system
/// schema.
pub type Names = Arc<dyn Fn(&str) -> Result<Option<Object>> + Send + Sync>;

/// The sequence `text` names.
fn find(names: &Names, text: &str) -> Result<(Object, Arc<SequenceDef>)> {
    match names(text)? {
        Some(found) => match &found.def {
            Def::Sequence(def) => {
                let def = def.clone();
                Ok((found, def))
            }
            _ => Err(not_a_sequence(&found.name)),
        },
        None => Err(not_a_sequence(text)),
    }
}

fn not_a_sequence(name: &str) -> Error {
    Error::new(
        ErrorKind::WrongObjectType,
        format!("\"{name}\" is not a sequence"),
    )
}

impl ScalarUDFImpl for SequenceFn {
    fn name(&self) -> &str {
        match self.call {
            Call::Next => "nextval",
            Call::Current => "currval",
            Call::Set => "setval",
            Call::Last => "lastval",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int64)
    }
    /// `nextval('s')` gets a second argument without inputs, so that the
    /// planner does not take the call for a constant (a function of
    /// literals), which it may sort or group by as one value.
    fn simplify(
        &self,
        mut args: Vec<datafusion::logical_expr::Expr>,
        _: &datafusion::logical_expr::simplify::SimplifyContext,
    ) -> DfResult<datafusion::logical_expr::simplify::ExprSimplifyResult> {
        use datafusion::logical_expr::simplify::ExprSimplifyResult;
        if self.call != Call::Next || args.len() != 1 {
            return Ok(ExprSimplifyResult::Original(args));
        }
        args.push(ScalarUDF::new_from_impl(PerRow::default()).call(vec![]));
        Ok(ExprSimplifyResult::Simplified(
            ScalarUDF::new_from_impl(self.clone()).call(args),
        ))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        if self.call == Call::Last {
            let last = self.session.lock().unwrap().last;
            return match last {
                Some(v) => Ok(ColumnarValue::Array(Arc::new(
                    datafusion::arrow::array::Int64Array::from(vec![v; n]),
                ))),
                None => Err(Error::new(
                    ErrorKind::ObjectNotInPrerequisiteState,
                    "lastval is not yet defined in this session",
                )
                .into()),
            };
        }
        let names = args.args[0].to_array(n)?;
        let names = datafusion::arrow::compute::cast(&names, &DataType::Utf8)?;
        let names = names.as_string::<i32>();
        let mut out = Int64Builder::with_capacity(n);
        // Rows that name one sequence (the usual case, a default or a
        // literal) are served by one reservation.
        let same =
            n > 0 && names.null_count() == 0 && (0..n).all(|i| names.value(i) == names.value(0));
        if self.call == Call::Next && same {
            let (o, def) = find(&self.names, names.value(0))?;
            let values = wait(self.sequences.next(&o.name, &def, n))?;
            let last = *values.last().expect("n > 0 values");
            let mut s = self.session.lock().unwrap();
            s.by_sequence.insert(def.id.clone(), last);
            s.last = Some(last);
            out.append_slice(&values);
            return Ok(ColumnarValue::Array(Arc::new(out.finish())));
        }
        let values = match args.args.get(1) {
            Some(v) => Some(datafusion::arrow::compute::cast(
                &v.to_array(n)?,
                &DataType::Int64,
            )?),
            None => None,
        };
        let called = match args.args.get(2) {
            Some(c) => Some(c.to_array(n)?),
            None => None,
        };
        // Each name is looked up once per batch.
        let mut found: HashMap<&str, (Object, Arc<SequenceDef>)> = HashMap::new();
        for i in 0..n {
            if names.is_null(i) {
                out.append_null();
                continue;
            }
            let text = names.value(i);
            if !found.contains_key(text) {
                found.insert(text, find(&self.names, text)?);
            }
            let (o, def) = &found[text];
            match self.call {
                Call::Next => {
                    let v = wait(self.sequences.next(&o.name, def, 1))?[0];
                    let mut s = self.session.lock().unwrap();
                    s.by_sequence.insert(def.id.clone(), v);
                    s.last = Some(v);
                    out.append_value(v);
                }
                Call::Current => {
                    let v = self
                        .session
                        .lock()
                        .unwrap()
                        .by_sequence
                        .get(&def.id)
                        .copied();
                    match v {
                        Some(v) => out.append_value(v),
                        None => {
                            return Err(Error::new(
                                ErrorKind::ObjectNotInPrerequisiteState,
                                format!(
                                    "currval of sequence \"{}\" is not yet defined in this session",
                                    o.name
                                ),
                            )
                            .into());
                        }
                    }
                }
                Call::Set => {
                    let values = values.as_ref().expect("setval has a value");
                    let values = values.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                    if values.is_null(i) {
                        out.append_null();
                        continue;
                    }
                    let v = values.value(i);
                    let called = match &called {
                        Some(c) if c.is_null(i) => {
                            out.append_null();
                            continue;
                        }
                        Some(c) => c.as_boolean().value(i),
                        None => true,
                    };
                    wait(self.sequences.set(&o.name, def, v, called))?;
                    if called {
                        self.session
                            .lock()
                            .unwrap()
                            .by_sequence
                            .insert(def.id.clone(), v);
                    }
                    out.append_value(v);
                }
                Call::Last => unreachable!("answered above"),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// A NULL per row: the input-less argument [`SequenceFn::simplify`] adds.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PerRow {
    signature: Signature,
}

impl Default for PerRow {
    fn default() -> Self {
        PerRow {
            signature: Signature::nullary(Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for PerRow {
    fn name(&self) -> &str {
        "sluice_per_row"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        Ok(ColumnarValue::Array(
            datafusion::arrow::array::new_null_array(&DataType::Boolean, args.number_rows),
        ))
    }
}

/// `pg_get_serial_sequence(table, column)`: the sequence a serial or
/// identity column takes its values from, as `schema.name`; NULL for
/// another column.
struct SerialSequence {
    signature: Signature,
    catalog: Arc<Catalog>,
    names: Names,
}

impl std::fmt::Debug for SerialSequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SerialSequence")
    }
}

impl PartialEq for SerialSequence {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.names, &other.names)
    }
}

impl Eq for SerialSequence {}

impl std::hash::Hash for SerialSequence {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl SerialSequence {
    fn lookup(&self, table: &str, column: &str) -> Result<Option<String>> {
        // A system table has no serial columns.
        let Some(rel) = (self.names)(table)? else {
            return Ok(None);
        };
        if !rel.declared_columns().iter().any(|c| c.name == column) {
            return Err(Error::new(
                ErrorKind::UndefinedColumn,
                format!(
                    "column \"{column}\" of relation \"{}\" does not exist",
                    rel.name
                ),
            ));
        }
        let quote = crate::frontend::names::quote_ident_if_needed;
        let snap = self.catalog.snapshot();
        let found = snap
            .owned_sequences(&rel.schema, &rel.name)
            .find(|(_, _, c)| *c == column)
            .map(|(o, _, _)| format!("{}.{}", quote(&o.schema), quote(&o.name)));
        Ok(found)
    }
}

impl ScalarUDFImpl for SerialSequence {
    fn name(&self) -> &str {
        "pg_get_serial_sequence"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let tables = datafusion::arrow::compute::cast(&args.args[0].to_array(n)?, &DataType::Utf8)?;
        let columns =
            datafusion::arrow::compute::cast(&args.args[1].to_array(n)?, &DataType::Utf8)?;
        let (tables, columns) = (tables.as_string::<i32>(), columns.as_string::<i32>());
        let mut out = datafusion::arrow::array::StringBuilder::new();
        for i in 0..n {
            if tables.is_null(i) || columns.is_null(i) {
                out.append_null();
                continue;
            }
            out.append_option(self.lookup(tables.value(i), columns.value(i))?);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// Register `nextval`, `currval`, `setval`, `lastval` and
/// `pg_get_serial_sequence` in `ctx`, looking names up with `names` and
/// keeping `currval` / `lastval` in `session`.
pub fn register(
    ctx: &SessionContext,
    sequences: &Arc<Sequences>,
    catalog: &Arc<Catalog>,
    names: Names,
    session: &SessionState,
) {
    use DataType::{Boolean, Int64, Utf8};
    for (call, signature) in [
        (
            Call::Next,
            vec![
                TypeSignature::Exact(vec![Utf8]),
                TypeSignature::Exact(vec![Utf8, Boolean]),
            ],
        ),
        (Call::Current, vec![TypeSignature::Exact(vec![Utf8])]),
        (
            Call::Set,
            vec![
                TypeSignature::Exact(vec![Utf8, Int64]),
                TypeSignature::Exact(vec![Utf8, Int64, Boolean]),
            ],
        ),
        (Call::Last, vec![TypeSignature::Nullary]),
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(SequenceFn {
            call,
            signature: Signature::one_of(signature, Volatility::Volatile),
            sequences: sequences.clone(),
            names: names.clone(),
            session: session.clone(),
        }));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(SerialSequence {
        signature: Signature::exact(vec![Utf8, Utf8], Volatility::Stable),
        catalog: catalog.clone(),
        names,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PgType;

    fn seq(start: i64, increment: i64, min: i64, max: i64, cycle: bool) -> SequenceDef {
        SequenceDef {
            id: "x".into(),
            ty: PgType::simple("bigint"),
            start,
            increment,
            min,
            max,
            cycle,
            cache: 1,
            owned_by: None,
        }
    }

    fn at(last: i64) -> Position {
        Position {
            last: Some(last),
            called: true,
        }
    }

    #[test]
    fn steps_within_bounds() {
        let up = seq(1, 1, 1, 3, false);
        let first = Position {
            last: None,
            called: false,
        };
        assert_eq!(step(&up, first), Some(1));
        assert_eq!(step(&up, at(2)), Some(3));
        assert_eq!(step(&up, at(3)), None);
        let cycling = seq(1, 2, 1, 4, true);
        assert_eq!(step(&cycling, at(3)), Some(1));
        let down = seq(-1, -1, -3, -1, true);
        assert_eq!(step(&down, at(-3)), Some(-1));
        let big = seq(i64::MAX - 1, 5, 1, i64::MAX, false);
        assert_eq!(step(&big, at(i64::MAX - 1)), None);
    }

    #[test]
    fn a_value_set_but_not_called_comes_next() {
        // setval('s', min, false) on a descending sequence at its
        // minimum: the next value is min itself, with nothing to subtract.
        let down = seq(-1, -1, i64::MIN, -1, false);
        let set = Position {
            last: Some(i64::MIN),
            called: false,
        };
        assert_eq!(step(&down, set), Some(i64::MIN));
        assert_eq!(step(&down, at(i64::MIN)), None);
    }
}
