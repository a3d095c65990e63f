//! One error type for the whole engine.
//!
//! Errors carry a [`ErrorKind`] that says what went wrong in PostgreSQL's
//! terms; the wire layer (`server::sqlstate`) is the only place that turns a
//! kind into a SQLSTATE code.

use std::fmt;

/// What class of failure an error is, independent of the wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Syntax,
    UndefinedTable,
    UndefinedColumn,
    UndefinedSchema,
    /// 3F000 as well: no schema to create an object in.
    InvalidSchemaName,
    UndefinedObject,
    UndefinedFunction,
    DuplicateTable,
    DuplicateSchema,
    DuplicateColumn,
    DuplicateObject,
    DatatypeMismatch,
    /// 42846: a cast PostgreSQL does not have (`integer` to `timestamp`).
    CannotCoerce,
    InvalidText,
    /// 22025: a LIKE pattern ending in its escape character.
    InvalidEscapeSequence,
    /// 2201B: a regular expression that does not compile.
    InvalidRegularExpression,
    /// 2201G: a `width_bucket` count or bounds that make no buckets.
    InvalidWidthBucket,
    InvalidDatetime,
    /// 22008: a date, time or interval beyond its type's range.
    DatetimeOverflow,
    CardinalityViolation,
    DivisionByZero,
    NumericOutOfRange,
    StringTooLong,
    NotNullViolation,
    CheckViolation,
    UniqueViolation,
    ForeignKeyViolation,
    InvalidColumnReference,
    InvalidForeignKey,
    DependentObjects,
    WrongObjectType,
    FeatureNotSupported,
    InvalidParameter,
    /// A window frame's offset that is negative (or NULL).
    InvalidWindowOffset,
    /// 2201W: a negative LIMIT.
    InvalidLimit,
    /// 2201X: a negative OFFSET.
    InvalidOffset,
    /// 22011: a negative substring length.
    SubstringError,
    AmbiguousColumn,
    /// 42725: a function name that more than one function has.
    AmbiguousFunction,
    Grouping,
    /// 42P20: a window function where none may stand.
    Windowing,
    /// 42P17: a definition PostgreSQL refuses as such (a generation
    /// expression that is not immutable).
    InvalidObjectDefinition,
    InFailedTransaction,
    /// 22004: a NULL where none is allowed (a JSON object key).
    NullValueNotAllowed,
    /// 25P01: a transaction statement outside a transaction block.
    NoActiveTransaction,
    /// 3B001: a savepoint that does not exist.
    InvalidSavepoint,
    /// 26000: a prepared statement that does not exist.
    InvalidSqlStatementName,
    /// 42P05: a prepared statement name already in use.
    DuplicatePreparedStatement,
    /// 34000: a cursor that does not exist.
    InvalidCursorName,
    /// 42P03: a cursor name already in use.
    DuplicateCursor,
    /// 55000: an object not in the state the statement needs.
    ObjectNotInPrerequisiteState,
    /// 2200H: a sequence at its end without CYCLE.
    SequenceLimit,
    /// 428C9: a value given for a `GENERATED ALWAYS` identity column.
    GeneratedAlways,
    QueryCanceled,
    SerializationFailure,
    InvalidTableDefinition,
    DataException,
    /// 22P04: a COPY input line that does not follow the format.
    BadCopyFormat,
    /// 22P03: a binary COPY value of the wrong shape.
    InvalidBinaryRepresentation,
    /// 22021: bytes that are not valid UTF-8.
    CharacterNotInRepertoire,
    /// 42501: the user's role does not allow the statement.
    InsufficientPrivilege,
    /// 2201E: the logarithm of zero or of a negative number.
    InvalidLogarithmArgument,
    /// 2201F: a root of a negative number, zero to a negative power.
    InvalidPowerArgument,
    /// 53200: the memory pool refused what a statement needed.
    OutOfMemory,
    /// 53400: a configured limit (such as `[http] max_download`) was reached.
    ConfigurationLimitExceeded,
    /// 54000: a value beyond what a type can hold (`chr(0)`).
    ProgramLimitExceeded,
    /// 08001: a remote database could not be reached.
    ConnectionFailure,
    /// 58P01: a file or URL that is not there (HTTP 404).
    UndefinedFile,
    /// HV000: a remote database refused the query (its SQLSTATE is in the detail).
    RemoteError,
    Io,
    Internal,
}

/// An error with its kind, a message for the user, and optional detail.
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// Where it happened (PostgreSQL's CONTEXT line), e.g. the COPY line.
    pub context: Option<String>,
    /// The table, column and constraint a violation concerns (PostgreSQL's
    /// error fields `t`, `c`, `n`, which drivers show as diagnostics).
    pub object: Option<Box<ErrorObject>>,
}

