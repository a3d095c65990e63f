//! The one place where an [`ErrorKind`] becomes a PostgreSQL SQLSTATE.

use pgwire::error::{ErrorInfo, PgWireError};

use crate::error::{Error, ErrorKind};

pub fn sqlstate(kind: ErrorKind) -> &'static str {
    use ErrorKind::*;
    match kind {
        Syntax => "42601",
        UndefinedTable => "42P01",
        UndefinedColumn => "42703",
        UndefinedSchema | InvalidSchemaName => "3F000",
        UndefinedObject => "42704",
        UndefinedFunction => "42883",
        DuplicateTable => "42P07",
        DuplicateSchema => "42P06",
        DuplicateColumn => "42701",
        DuplicateObject => "42710",
        DatatypeMismatch => "42804",
        CannotCoerce => "42846",
        InvalidText => "22P02",
        InvalidEscapeSequence => "22025",
        InvalidDatetime => "22007",
        DatetimeOverflow => "22008",
        CardinalityViolation => "21000",
        DivisionByZero => "22012",
        NumericOutOfRange => "22003",
        StringTooLong => "22001",
        NotNullViolation => "23502",
        CheckViolation => "23514",
        UniqueViolation => "23505",
        ForeignKeyViolation => "23503",
        InvalidColumnReference => "42P10",
        InvalidForeignKey => "42830",
        DependentObjects => "2BP01",
        WrongObjectType => "42809",
        FeatureNotSupported => "0A000",
        InvalidParameter => "22023",
        InvalidRegularExpression => "2201B",
        InvalidWidthBucket => "2201G",
        InvalidLogarithmArgument => "2201E",
        InvalidPowerArgument => "2201F",
        InvalidWindowOffset => "22013",
        InvalidLimit => "2201W",
        InvalidOffset => "2201X",
        SubstringError => "22011",
        AmbiguousColumn => "42702",
        AmbiguousFunction => "42725",
        Grouping => "42803",
        Windowing => "42P20",
        InvalidObjectDefinition => "42P17",
        InFailedTransaction => "25P02",
        NoActiveTransaction => "25P01",
        NullValueNotAllowed => "22004",
        InvalidSavepoint => "3B001",
        InvalidCursorName => "34000",
        InvalidSqlStatementName => "26000",
        DuplicatePreparedStatement => "42P05",
        DuplicateCursor => "42P03",
        ObjectNotInPrerequisiteState => "55000",
        GeneratedAlways => "428C9",
        SequenceLimit => "2200H",
        QueryCanceled => "57014",
        OutOfMemory => "53200",
        ConfigurationLimitExceeded => "53400",
        ProgramLimitExceeded => "54000",
        SerializationFailure => "40001",
        InvalidTableDefinition => "42P16",
        DataException => "22000",
        BadCopyFormat => "22P04",
        InvalidBinaryRepresentation => "22P03",
        CharacterNotInRepertoire => "22021",
        InsufficientPrivilege => "42501",
        ConnectionFailure => "08001",
        UndefinedFile => "58P01",
        RemoteError => "HV000",
        Io => "58030",
        Internal => "XX000",
    }
}

pub fn error_info(e: &Error) -> ErrorInfo {
    let mut info = ErrorInfo::new("ERROR".into(), sqlstate(e.kind).into(), e.message.clone());
    info.detail = e.detail.clone();
    info.hint = e.hint.clone();
    info.where_context = e.context.clone();
    if let Some(o) = &e.object {
        info.table = o.table.clone();
        info.column = o.column.clone();
        info.constraint = o.constraint.clone();
    }
    printable(&mut info);
    info
}

/// The fields of an error or notice go out as C strings: a NUL byte in
/// one (quoted from a COPY line, a value, a name) would end the field
/// early and break the message for the client. Shown as `\0`.
pub fn printable(info: &mut ErrorInfo) {
    fn clean(s: &mut String) {
        if s.contains('\0') {
            *s = s.replace('\0', "\\0");
        }
    }
    clean(&mut info.message);
    for field in [
        &mut info.detail,
        &mut info.hint,
        &mut info.where_context,
        &mut info.position,
        &mut info.internal_query,
        &mut info.routine,
        &mut info.table,
        &mut info.column,
        &mut info.constraint,
    ]
    .into_iter()
    .flatten()
    {
        clean(field);
    }
}

pub fn to_pgwire(e: &Error) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e)))
}