/// What a constraint violation names, besides its message.
#[derive(Debug, Clone, Default)]
pub struct ErrorObject {
    pub table: Option<String>,
    pub column: Option<String>,
    pub constraint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The future of a trait method that returns a [`Result`]: `Send`, boxed,
/// borrowing for `'a`.
///
/// Traits whose implementations hold DataFusion's plans and expressions
/// across an await use this instead of `#[async_trait]`: the compiler
/// proves such a future `Send` by walking those types, and under the
/// per-implementation bounds `#[async_trait]` writes (`Self: 'async_trait`
/// and one lifetime per reference) it cannot reuse one proof for the
/// next implementation. With one lifetime and no bounds the proof is
/// made once for the crate (that walk was a third of the crate's build).
pub type ResultFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'a>>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: without_backtrace(message.into()),
            detail: None,
            hint: None,
            context: None,
            object: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = Some(context.into());
        self
    }

    /// The violated constraint.
    pub fn with_constraint(mut self, constraint: &str) -> Self {
        let o = self.object.get_or_insert_with(Default::default);
        o.constraint = Some(constraint.to_string());
        self
    }

    /// The table a violation concerns, and the column when it is one.
    pub fn with_table(mut self, table: &str, column: Option<&str>) -> Self {
        let o = self.object.get_or_insert_with(Default::default);
        o.table = Some(table.to_string());
        o.column = column.map(str::to_string);
        self
    }

    /// The table, column and constraint a violation's message names (in
    /// the fixed wording of Sluice's checks), for an error that came back
    /// as text from a write: delta-rs keeps only the message.
    fn with_object_of_message(mut self) -> Self {
        let m = &self.message;
        let constraint = ["constraint \"", "expectation \""]
            .iter()
            .find_map(|marker| quoted_after(m, marker));
        let table = quoted_after(m, "foreign key constraint \"")
            .and_then(|_| quoted_after(m, "\" on table \""))
            .or_else(|| quoted_after(m, "relation \""))
            .or_else(|| quoted_after(m, "on table \""));
        let column = quoted_after(m, "null value in column \"");
        if constraint.is_some() || table.is_some() {
            self.object = Some(Box::new(ErrorObject {
                table,
                column,
                constraint,
            }));
        }
        self
    }

    pub fn not_supported(what: impl fmt::Display) -> Self {
        Error::new(
            ErrorKind::FeatureNotSupported,
            format!("{what} is not supported"),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    pub fn syntax(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Syntax, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        // As psql prints it; also how the detail survives a trip through
        // delta-rs, which hands errors back as text.
        if let Some(d) = &self.detail {
            write!(f, "\nDETAIL:  {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Ours inside DataFusion's error, so its kind survives planning (see
/// [`find_ours`]).
impl From<Error> for datafusion::error::DataFusionError {
    fn from(e: Error) -> Self {
        datafusion::error::DataFusionError::External(Box::new(e))
    }
}

impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        if let Some(ours) = find_ours(&e) {
            return ours;
        }
        classify_datafusion(e)
    }
}

/// An [`Error`] raised inside a plan (by one of our operators) comes back
/// wrapped in DataFusion/Arrow errors; find it so its kind survives.
fn find_ours(e: &(dyn std::error::Error + 'static)) -> Option<Error> {
    let mut cur = Some(e);
    while let Some(x) = cur {
        if let Some(ours) = x.downcast_ref::<Error>() {
            return Some(ours.clone());
        }
        if let Some(datafusion::error::DataFusionError::External(inner)) =
            x.downcast_ref::<datafusion::error::DataFusionError>()
            && let Some(ours) = inner.downcast_ref::<Error>()
        {
            return Some(ours.clone());
        }
        cur = x.source();
    }
    None
}

impl From<datafusion::sql::sqlparser::parser::ParserError> for Error {
    fn from(e: datafusion::sql::sqlparser::parser::ParserError) -> Self {
        let msg = e.to_string();
        let msg = msg
            .strip_prefix("sql parser error: ")
            .unwrap_or(&msg)
            .to_string();
        // `Expected: X, found: Y at Line: 1, Column: 1` reads in PostgreSQL
        // as `syntax error at or near "Y"`, with the expectation as detail.
        if let Some((expected, found)) = msg.split_once(", found: ") {
            let near = found.split(" at Line:").next().unwrap_or(found);
            let err = if near == "EOF" {
                Error::syntax("syntax error at end of input")
            } else {
                Error::syntax(format!("syntax error at or near \"{near}\""))
            };
            return err.with_detail(expected.to_string());
        }
        Error::syntax(format!("syntax error: {msg}"))
    }
}

impl From<deltalake::DeltaTableError> for Error {
    fn from(e: deltalake::DeltaTableError) -> Self {
        use deltalake::DeltaTableError as D;
        use deltalake::kernel::transaction::TransactionError;
        if let Some(ours) = find_ours(&e) {
            return ours;
        }
        match e {
            D::Arrow { source } => classify_arrow(&source),
            // Another writer committed first: a conflicting commit, a taken
            // version, or no free version within the retries.
            D::Transaction {
                source:
                    source @ (TransactionError::CommitConflict(_)
                    | TransactionError::MaxCommitAttempts(_)),
            } => Error::new(
                ErrorKind::SerializationFailure,
                format!("could not serialize access due to concurrent update: {source}"),
            ),
            D::VersionAlreadyExists(v) => Error::new(
                ErrorKind::SerializationFailure,
                format!(
                    "could not serialize access due to concurrent update: version {v} was taken"
                ),
            ),
            D::Transaction { source } => Error::new(ErrorKind::Io, source.to_string()),
            D::ObjectStore { source } => Error::new(ErrorKind::Io, source.to_string()),
            other => {
                let msg = other.to_string();
                if let Some(e) = classify_message(&msg) {
                    e
                } else {
                    Error::new(ErrorKind::Internal, msg)
                }
            }
        }
    }
}

impl From<datafusion::arrow::error::ArrowError> for Error {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        classify_arrow(&e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, e.to_string())
    }
}

fn classify_arrow(e: &datafusion::arrow::error::ArrowError) -> Error {
    use datafusion::arrow::error::ArrowError as A;
    match e {
        A::DivideByZero => Error::new(ErrorKind::DivisionByZero, "division by zero"),
        A::CastError(m) if m.starts_with("Can't cast value") => {
            let ty = m.rsplit("to type ").next().unwrap_or("");
            Error::new(
                ErrorKind::NumericOutOfRange,
                format!("{} out of range", arrow_name_to_pg(ty)),
            )
        }
        // A decimal rescaled past its precision: `Cannot cast to
        // Decimal128(38, 16). Overflowing on 9999...`.
        A::CastError(m) if m.contains("Cannot cast to Decimal") && m.contains("Overflowing on") => {
            Error::new(ErrorKind::NumericOutOfRange, "numeric field overflow")
        }
        A::CastError(m) | A::ParseError(m) => {
            value_out_of_range(m).unwrap_or_else(|| cast_error(m))
        }
        A::ArithmeticOverflow(m) => {
            refusal(m).unwrap_or_else(|| Error::new(ErrorKind::NumericOutOfRange, m.clone()))
        }
        A::ComputeError(m) if m.contains("Overflow") || m.contains("overflow") => {
            value_out_of_range(m)
                .unwrap_or_else(|| Error::new(ErrorKind::NumericOutOfRange, m.clone()))
        }
        A::ExternalError(inner) => {
            if let Some(df) = inner.downcast_ref::<datafusion::error::DataFusionError>() {
                classify_message(&df.to_string())
                    .unwrap_or_else(|| Error::new(ErrorKind::Internal, df.to_string()))
            } else {
                classify_message(&inner.to_string())
                    .unwrap_or_else(|| Error::new(ErrorKind::Internal, inner.to_string()))
            }
        }
        other => classify_message(&other.to_string())
            .unwrap_or_else(|| Error::new(ErrorKind::Internal, other.to_string())),
    }
}

/// A value that does not parse as its target type: 22007 for dates and
/// times, 22P02 otherwise, as PostgreSQL reports them.
fn cast_error(m: &str) -> Error {
    let mut text = clean_cast(m);
    // Arrow's interval parser capitalises PostgreSQL's words.
    if let Some(rest) = text.strip_prefix("Invalid input syntax for type") {
        text = format!("invalid input syntax for type{rest}");
    }
    let kind = if text.contains("type date")
        || text.contains("type timestamp")
        || text.contains("type interval")
    {
        ErrorKind::InvalidDatetime
    } else {
        ErrorKind::InvalidText
    };
    // A date written as one whose parts do not exist (`2026-02-30`,
    // `2026-13-01`, `25:00`): PostgreSQL's 22008.
    if kind == ErrorKind::InvalidDatetime
        && !text.contains("type interval")
        && let Some((_, value)) = text.split_once(": \"")
        && let Some(value) = value.strip_suffix('"')
        && well_formed_datetime(value)
    {
        return Error::new(
            ErrorKind::DatetimeOverflow,
            format!("date/time field value out of range: \"{value}\""),
        );
    }
    Error::new(kind, text)
}

/// Whether `v` has the shape of an ISO date, maybe with a time of day:
/// `YYYY-MM-DD[ HH:MM[:SS[.f]]]`, all digits where digits go.
fn well_formed_datetime(v: &str) -> bool {
    let (date, time) = v.split_once([' ', 'T']).unwrap_or((v, ""));
    let parts: Vec<&str> = date.split('-').collect();
    let digits = |p: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit())
    };
    let date_ok = matches!(parts.as_slice(), [y, m, d] if digits(y, 4..=4) && digits(m, 1..=2) && digits(d, 1..=2));
    let time_ok = time.is_empty()
        || time.split(':').enumerate().all(|(i, p)| {
            let p = if i == 2 {
                p.split('.').next().unwrap_or(p)
            } else {
                p
            };
            i < 3 && digits(p, 1..=2)
        });
    date_ok && time_ok
}

/// A message without the stack trace a dependency's error carries when
/// the process runs with `RUST_BACKTRACE` set (the Delta kernel's do):
/// clients see the error, never the server's frames.
fn without_backtrace(message: String) -> String {
    let frame = |line: &str| {
        let t = line.trim_start();
        let digits = t.chars().take_while(|c| c.is_ascii_digit()).count();
        digits > 0 && t[digits..].starts_with(": ")
    };
    let mut lines = message.lines();
    let mut kept: Vec<&str> = Vec::new();
    for line in lines.by_ref() {
        if frame(line) {
            break;
        }
        kept.push(line);
    }
    if kept.len() == message.lines().count() {
        return message;
    }
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    kept.join("\n")
}

fn clean_cast(m: &str) -> String {
    // Arrow says `Cannot cast string 'abc' to value of Int32 type`; PostgreSQL
    // says `invalid input syntax for type integer: "abc"`.
    if let Some(rest) = m.strip_prefix("Cannot cast string '")
        && let Some((value, ty)) = rest.split_once("' to value of ")
    {
        let ty = ty.trim_end_matches(" type");
        let pg = arrow_name_to_pg(ty);
        return format!("invalid input syntax for type {pg}: \"{value}\"");
    }
    // Arrow's timestamp parser: `Error parsing timestamp from 'x': reason`.
    if let Some(rest) = m.strip_prefix("Error parsing timestamp from '")
        && let Some((value, _)) = rest.split_once("': ")
    {
        return format!("invalid input syntax for type timestamp: \"{value}\"");
    }
    m.to_string()
}

/// What the planner cannot run yet, named as the user wrote it: a
/// subquery it could not turn into a join reaches execution as a logical
/// expression, and DataFusion's text is a dump of its plan.
/// A correlated subquery condition used as a value in a form the planner
/// cannot run with PostgreSQL's three values.
pub fn subquery_value_not_supported() -> Error {
    Error::not_supported("a correlated IN, EXISTS or ANY (subquery) used as a value in this form")
        .with_hint(
            "As a value (a select list, a CASE, under NOT or OR) the subquery must be a plain \
             SELECT ... FROM tables WHERE ..., the columns on the left of IN must not be \
             columns of those tables too, and an aggregate on the left needs an uncorrelated \
             subquery; as a condition of WHERE it is planned as a join.",
        )
}

/// A correlated scalar subquery the planner cannot run where it stands.
fn correlated_scalar_not_supported() -> Error {
    Error::not_supported("a correlated scalar subquery in this form").with_hint(
        "Outer columns are supported in the WHERE of a subquery over tables; write one \
         that orders or limits rows of a join by them as a join or a LATERAL subquery.",
    )
}

fn not_implemented(m: String) -> Error {
    let left = |kind: &str| {
        m.starts_with(&format!(
            "Physical plan does not support logical expression {kind}("
        ))
    };
    if left("InSubquery") || left("Exists") {
        return subquery_value_not_supported();
    }
    if left("ScalarSubquery") {
        return correlated_scalar_not_supported();
    }
    if left("OuterReferenceColumn") {
        return Error::not_supported(
            "a LATERAL or correlated subquery that reads an outer column below its ORDER BY, \
             LIMIT, DISTINCT or aggregate",
        )
        .with_hint(
            "For the first rows per outer row, number the rows with row_number() OVER \
             (PARTITION BY key ORDER BY ...) in a subquery and join on the key.",
        );
    }
    // A numeric literal beyond what a 256-bit decimal can hold (`1e300`).
    if m.contains("exceeds the minimum supported scale")
        || m.contains("exceeds the maximum supported scale")
    {
        return Error::new(
            ErrorKind::NumericOutOfRange,
            "value overflows numeric format",
        )
        .with_detail("A numeric of Sluice's holds at most 38 digits.");
    }
    Error::new(ErrorKind::FeatureNotSupported, m)
}

/// A copy of a shared error (one many partitions of a plan report) that
/// keeps what classifying it reads: the variant of an unsupported feature
/// or exhausted memory, Sluice's own error, the text of the rest.
fn rebuilt(e: &datafusion::error::DataFusionError) -> datafusion::error::DataFusionError {
    use datafusion::error::DataFusionError as D;
    match e {
        D::NotImplemented(m) => D::NotImplemented(m.clone()),
        D::ResourcesExhausted(m) => D::ResourcesExhausted(m.clone()),
        D::Shared(inner) => rebuilt(inner),
        D::Context(c, inner) => D::Context(c.clone(), Box::new(rebuilt(inner))),
        D::Diagnostic(_, inner) => rebuilt(inner),
        D::External(inner) => match inner.downcast_ref::<Error>() {
            Some(err) => D::External(Box::new(err.clone())),
            None => D::Execution(inner.to_string()),
        },
        other => D::Execution(other.to_string()),
    }
}

fn classify_datafusion(e: datafusion::error::DataFusionError) -> Error {
    use datafusion::error::DataFusionError as D;
    match e {
        D::ArrowError(a, _) => classify_arrow(&a),
        D::SQL(p, _) => Error::from(*p),
        D::NotImplemented(m) => not_implemented(m),
        D::ResourcesExhausted(m) => {
            Error::new(ErrorKind::OutOfMemory, format!("out of memory: {m}"))
        }
        D::External(inner) => {
            if let Some(err) = inner.downcast_ref::<Error>() {
                return err.clone();
            }
            if let Some(a) = inner.downcast_ref::<datafusion::arrow::error::ArrowError>() {
                return classify_arrow(a);
            }
            let msg = inner.to_string();
            classify_message(&msg).unwrap_or_else(|| Error::new(ErrorKind::Internal, msg))
        }
        // The names were bound before the optimizer ran: one it cannot
        // find while pulling a subquery up is a shape its decorrelation
        // does not handle (an uncorrelated scalar subquery over a derived
        // table whose WHERE has a correlated one), not a missing column.
        D::Context(context, inner)
            if matches!(*inner, D::SchemaError(..))
                && [
                    "'scalar_subquery_to_join'",
                    "'decorrelate_predicate_subquery'",
                ]
                .iter()
                .any(|rule| context.contains(rule)) =>
        {
            Error::not_supported("a subquery nested in this form").with_hint(
                "The planner could not turn a nested correlated subquery into a join; write \
                 the inner subquery as a join or a LATERAL subquery.",
            )
        }
        // A LATERAL subquery it cannot turn into a join (an aggregate
        // whose condition compares an outer column other than by
        // equality), likewise.
        D::Context(context, inner)
            if matches!(*inner, D::SchemaError(..))
                && context.contains("'decorrelate_lateral_join'") =>
        {
            Error::not_supported(
                "a LATERAL subquery with an aggregate whose WHERE compares an outer column \
                 other than by equality",
            )
            .with_hint(
                "Write each aggregate as a subquery in the select list: \
                 (SELECT count(*) FROM ... WHERE ...) AS n.",
            )
        }
        D::Context(_, inner) => classify_datafusion(*inner),
        D::Shared(inner) => {
            classify_datafusion(std::sync::Arc::try_unwrap(inner).unwrap_or_else(|a| rebuilt(&a)))
        }
        D::Diagnostic(_, inner) => classify_datafusion(*inner),
        D::Collection(mut errs) if !errs.is_empty() => classify_datafusion(errs.remove(0)),
        other => {
            let msg = other.to_string();
            classify_message(&msg)
                .unwrap_or_else(|| Error::new(ErrorKind::Internal, strip_df(&msg)))
        }
    }
}

fn strip_df(msg: &str) -> String {
    let mut m = msg;
    for p in [
        "Error during planning: ",
        "Execution error: ",
        "Schema error: ",
        "Optimizer rule ",
        "Internal error: ",
        "Arrow error: ",
        "External error: ",
    ] {
        if let Some(rest) = m.strip_prefix(p) {
            m = rest;
        }
    }
    m.to_string()
}

/// Recognise DataFusion/Arrow messages that have a precise PostgreSQL
/// counterpart. Only called for errors that arrive as text.
pub(crate) fn classify_message(raw: &str) -> Option<Error> {
    let msg = strip_df(raw);
    // One of ours that a reader printed with `{:?}` into its own message
    // (a row filter of a Parquet scan: "Error evaluating filter predicate:
    // External(Error { kind: NumericOutOfRange, message: \"bigint out of
    // range\", .. })"): its message says what it was.
    if let Some(inner) = debug_printed_message(&msg)
        && let Some(e) = classify_message(&inner)
    {
        return Some(e);
    }
    if let Some(e) = no_matching_function(&msg) {
        return Some(e);
    }
    if let Some(e) = refusal(&msg) {
        return Some(e);
    }
    let lower = msg.to_lowercase();
    if msg.contains("MERGE matched a target row with multiple source rows") {
        return Some(
            Error::new(
                ErrorKind::CardinalityViolation,
                "MERGE command cannot affect row a second time",
            )
            .with_hint("Ensure that not more than one source row matches any one target row."),
        );
    }
    // A pattern the regular expression engine refuses (`~`, SIMILAR TO):
    // PostgreSQL's 2201B, with the engine's reason.
    if msg.contains("Regular expression did not compile") || msg.contains("regex parse error") {
        let reason = msg
            .lines()
            .find_map(|l| l.trim().strip_prefix("error: "))
            .unwrap_or("the pattern does not compile");
        return Some(Error::new(
            ErrorKind::InvalidRegularExpression,
            format!("invalid regular expression: {reason}"),
        ));
    }
    if msg.contains("Invalid escape character in SIMILAR TO expression") {
        return Some(Error::new(
            ErrorKind::InvalidEscapeSequence,
            "invalid escape string",
        ));
    }
    // DataFusion plans NOT IN (subquery) as a null-aware anti join, which it
    // can build on one key only: a correlated NOT IN is not supported yet.
    if msg.contains("null_aware anti join only supports single column join key") {
        return Some(Error::not_supported(
            "NOT IN (subquery) naming a column of the outer query unqualified (qualify it, or use NOT EXISTS)",
        ));
    }
    // A correlated scalar subquery (or a subquery condition made into one,
    // as a value) that DataFusion's decorrelation carried into a join
    // condition, which it cannot run.
    if msg.contains("Correlated scalar subquery can only be used in") {
        return Some(correlated_scalar_not_supported());
    }
    // `a.x` where `a` is a column (a table function's, named after its
    // alias) and not a table: DataFusion reads `.x` as a field of it.
    if msg.contains("Cannot access field at argument") && msg.contains("is not Struct") {
        return Some(Error::new(
            ErrorKind::UndefinedColumn,
            "column does not exist: a qualified name reads a field of a column that has none",
        ));
    }
    // A column alias list of the wrong length (also CREATE TABLE t (a, b)
    // AS ...): PostgreSQL's syntax error class.
    if msg.contains("names given as column alias") {
        return Some(Error::syntax(msg.lines().next().unwrap_or("").to_string()));
    }
    // Our own write-path checks, when delta-rs hands them back as text.
    if let Some(pos) = msg.find("value too long for type") {
        let text = msg[pos..].lines().next().unwrap_or("").to_string();
        return Some(Error::new(ErrorKind::StringTooLong, text));
    }
    if let Some(pos) = msg.find("invalid input syntax for type") {
        let mut lines = msg[pos..].lines();
        let text = lines.next().unwrap_or("").to_string();
        let mut e = Error::new(ErrorKind::InvalidText, text);
        if let Some(d) = lines.find_map(|l| l.strip_prefix("DETAIL:  ")) {
            e = e.with_detail(d);
        }
        return Some(e);
    }
    for ty in ["smallint", "integer", "bigint"] {
        let text = format!("{ty} out of range");
        if msg.ends_with(&text) || msg.contains(&format!("error: {text}")) {
            return Some(Error::new(ErrorKind::NumericOutOfRange, text));
        }
    }
    if let Some(pos) = msg.find("date/time field value out of range") {
        let text = msg[pos..].lines().next().unwrap_or("").to_string();
        return Some(Error::new(ErrorKind::DatetimeOverflow, text));
    }
    if let Some(pos) = msg.find("invalid value \"")
        && msg[pos..].contains("\" for \"")
    {
        let text = msg[pos..].lines().next().unwrap_or("").to_string();
        return Some(Error::new(ErrorKind::InvalidDatetime, text));
    }
    if msg.ends_with("interval out of range") {
        return Some(Error::new(
            ErrorKind::DatetimeOverflow,
            "interval out of range",
        ));
    }
    // Arrow's timestamp arithmetic (`ts + interval * n`).
    if msg.ends_with("Timestamp out of range") {
        return Some(Error::new(
            ErrorKind::DatetimeOverflow,
            "timestamp out of range",
        ));
    }
    if let Some(pos) = msg.find("null value in column") {
        let text = msg[pos..].lines().next().unwrap_or("").to_string();
        return Some(Error::new(ErrorKind::NotNullViolation, text).with_object_of_message());
    }
    let violations = [
        ("new row for relation", ErrorKind::CheckViolation),
        ("duplicate key value violates", ErrorKind::UniqueViolation),
        ("insert or update on table", ErrorKind::ForeignKeyViolation),
        ("update or delete on table", ErrorKind::ForeignKeyViolation),
    ];
    if let Some((pos, kind)) = violations
        .iter()
        .find_map(|(text, kind)| msg.find(text).map(|p| (p, *kind)))
    {
        let mut lines = msg[pos..].lines();
        let text = lines.next().unwrap_or("").to_string();
        let mut e = Error::new(kind, text).with_object_of_message();
        if let Some(d) = lines.find_map(|l| l.strip_prefix("DETAIL:  ")) {
            e = e.with_detail(d);
        }
        return Some(e);
    }
    // Arrow: `12345.6 is too large to store in a Decimal128 of precision 5.
    // Max is 9999.9`.
    if let Some(pos) = msg
        .find(" to store in a Decimal")
        .filter(|_| msg.contains(" is too large") || msg.contains(" is too small"))
    {
        let mut e = Error::new(ErrorKind::NumericOutOfRange, "numeric field overflow");
        let rest = &msg[pos..];
        let precision = rest
            .split("of precision ")
            .nth(1)
            .and_then(|r| r.split('.').next())
            .and_then(|p| p.trim().parse::<u32>().ok());
        let scale = rest.rsplit(" is ").next().map(|m| {
            m.trim()
                .split_once('.')
                .map_or(0, |(_, f)| f.trim().len() as u32)
        });
        if let (Some(p), Some(s)) = (precision, scale)
            && s <= p
        {
            e = e.with_detail(format!(
                "A field with precision {p}, scale {s} must round to an absolute value less than 10^{}.",
                p - s
            ));
        }
        return Some(e);
    }
    if let Some(e) = value_out_of_range(&msg) {
        return Some(e);
    }
    if let Some(pos) = msg.find("Can't cast value") {
        let ty = msg[pos..].rsplit("to type ").next().unwrap_or("").trim();
        return Some(Error::new(
            ErrorKind::NumericOutOfRange,
            format!("{} out of range", arrow_name_to_pg(ty)),
        ));
    }
    if lower.contains("cannot coerce arithmetic expression") {
        let expr = msg
            .rsplit("expression ")
            .next()
            .unwrap_or(&msg)
            .trim_end_matches(" to valid types");
        // The operand types by PostgreSQL's names: `timestamp with time
        // zone + integer`, not `Timestamp(ns, "UTC") + Int64`.
        let named = [" + ", " - ", " * ", " / ", " % "]
            .iter()
            .find_map(|op| expr.split_once(op).map(|(l, r)| (l, *op, r)))
            .map(|(l, op, r)| format!("{}{op}{}", arrow_name_to_pg(l), arrow_name_to_pg(r)))
            .unwrap_or_else(|| expr.to_string());
        return Some(
            Error::new(
                ErrorKind::UndefinedFunction,
                format!("operator does not exist: {named}"),
            )
            .with_hint(
                "No operator matches the given name and argument types. You might need to add \
                 explicit type casts.",
            ),
        );
    }
    // The float and numeric power functions' own refusals, as PostgreSQL
    // words them (DataFusion's text came wrapped in "Compute error: ").
    for text in [
        "cannot take square root of a negative number",
        "zero raised to a negative power is undefined",
        "a negative number raised to a non-integer power yields a complex result",
    ] {
        if lower.contains(text) {
            return Some(Error::new(ErrorKind::InvalidPowerArgument, text));
        }
    }
    let kind = if lower.contains("divide by zero") || lower.contains("division by zero") {
        return Some(Error::new(ErrorKind::DivisionByZero, "division by zero"));
    } else if let Some(rest) = msg.strip_prefix("Cannot cast string '") {
        return Some(cast_error(&format!("Cannot cast string '{rest}")));
    } else if let Some(at) = ["Error parsing timestamp from '", "Cannot cast string '"]
        .iter()
        .find_map(|p| msg.find(p))
    {
        // A cast the optimizer folded, inside its "rule failed" wrapping.
        return Some(cast_error(&msg[at..]));
    } else if lower.contains("table '") && lower.contains("not found") {
        ErrorKind::UndefinedTable
    } else if lower.starts_with("no field named") || lower.contains("schema error: no field named")
    {
        ErrorKind::UndefinedColumn
    } else if lower.contains("ambiguous reference") {
        ErrorKind::AmbiguousColumn
    } else if lower.contains("invalid function") || lower.contains("unknown function") {
        ErrorKind::UndefinedFunction
    } else if lower.contains("cannot be cast")
        || lower.contains("cannot infer common")
        || lower.contains("does not support")
        || lower.contains("no function matches")
        || lower.contains("failed to coerce")
        || lower.contains("mismatch")
    {
        ErrorKind::DatatypeMismatch
    } else if lower.contains("must appear in the group by") || lower.contains("group by") {
        ErrorKind::Grouping
    } else if lower.contains("overflow") {
        ErrorKind::NumericOutOfRange
    } else if lower.contains("cast error") || lower.contains("parser error") {
        ErrorKind::InvalidText
    } else if lower.contains("with no tables specified is not valid") {
        // PostgreSQL: 42601, same words.
        ErrorKind::Syntax
    } else {
        return None;
    };
    Some(Error::new(kind, pg_style(&msg, kind)))
}

/// A refusal DataFusion words its own way (and answered as an internal
/// error), as PostgreSQL words and classes it.
fn refusal(msg: &str) -> Option<Error> {
    let after = |marker: &str| msg.find(marker).map(|p| &msg[p + marker.len()..]);
    let first_word = |text: &str| {
        text.split(|c: char| c.is_whitespace() || c == ',' || c == '\'')
            .find(|w| !w.is_empty())
            .unwrap_or("")
            .to_string()
    };
    if let Some(rest) = after("Order by column out of bounds, specified: ") {
        return Some(Error::new(
            ErrorKind::InvalidColumnReference,
            format!(
                "ORDER BY position {} is not in select list",
                first_word(rest)
            ),
        ));
    }
    if msg.contains("LIMIT must be >= 0") {
        return Some(Error::new(
            ErrorKind::InvalidLimit,
            "LIMIT must not be negative",
        ));
    }
    if msg.contains("OFFSET must be >=0") || msg.contains("OFFSET must be >= 0") {
        return Some(Error::new(
            ErrorKind::InvalidOffset,
            "OFFSET must not be negative",
        ));
    }
    if msg.contains("negative count not allowed") {
        return Some(Error::new(
            ErrorKind::SubstringError,
            "negative substring length not allowed",
        ));
    }
    if msg.contains("step can't be 0 for function generate_series") {
        return Some(Error::new(
            ErrorKind::InvalidParameter,
            "step size cannot equal zero",
        ));
    }
    if let Some(rest) = after("invalid Unicode scalar value: ") {
        let code = first_word(rest);
        return Some(Error::new(
            ErrorKind::InvalidParameter,
            if code.starts_with('-') {
                "character number must be positive".to_string()
            } else {
                format!("requested character too large for encoding: {code}")
            },
        ));
    }
    if let Some(rest) = after("Unable to parse date from ") {
        // PostgreSQL writes the month and day with two digits.
        let parts: Vec<String> = rest
            .split(',')
            .take(3)
            .enumerate()
            .map(|(i, p)| match (i, p.trim().parse::<i64>()) {
                (1 | 2, Ok(n)) => format!("{n:02}"),
                _ => p.trim().to_string(),
            })
            .collect();
        return Some(Error::new(
            ErrorKind::DatetimeOverflow,
            format!("date field value out of range: {}", parts.join("-")),
        ));
    }
    if msg.contains("For SELECT DISTINCT, ORDER BY expressions") {
        return Some(Error::new(
            ErrorKind::InvalidColumnReference,
            "for SELECT DISTINCT, ORDER BY expressions must appear in select list",
        ));
    }
    if msg.contains("Too many columns! The subquery should only return one column") {
        return Some(Error::syntax("subquery has too many columns"));
    }
    if msg.contains("Invalid escape character in LIKE expression") {
        return Some(
            Error::new(ErrorKind::InvalidEscapeSequence, "invalid escape string")
                .with_hint("Escape string must be empty or one character."),
        );
    }
    if let Some(rest) = after("Ambiguous reference to unqualified field ") {
        return Some(Error::new(
            ErrorKind::AmbiguousColumn,
            format!("column reference \"{}\" is ambiguous", first_word(rest)),
        ));
    }
    // An integer quotient or product beyond its type (`-2147483648 / -1`):
    // the type is the one whose least value the dividend is.
    if let Some(rest) = after("Overflow happened on: ") {
        let ty = match first_word(rest).parse::<i64>() {
            Ok(v) if v == i64::from(i16::MIN) => "smallint",
            Ok(v) if v == i64::from(i32::MIN) => "integer",
            _ => "bigint",
        };
        if rest.contains(" / ") {
            return Some(Error::new(
                ErrorKind::NumericOutOfRange,
                format!("{ty} out of range"),
            ));
        }
    }
    None
}

/// DataFusion's "No function matches the given name and argument types
/// 'f(Int64, Utf8)'" (after its candidate list, and in a signature error
/// that blames itself): PostgreSQL's `42883 function f(bigint, text) does
/// not exist`.
fn no_matching_function(msg: &str) -> Option<Error> {
    const MARK: &str = "No function matches the given name and argument types '";
    let hint = "No function matches the given name and argument types. You might need to add \
                explicit type casts.";
    // A name no function has (DataFusion suggests one that shares letters
    // with it, seldom the one meant).
    if let Some(rest) = msg.split("Invalid function '").nth(1)
        && let Some(name) = rest.split('\'').next()
    {
        return Some(
            Error::new(
                ErrorKind::UndefinedFunction,
                format!("function {name} does not exist"),
            )
            .with_hint(hint),
        );
    }
    let at = msg.find(MARK)? + MARK.len();
    let call = &msg[at..at + msg[at..].find("'.").or_else(|| msg[at..].find('\''))?];
    let open = call.find('(')?;
    let (name, args) = (&call[..open], call[open + 1..].strip_suffix(')')?);
    // The argument types, split at the commas between them.
    let mut raw = vec![];
    let (mut depth, mut start) = (0, 0);
    for (i, c) in args.char_indices() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' | '>' | ']' => depth -= 1,
            ',' if depth == 0 => {
                raw.push(args[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if !args.trim().is_empty() {
        raw.push(args[start..].trim());
    }
    let types: Vec<String> = raw
        .into_iter()
        .map(|arrow| match arrow_name_to_pg(arrow).as_str() {
            // A timestamp is named in full in a signature.
            "timestamp" if arrow.contains('"') => "timestamp with time zone".to_string(),
            "timestamp" => "timestamp without time zone".to_string(),
            pg => pg.to_string(),
        })
        .collect();
    Some(
        Error::new(
            ErrorKind::UndefinedFunction,
            format!("function {name}({}) does not exist", types.join(", ")),
        )
        .with_hint(hint),
    )
}

/// The message of a Sluice [`Error`] printed with `{:?}` inside `text`.
fn debug_printed_message(text: &str) -> Option<String> {
    let at = text.find("Error { kind: ")?;
    let start = text[at..].find("message: \"")? + at + "message: \"".len();
    let mut out = String::new();
    let mut chars = text[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

/// Reword the most common DataFusion messages the way PostgreSQL says them.
fn pg_style(msg: &str, kind: ErrorKind) -> String {
    match kind {
        ErrorKind::UndefinedTable => {
            if let Some(start) = msg.find("table '") {
                let rest = &msg[start + 7..];
                if let Some(end) = rest.find('\'') {
                    let name = &rest[..end];
                    let name = name.rsplit('.').next().unwrap_or(name);
                    return format!("relation \"{name}\" does not exist");
                }
            }
            msg.to_string()
        }
        ErrorKind::UndefinedColumn => {
            if let Some(pos) = msg.find("No field named ") {
                // `No field named t.x.` or `No field named x. Valid fields are ...`
                let rest = &msg[pos + "No field named ".len()..];
                let token = rest.split_whitespace().next().unwrap_or(rest);
                let token = token.trim_end_matches(['.', ',']).replace('"', "");
                // A name qualified by its relation, as the query wrote it,
                // is named so, without quotes (`column u.nope does not
                // exist`).
                if let [relation, col] = token.split('.').collect::<Vec<_>>()[..] {
                    return format!("column {relation}.{col} does not exist");
                }
                let col = token.rsplit('.').next().unwrap_or(&token);
                return format!("column \"{col}\" does not exist");
            }
            msg.to_string()
        }
        ErrorKind::Grouping => {
            // DataFusion: `... column "public.t.a" must appear in the GROUP
            // BY clause or must be part of an aggregate function, currently
            // only "count(Int64(1))" appears ...`; PostgreSQL names the
            // column by its relation only.
            if let Some(start) = msg.find("column \"") {
                let rest = &msg[start + "column \"".len()..];
                if let Some(end) = rest.find('"') {
                    let parts: Vec<&str> = rest[..end].split('.').collect();
                    let name = parts[parts.len().saturating_sub(2)..].join(".");
                    return format!(
                        "column \"{name}\" must appear in the GROUP BY clause or be used in an aggregate function"
                    );
                }
            }
            msg.to_string()
        }
        _ => msg.to_string(),
    }
}

/// Arrow's cast of a number that does not fit its target type (a numeric
/// to an integer: "value of 3000000000 is out of range Int32"), as
/// PostgreSQL says it: 22003 "integer out of range".
/// Also an Arrow kernel's overflow of an integer array ("Int32Array
/// overflow on abs(-2147483648)").
fn value_out_of_range(msg: &str) -> Option<Error> {
    let ty = match msg.find("value of ") {
        Some(at) => {
            let (_, ty) = msg[at..].split_once(" is out of range ")?;
            ty.split_whitespace().next()?
        }
        None => {
            let (before, _) = msg.split_once("Array overflow")?;
            before.rsplit([' ', ':']).next()?
        }
    };
    Some(Error::new(
        ErrorKind::NumericOutOfRange,
        format!("{} out of range", arrow_name_to_pg(ty)),
    ))
}

/// Map an Arrow type name as DataFusion prints it (`Int32`,
/// `Timestamp(µs, "UTC")`) to PostgreSQL's.
pub fn arrow_name_to_pg(arrow: &str) -> String {
    let base = arrow.split('(').next().unwrap_or(arrow).trim();
    match base {
        "Int8" | "Int16" | "UInt8" => "smallint",
        "Int32" | "UInt16" => "integer",
        "Int64" | "UInt32" | "UInt64" => "bigint",
        "Float16" | "Float32" => "real",
        "Float64" => "double precision",
        "Utf8" | "Utf8View" | "LargeUtf8" => "text",
        "Boolean" => "boolean",
        "Date32" | "Date64" => "date",
        "Time32" | "Time64" => "time without time zone",
        "Interval" | "Duration" => "interval",
        "Binary" | "BinaryView" | "LargeBinary" => "bytea",
        "Null" => "unknown",
        "List" | "LargeList" | "FixedSizeList" => "anyarray",
        "Struct" => "record",
        n if n.starts_with("Decimal") => "numeric",
        n if n.starts_with("Timestamp") && arrow.contains('"') => "timestamp with time zone",
        n if n.starts_with("Timestamp") => "timestamp without time zone",
        other => return other.to_string(),
    }
    .to_string()
}

/// The double-quoted name that follows `marker` (which ends with the
/// opening quote) in `text`.
fn quoted_after(text: &str, marker: &str) -> Option<String> {
    let start = text.find(marker)? + marker.len();
    let len = text[start..].find('"')?;
    Some(text[start..start + len].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_matching_function_is_undefined_function() {
        let e = classify_message(
            "Error during planning: Function 'generate_series' failed to match any signature\n\
             This issue was likely caused by a bug in DataFusion's code. No function matches the \
             given name and argument types 'generate_series(Timestamp(ns, \"UTC\"), Utf8View, \
             Interval(MonthDayNano))'. You might need to add explicit type casts.\n\tCandidate \
             functions:\n\tgenerate_series(Int64)",
        )
        .unwrap();
        assert_eq!(e.kind, ErrorKind::UndefinedFunction);
        assert_eq!(
            e.message,
            "function generate_series(timestamp with time zone, text, interval) does not exist"
        );
        let e = classify_message(
            "Error during planning: Failed to coerce arguments. No function matches the given \
             name and argument types 'left(Int64, Decimal128(3, 1), Timestamp(µs))'. You might",
        )
        .unwrap();
        assert_eq!(
            e.message,
            "function left(bigint, numeric, timestamp without time zone) does not exist"
        );
        let e = classify_message(
            "Error during planning: Invalid function 'nope'.\nDid you mean 'now'?",
        )
        .unwrap();
        assert_eq!(e.kind, ErrorKind::UndefinedFunction);
        assert_eq!(e.message, "function nope does not exist");
    }

    #[test]
    fn messages_carry_no_stack_trace() {
        let traced = "Kernel error: Predicate references unknown column: a\n   0: \
                      buoyant_kernel::error::Error::with_backtrace\n   1: core::ops::x\n";
        let e = Error::new(ErrorKind::Internal, traced);
        assert_eq!(
            e.message,
            "Kernel error: Predicate references unknown column: a"
        );
        let plain = "line one\nline two: 3";
        assert_eq!(Error::new(ErrorKind::Internal, plain).message, plain);
    }

    #[test]
    fn a_shared_error_keeps_its_kind() {
        // Held by another partition too, so it cannot be unwrapped.
        let shared = std::sync::Arc::new(datafusion::error::DataFusionError::NotImplemented(
            "Aggregate can not be used as a sliding accumulator".into(),
        ));
        let _other_partition = shared.clone();
        let e = classify_datafusion(datafusion::error::DataFusionError::Shared(shared));
        assert_eq!(e.kind, ErrorKind::FeatureNotSupported, "{e:?}");
    }

    #[test]
    fn a_column_outside_group_by_is_named_as_postgresql_names_it() {
        let e = classify_datafusion(datafusion::error::DataFusionError::Plan(
            "Column in SELECT must be in GROUP BY or an aggregate function: While expanding wildcard, column \"public.gt.a\" must appear in the GROUP BY clause or must be part of an aggregate function, currently only \"count(Int64(1))\" appears in the SELECT clause satisfies this requirement".into(),
        ));
        assert_eq!(e.kind, ErrorKind::Grouping, "{e:?}");
        assert_eq!(
            e.message,
            "column \"gt.a\" must appear in the GROUP BY clause or be used in an aggregate function"
        );
    }

    #[test]
    fn a_name_lost_in_decorrelation_is_a_shape_not_supported() {
        use datafusion::common::{Column, SchemaError};
        use datafusion::error::DataFusionError as D;
        let lost = || {
            D::SchemaError(
                Box::new(SchemaError::FieldNotFound {
                    field: Box::new(Column::new(Some("r"), "k")),
                    valid_fields: vec![Column::new(Some("r"), "v")],
                }),
                Box::new(None),
            )
        };
        let e = classify_datafusion(D::Context(
            "Optimizer rule 'scalar_subquery_to_join' failed".into(),
            Box::new(lost()),
        ));
        assert_eq!(e.kind, ErrorKind::FeatureNotSupported, "{e:?}");
        assert!(e.message.contains("subquery nested"), "{e:?}");
        // Outside decorrelation a missing column stays one.
        let e = classify_datafusion(D::Context("planning".into(), Box::new(lost())));
        assert_eq!(e.kind, ErrorKind::UndefinedColumn, "{e:?}");
    }

    #[test]
    fn subqueries_the_planner_cannot_run_are_named_not_dumped() {
        let e = classify_datafusion(datafusion::error::DataFusionError::NotImplemented(
            "Physical plan does not support logical expression InSubquery(InSubquery { expr: Column(..) })".into(),
        ));
        assert_eq!(e.kind, ErrorKind::FeatureNotSupported);
        assert_eq!(
            e.message,
            "a correlated IN, EXISTS or ANY (subquery) used as a value in this form is not supported"
        );
        assert!(e.hint.is_some());
        let e = classify_datafusion(datafusion::error::DataFusionError::NotImplemented(
            "Physical plan does not support logical expression ScalarSubquery(<subquery>)".into(),
        ));
        assert!(
            e.message.starts_with("a correlated scalar subquery"),
            "{}",
            e.message
        );
        let e = classify_datafusion(datafusion::error::DataFusionError::NotImplemented(
            "Unsupported something".into(),
        ));
        assert_eq!(e.message, "Unsupported something");
        let e = classify_datafusion(datafusion::error::DataFusionError::Plan(
            "Correlated scalar subquery can only be used in Projection, Filter, Aggregate plan nodes"
                .into(),
        ));
        assert_eq!(e.kind, ErrorKind::FeatureNotSupported);
    }

    #[test]
    fn input_errors_returned_as_text_keep_their_class_and_detail() {
        let e = classify_message(
            "Generic DeltaTable error: External error: invalid input syntax for type json\nDETAIL:  The input \"{\" is not valid JSON.",
        )
        .unwrap();
        assert_eq!(e.kind, ErrorKind::InvalidText);
        assert_eq!(e.message, "invalid input syntax for type json");
        assert_eq!(
            e.detail.as_deref(),
            Some("The input \"{\" is not valid JSON.")
        );
    }

    #[test]
    fn decimal_rescale_overflow_is_numeric_field_overflow() {
        let e = classify_datafusion(datafusion::error::DataFusionError::ArrowError(
            Box::new(datafusion::arrow::error::ArrowError::CastError(
                "Cannot cast to Decimal128(38, 16). Overflowing on 999999999999999997999999000000000001"
                    .into(),
            )),
            None,
        ));
        assert_eq!(e.kind, ErrorKind::NumericOutOfRange);
        assert_eq!(e.message, "numeric field overflow");
    }

    #[test]
    fn decimal_precision_overflow_is_numeric_field_overflow() {
        let e = classify_message(
            "Invalid argument error: 12345.6 is too large to store in a Decimal128 of precision 5. Max is 9999.9",
        )
        .unwrap();
        assert_eq!(e.kind, ErrorKind::NumericOutOfRange);
        assert_eq!(e.message, "numeric field overflow");
        assert_eq!(
            e.detail.as_deref(),
            Some(
                "A field with precision 5, scale 1 must round to an absolute value less than 10^4."
            )
        );
    }

    #[test]
    fn a_pattern_that_does_not_compile_is_2201b() {
        let e = classify_datafusion(datafusion::error::DataFusionError::Execution(
            "Compute error: Regular expression did not compile: Syntax(\nregex parse error:\n    ^(?:a{)$\nerror: repetition quantifier expects a valid decimal\n)".into(),
        ));
        assert_eq!(e.kind, ErrorKind::InvalidRegularExpression);
        assert_eq!(
            e.message,
            "invalid regular expression: repetition quantifier expects a valid decimal"
        );
    }

    #[test]
    fn one_of_ours_printed_into_a_readers_message_keeps_its_class() {
        let e = classify_datafusion(datafusion::error::DataFusionError::Execution(
            "Parquet error: External: Compute error: Error evaluating filter predicate: \
             External(Error { kind: NumericOutOfRange, message: \"bigint out of range\", \
             detail: None, hint: None, context: None, object: None })"
                .into(),
        ));
        assert_eq!(e.kind, ErrorKind::NumericOutOfRange);
        assert_eq!(e.message, "bigint out of range");
    }

    #[test]
    fn an_integer_array_overflow_names_the_type() {
        let e = classify_datafusion(datafusion::error::DataFusionError::ArrowError(
            Box::new(datafusion::arrow::error::ArrowError::ComputeError(
                "Int32Array overflow on abs(-2147483648)".into(),
            )),
            None,
        ));
        assert_eq!(e.kind, ErrorKind::NumericOutOfRange);
        assert_eq!(e.message, "integer out of range");
        let e = classify_datafusion(datafusion::error::DataFusionError::Execution(
            "Compute error: Int64Array overflow on abs(-9223372036854775808)".into(),
        ));
        assert_eq!(e.message, "bigint out of range");
    }

    #[test]
    fn timestamp_arithmetic_out_of_range_is_22008() {
        let e = classify_message("Arrow error: Compute error: Timestamp out of range").unwrap();
        assert_eq!(e.kind, ErrorKind::DatetimeOverflow);
        assert_eq!(e.message, "timestamp out of range");
    }

    #[test]
    fn integer_overflow_returned_as_text_is_22003() {
        let e = classify_message("Generic DeltaTable error: External error: integer out of range")
            .unwrap();
        assert_eq!(e.kind, ErrorKind::NumericOutOfRange);
        assert_eq!(e.message, "integer out of range");
    }

    #[test]
    fn violations_returned_as_text_keep_their_table_column_and_constraint() {
        let fields = |msg: &str| {
            let o = classify_message(msg).unwrap().object.unwrap();
            (o.table, o.column, o.constraint)
        };
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            fields(
                "Generic error: new row for relation \"txn\" violates check constraint \"pos\"\nDETAIL:  Failing row contains (1)."
            ),
            (s("txn"), None, s("pos"))
        );
        assert_eq!(
            fields("null value in column \"id\" of relation \"txn\" violates not-null constraint"),
            (s("txn"), s("id"), None)
        );
        assert_eq!(
            fields("duplicate key value violates unique constraint \"txn_pkey\""),
            (None, None, s("txn_pkey"))
        );
        assert_eq!(
            fields(
                "insert or update on table \"line\" violates foreign key constraint \"line_fk\""
            ),
            (s("line"), None, s("line_fk"))
        );
        assert_eq!(
            fields(
                "update or delete on table \"head\" violates foreign key constraint \"line_fk\" on table \"line\""
            ),
            (s("line"), None, s("line_fk"))
        );
    }

    #[test]
    fn unknown_table_reads_like_postgres() {
        let e = classify_message("Error during planning: table 'sluice.public.nope' not found")
            .unwrap();
        assert_eq!(e.kind, ErrorKind::UndefinedTable);
        assert_eq!(e.message, "relation \"nope\" does not exist");
    }

    /// Refusals DataFusion words its own way, as PostgreSQL words and
    /// classes them (they were internal errors).
    #[test]
    fn datafusion_refusals_read_like_postgres() {
        for (raw, kind, text) in [
            (
                "Error during planning: Order by column out of bounds, specified: 5, max: 3",
                ErrorKind::InvalidColumnReference,
                "ORDER BY position 5 is not in select list",
            ),
            (
                "Error during planning: LIMIT must be >= 0, '-1' was provided",
                ErrorKind::InvalidLimit,
                "LIMIT must not be negative",
            ),
            (
                "Error during planning: OFFSET must be >=0, '-1' was provided",
                ErrorKind::InvalidOffset,
                "OFFSET must not be negative",
            ),
            (
                "Execution error: negative count not allowed: -1",
                ErrorKind::SubstringError,
                "negative substring length not allowed",
            ),
            (
                "Execution error: invalid Unicode scalar value: -1",
                ErrorKind::InvalidParameter,
                "character number must be positive",
            ),
            (
                "Execution error: Unable to parse date from 2026, 2, 30",
                ErrorKind::DatetimeOverflow,
                "date field value out of range: 2026-02-30",
            ),
            (
                "Error during planning: Too many columns! The subquery should only return one \
                 column: t.a, t.b",
                ErrorKind::Syntax,
                "subquery has too many columns",
            ),
            (
                "Schema error: Ambiguous reference to unqualified field uid",
                ErrorKind::AmbiguousColumn,
                "column reference \"uid\" is ambiguous",
            ),
            (
                "Arrow error: Arithmetic overflow: Overflow happened on: -2147483648 / -1",
                ErrorKind::NumericOutOfRange,
                "integer out of range",
            ),
        ] {
            let e = classify_message(raw).unwrap_or_else(|| panic!("{raw}"));
            assert_eq!((e.kind, e.message.as_str()), (kind, text), "{raw}");
        }
    }

    #[test]
    fn unknown_column_reads_like_postgres() {
        let e = classify_message("Schema error: No field named zz. Valid fields are t.a, t.b.")
            .unwrap();
        assert_eq!(e.kind, ErrorKind::UndefinedColumn);
        assert_eq!(e.message, "column \"zz\" does not exist");
        let e =
            classify_message("Schema error: No field named u.nope. Valid fields are u.a.").unwrap();
        assert_eq!(e.message, "column u.nope does not exist");
    }

    #[test]
    fn a_number_too_large_for_its_cast_is_22003() {
        let e =
            classify_message("Arrow error: Cast error: value of -3000000000 is out of range Int32")
                .unwrap();
        assert_eq!(e.kind, ErrorKind::NumericOutOfRange);
        assert_eq!(e.message, "integer out of range");
        let e = classify_arrow(&datafusion::arrow::error::ArrowError::CastError(
            "value of 70000 is out of range Int16".into(),
        ));
        assert_eq!(e.kind, ErrorKind::NumericOutOfRange);
        assert_eq!(e.message, "smallint out of range");
    }

    #[test]
    fn cast_error_names_the_pg_type() {
        let e = classify_message(
            "Arrow error: Cast error: Cannot cast string 'abc' to value of Int32 type",
        )
        .unwrap();
        assert_eq!(e.kind, ErrorKind::InvalidText);
    }

    #[test]
    fn a_date_whose_fields_do_not_exist_is_22008() {
        for (m, want) in [
            (
                "Cannot cast string '2026-02-30' to value of Date32 type",
                ErrorKind::DatetimeOverflow,
            ),
            (
                "Cannot cast string '2026-13-01' to value of Date32 type",
                ErrorKind::DatetimeOverflow,
            ),
            (
                "Cannot cast string 'abc' to value of Date32 type",
                ErrorKind::InvalidDatetime,
            ),
        ] {
            assert_eq!(cast_error(m).kind, want, "{m}");
        }
        assert!(well_formed_datetime("2026-01-01 25:00:00"));
        assert!(well_formed_datetime("2026-02-30"));
        assert!(!well_formed_datetime("2026-02-30 x"));
        assert!(!well_formed_datetime("yesterday"));
    }

    #[test]
    fn a_timestamp_that_does_not_parse_is_22007() {
        let e = classify_arrow(&datafusion::arrow::error::ArrowError::ParseError(
            "Error parsing timestamp from 'infinity': timestamp must contain at least 10 \
             characters"
                .into(),
        ));
        assert_eq!(e.kind, ErrorKind::InvalidDatetime);
        assert_eq!(
            e.message,
            "invalid input syntax for type timestamp: \"infinity\""
        );
        // Folded by the optimizer, inside its wrapping.
        let e = classify_message(
            "Generic DeltaTable error: Optimizer rule 'simplify_expressions' failed\ncaused \
             by\nArrow error: Parser error: Error parsing timestamp from 'bad': timestamp \
             must contain at least 10 characters",
        )
        .unwrap();
        assert_eq!(e.kind, ErrorKind::InvalidDatetime);
        assert_eq!(
            e.message,
            "invalid input syntax for type timestamp: \"bad\""
        );
    }
}
