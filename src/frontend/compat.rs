//! Rewrites for the catalog queries PostgreSQL clients send (psql, BI
//! tools, drivers), applied to the parsed statement in one place.
//!
//! Some are safe for every statement (operator and function spellings with a
//! `pg_catalog.` qualifier, `version()`'s column name); the others apply
//! only to statements that read the system catalogs.

use std::ops::ControlFlow;

use crate::catalog::pg_constraints::{REGCLASS_FOUND, REGTYPE_FOUND, REGTYPE_NAME};
use crate::catalog::pg_proc::{REGPROC_FOUND, REGPROC_NAME, REGPROCEDURE_FOUND, REGPROCEDURE_NAME};
use crate::visit::visit_relations;
use datafusion::sql::sqlparser::ast::{ObjectName, Statement, TableFactor};
use datafusion_pg_catalog::sql::rules::{
    CurrentUserVariableToSessionUserFunctionCall, FixArrayLiteral, FixVersionColumnName,
    PrependUnqualifiedPgTableName, ResolveUnqualifiedIdentifier, RewriteArrayAnyAllOperation,
    RewritePgCatalogOperator, RewriteRegCastToSubquery, SqlStatementRewriteRule,
    StripCallableQualifier, StripCollate,
};

/// Does `stmt` read a system catalog (`pg_catalog`, `information_schema`,
/// or an unqualified `pg_*` relation)?
fn reads_system_catalogs(stmt: &Statement) -> bool {
    let ctes = cte_names(stmt);
    visit_relations(stmt, |name: &ObjectName| {
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|p| p.to_string().trim_matches('"').to_ascii_lowercase())
            .collect();
        let system = match parts.as_slice() {
            [t] => t.starts_with("pg_") && !ctes.contains(t),
            [s, ..] => s == "pg_catalog" || s == "information_schema",
            _ => false,
        };
        if system {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .is_break()
}

/// A WITH query that is an INSERT, UPDATE, DELETE or MERGE (PostgreSQL's
/// data-modifying WITH) is refused with 0A000 and the statement's own
/// name; DataFusion answered "Query ... not implemented yet".
fn data_modifying_with(stmt: &Statement) -> crate::error::Result<()> {
    use datafusion::sql::sqlparser::ast::{Query, SetExpr, Visitor};
    struct Withs;
    impl Visitor for Withs {
        type Break = &'static str;
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<&'static str> {
            for cte in q.with.iter().flat_map(|w| &w.cte_tables) {
                match cte.query.body.as_ref() {
                    SetExpr::Insert(_) => return ControlFlow::Break("INSERT"),
                    SetExpr::Update(_) => return ControlFlow::Break("UPDATE"),
                    SetExpr::Delete(_) => return ControlFlow::Break("DELETE"),
                    SetExpr::Merge(_) => return ControlFlow::Break("MERGE"),
                    _ => {}
                }
            }
            ControlFlow::Continue(())
        }
    }
    match crate::visit::walk(stmt, &mut Withs) {
        ControlFlow::Break(kind) => Err(crate::error::Error::not_supported(format!(
            "{kind} in WITH (a data-modifying WITH query)"
        ))
        .with_hint(format!(
            "Run the {kind} on its own; with RETURNING it returns the rows it wrote."
        ))),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// The names every WITH query of `stmt` defines, at any depth.
pub fn cte_names(stmt: &Statement) -> std::collections::HashSet<String> {
    use datafusion::sql::sqlparser::ast::{Query, Visitor};
    struct Withs(std::collections::HashSet<String>);
    impl Visitor for Withs {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if let Some(with) = &q.with {
                for cte in &with.cte_tables {
                    self.0
                        .insert(super::names::normalize_ident(&cte.alias.name));
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut withs = Withs(Default::default());
    let _ = crate::visit::walk(stmt, &mut withs);
    withs.0
}

/// Apply the client-compatibility rewrites to `stmt`; `text` is its SQL
/// as the client sent it, when known.
pub fn rewrite(stmt: &mut Statement, text: Option<&str>) -> crate::error::Result<()> {
    data_modifying_with(stmt)?;
    super::row_count::whole_row_counts(stmt)?;
    super::fetch::fetch_as_limit(stmt)?;
    super::collate::byte_collations(stmt)?;
    super::table_functions::table_functions(stmt)?;
    let universal: [&dyn SqlStatementRewriteRule; 4] = [
        &StripCallableQualifier,
        &RewritePgCatalogOperator,
        &FixVersionColumnName,
        &CurrentUserVariableToSessionUserFunctionCall,
    ];
    let mut s = std::mem::replace(
        stmt,
        Statement::Commit {
            chain: false,
            end: false,
            modifier: None,
        },
    );
    let catalog = reads_system_catalogs(&s);
    let original = text.map(str::to_string).unwrap_or_else(|| s.to_string());
    if catalog && original.to_ascii_lowercase().contains("pg_indexes") {
        pg_indexes_view(&mut s)?;
    }
    niladic_functions(&mut s);
    for rule in universal {
        s = rule.rewrite(s);
    }
    sequence_arguments(&mut s);
    local_times(&mut s);
    scalar_function_aliases(&mut s);
    format_arguments(&mut s);
    substring_patterns(&mut s);
    make_interval_arguments(&mut s);
    overlaps(&mut s);
    repeated_rollup_keys(&mut s);
    super::one_group::one_group(&mut s);
    super::values_subqueries::values_subqueries(&mut s);
    generate_subscripts(&mut s);
    expand_array(&mut s);
    unicode_strings(&mut s);
    row_null_tests(&mut s);
    row_field_names(&mut s);
    typed_casts(&mut s);
    timestamp_casts(&mut s);
    signed_powers(&mut s);
    prefix_operators(&mut s);
    sorted_distinct_aggregates(&mut s);
    view_name_arguments(&mut s);
    if catalog {
        regproc_names(&mut s);
        tableoid_columns(&mut s);
        regclass_literals(&mut s);
        // datafusion-pg-catalog knows the exact text of some client
        // queries and substitutes its own; those are taken whole. Its
        // general rules are applied to everything else, except the one
        // that turns every correlated subquery of a select list into NULL:
        // Sluice plans those, and NULL is a wrong answer (a `count(*)` of
        // no rows is 0).
        let compat = datafusion_pg_catalog::sql::PostgresCompatibilityParser::new();
        let substituted = compat
            .parse(&original)
            .ok()
            .filter(|r| r.len() == 1)
            .map(|mut r| r.remove(0));
        let plain = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            &original,
        )
        .ok()
        .filter(|r| r.len() == 1)
        .map(|mut r| compat.rewrite(r.remove(0)));
        match (substituted, plain) {
            (Some(known), Some(plain)) if known != plain => s = known,
            _ => {
                // Its types arrays as text, which these rewrites expect.
                let catalog: [&dyn SqlStatementRewriteRule; 6] = [
                    &ResolveUnqualifiedIdentifier,
                    &RewriteArrayAnyAllOperation,
                    &PrependUnqualifiedPgTableName,
                    &FixArrayLiteral,
                    &StripCollate,
                    &RewriteRegCastToSubquery::new(),
                ];
                for rule in catalog {
                    s = rule.rewrite(s);
                }
            }
        }
        without_trigger_subqueries(&mut s);
        regclass_names(&mut s);
        regproc_zero(&mut s);
    } else if casts_name_to_oid(&s) {
        // `SELECT obj_description('t'::regclass)`: the name is looked up
        // in the catalog tables as in a catalog query.
        regclass_literals(&mut s);
        s = RewriteRegCastToSubquery::new().rewrite(s);
        regclass_names(&mut s);
    }
    *stmt = s;
    Ok(())
}

/// A parameter the client declared as a date, time, timestamp or
/// interval has that type, as in PostgreSQL, whatever the expression
/// around it suggests: `now() - $1` with an interval `$1` is a timestamp
/// (the planner, left alone, reads `$1` as a timestamp and the difference
/// as a duration). Other declared types agree with what the planner infers
/// or are converted when the value is bound.
pub fn declared_parameters(stmt: &mut Statement, declared: &[Option<&str>]) {
    use crate::visit::visit_expressions_mut;
    use datafusion::sql::sqlparser::ast::{CastKind, DataType, Expr, TimezoneInfo, Value};
    let ty = |name: &str| match name {
        "interval" => Some(DataType::Interval {
            fields: None,
            precision: None,
        }),
        "date" => Some(DataType::Date),
        "time" => Some(DataType::Time(None, TimezoneInfo::None)),
        "timestamp" => Some(DataType::Timestamp(Some(6), TimezoneInfo::None)),
        "timestamptz" => Some(DataType::Timestamp(Some(6), TimezoneInfo::WithTimeZone)),
        _ => None,
    };
    if !declared.iter().flatten().any(|n| ty(n).is_some()) {
        return;
    }
    let _ = visit_expressions_mut(stmt, |e: &mut Expr| {
        if let Expr::Value(v) = e
            && let Value::Placeholder(p) = &v.value
            && let Ok(n) = p.trim_start_matches('$').parse::<usize>()
            && let Some(Some(name)) = n.checked_sub(1).and_then(|i| declared.get(i))
            && let Some(data_type) = ty(name)
        {
            *e = Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(e.clone()),
                data_type,
                array: false,
                format: None,
            };
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `regclass` or `pg_catalog.regclass`.
fn is_regclass(t: &datafusion::sql::sqlparser::ast::DataType) -> bool {
    use datafusion::sql::sqlparser::ast::DataType;
    match t {
        DataType::Regclass => true,
        DataType::Custom(n, _) => {
            n.0.last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("regclass"))
        }
        _ => false,
    }
}

/// `nextval('s'::regclass)` (how PostgreSQL prints a serial column's
/// default, and how clients write it) names the sequence by its text:
/// the sequence functions look the name up themselves, by the search
/// path, so the cast is dropped.
pub fn sequence_arguments<N: datafusion::sql::sqlparser::ast::VisitMut>(node: &mut N) {
    use crate::visit::{sequence_argument, visit_expressions_mut};
    use datafusion::sql::sqlparser::ast::{Expr, Value};
    let _ = visit_expressions_mut(node, |e: &mut Expr| {
        if let Some(arg) = sequence_argument(e)
            && let Expr::Cast {
                expr, data_type, ..
            } = arg
            && is_regclass(data_type)
            && matches!(expr.as_ref(), Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)))
        {
            *arg = expr.as_ref().clone();
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Whether `stmt` casts a string or number literal to an OID alias type
/// (`'t'::regclass`, `'int8'::regtype`, `870::regproc`, ...).
fn casts_name_to_oid(stmt: &Statement) -> bool {
    use crate::visit::visit_expressions;
    use datafusion::sql::sqlparser::ast::{DataType, Expr, Value};
    visit_expressions(stmt, |e: &Expr| {
        if let Expr::Function(f) = e
            && f.name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| i.value.eq_ignore_ascii_case("to_regclass"))
        {
            return ControlFlow::Break(());
        }
        if let Expr::Cast {
            expr, data_type, ..
        } = e
            && matches!(expr.as_ref(), Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_) | Value::Number(..)))
        {
            let name = match data_type {
                DataType::Regclass => "regclass".to_string(),
                DataType::Custom(n, _) => n
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .map(|i| i.value.to_ascii_lowercase())
                    .unwrap_or_default(),
                _ => String::new(),
            };
            if matches!(
                name.as_str(),
                "regclass" | "regtype" | "regnamespace" | "regproc" | "regprocedure"
            ) {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })
    .is_break()
}

/// SQL's functions written without parentheses: `user` and `current_role`
/// are `current_user`, and each unaliased one is named as PostgreSQL names
/// it (`current_user`, not the `session_user()` it is planned as).
fn niladic_functions(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{Expr, FunctionArguments, Ident, SelectItem, SetExpr};
    const NAMES: [&str; 6] = [
        "current_user",
        "session_user",
        "user",
        "current_role",
        "current_catalog",
        "current_schema",
    ];
    let niladic = |e: &Expr| -> Option<String> {
        let name = match e {
            Expr::Identifier(i) if i.quote_style.is_none() => i.value.to_ascii_lowercase(),
            Expr::Function(f) if matches!(f.args, FunctionArguments::None) => {
                f.name.0.last()?.as_ident()?.value.to_ascii_lowercase()
            }
            _ => return None,
        };
        NAMES.contains(&name.as_str()).then_some(name)
    };
    struct Items<'a>(&'a dyn Fn(&Expr) -> Option<String>);
    impl datafusion::sql::sqlparser::ast::VisitorMut for Items<'_> {
        type Break = ();
        fn pre_visit_query(
            &mut self,
            q: &mut datafusion::sql::sqlparser::ast::Query,
        ) -> ControlFlow<()> {
            if let SetExpr::Select(select) = q.body.as_mut() {
                for item in select.projection.iter_mut() {
                    if let SelectItem::UnnamedExpr(e) = item
                        && let Some(name) = (self.0)(e)
                    {
                        *item = SelectItem::ExprWithAlias {
                            expr: e.clone(),
                            alias: Ident::with_quote('"', name),
                        };
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(stmt, &mut Items(&niladic));
    let _ = crate::visit::visit_expressions_mut(stmt, |e: &mut Expr| {
        if matches!(niladic(e).as_deref(), Some("user" | "current_role")) {
            *e = call("current_user", vec![], vec![]);
            if let Expr::Function(f) = e {
                f.args = FunctionArguments::None;
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `ROW(a, b) IS NULL` is true when every field is NULL, `IS NOT NULL`
/// when none is, as in PostgreSQL (a record itself is never NULL there;
/// DataFusion's struct answered false for `ROW(NULL, NULL) IS NULL`).
fn row_null_tests(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr};
    fn fields(e: &Expr) -> Option<Vec<Expr>> {
        match e {
            Expr::Nested(inner) => fields(inner),
            other => row_constructor_fields(other),
        }
    }
    let _ = crate::visit::visit_expressions_mut(stmt, |e: &mut Expr| {
        let (inner, negated) = match e {
            Expr::IsNull(inner) => (inner, false),
            Expr::IsNotNull(inner) => (inner, true),
            _ => return ControlFlow::<()>::Continue(()),
        };
        let Some(items) = fields(inner) else {
            return ControlFlow::Continue(());
        };
        let test = |x: Expr| {
            if negated {
                Expr::IsNotNull(Box::new(x))
            } else {
                Expr::IsNull(Box::new(x))
            }
        };
        if let Some(all) = items.into_iter().map(test).reduce(|a, b| Expr::BinaryOp {
            left: Box::new(a),
            op: BinaryOperator::And,
            right: Box::new(b),
        }) {
            *e = Expr::Nested(Box::new(all));
        }
        ControlFlow::Continue(())
    });
}

/// The fields of a row constructor: `(a, b)` or `ROW(a, b)`.
pub fn row_constructor_fields(
    e: &datafusion::sql::sqlparser::ast::Expr,
) -> Option<Vec<datafusion::sql::sqlparser::ast::Expr>> {
    use datafusion::sql::sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, FunctionArguments};
    match e {
        Expr::Tuple(items) => Some(items.clone()),
        Expr::Function(f)
            if matches!(f.name.0.as_slice(), [part]
                if part.as_ident().is_some_and(|i| i.value.eq_ignore_ascii_case("row"))) =>
        {
            let FunctionArguments::List(list) = &f.args else {
                return None;
            };
            list.args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x.clone()),
                    _ => None,
                })
                .collect()
        }
        _ => None,
    }
}

/// `ROW(a, b)` is a record of fields `f1`, `f2`, ... as in PostgreSQL
/// (`to_jsonb(ROW(1, 'x'))` is `{"f1": 1, "f2": "x"}`); DataFusion's
/// `row` names them `c0`, `c1`.
fn row_field_names(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{
        Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Value,
    };
    let _ = crate::visit::visit_expressions_mut(stmt, |e: &mut Expr| {
        if let Expr::Function(f) = e
            && let [part] = f.name.0.as_slice()
            && part
                .as_ident()
                .is_some_and(|i| i.value.eq_ignore_ascii_case("row"))
            && let FunctionArguments::List(list) = &f.args
            && list.duplicate_treatment.is_none()
            && list.clauses.is_empty()
            && !list.args.is_empty()
        {
            let mut args = Vec::new();
            for (i, a) in list.args.iter().enumerate() {
                let FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) = a else {
                    return ControlFlow::Continue(());
                };
                args.push(Expr::value(Value::SingleQuotedString(format!(
                    "f{}",
                    i + 1
                ))));
                args.push(x.clone());
            }
            *e = call("named_struct", args, vec![]);
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `U&'d\0061t\+000061'`: the parser has decoded the escapes; the value
/// is a plain string (DataFusion's planner refused the literal).
fn unicode_strings(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{Expr, Value};
    let _ = crate::visit::visit_expressions_mut(stmt, |e: &mut Expr| {
        if let Expr::Value(v) = e
            && let Value::UnicodeStringLiteral(text) = &v.value
        {
            v.value = Value::SingleQuotedString(text.clone());
        }
        ControlFlow::<()>::Continue(())
    });
}

/// A cast to a type kept as checked text (`x::uuid`, `CAST(x AS jsonb)`)
/// calls that type's input function, which checks and normalises the text.
pub fn typed_casts<N: datafusion::sql::sqlparser::ast::VisitMut>(node: &mut N) {
    use crate::types::typed::TextType;
    use crate::visit::visit_expressions_mut;
    use datafusion::sql::sqlparser::ast::{DataType, ExactNumberInfo, Expr, TypedString, Value};
    let text_type = |data_type: &DataType| match data_type {
        DataType::Uuid => Some(TextType::Uuid),
        DataType::JSON => Some(TextType::Json),
        DataType::JSONB => Some(TextType::Jsonb),
        DataType::Custom(name, args) if args.is_empty() => name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .and_then(|i| TextType::of(&i.value.to_ascii_lowercase())),
        _ => None,
    };
    let _ = visit_expressions_mut(node, |e: &mut Expr| {
        // `-INTERVAL '1 day'`: DataFusion's planner drops the sign of a
        // negated interval literal; negated as an expression it keeps it.
        if let Expr::UnaryOp {
            op: datafusion::sql::sqlparser::ast::UnaryOperator::Minus,
            expr,
        } = e
            && matches!(expr.as_ref(), Expr::Interval(_))
        {
            let literal = std::mem::replace(expr.as_mut(), Expr::Value(Value::Null.into()));
            **expr = Expr::Nested(Box::new(literal));
        }
        // `uuid '…'`, `jsonb '…'`: a typed literal reads its text as the
        // cast does.
        if let Expr::TypedString(TypedString {
            data_type, value, ..
        }) = e
            && let Some(ty) = text_type(data_type)
        {
            *e = call(ty.function(), vec![Expr::Value(value.clone())], vec![]);
            return ControlFlow::Continue(());
        }
        // `INTERVAL '1 day 03:04:05'`: PostgreSQL's forms, in the one
        // Arrow's parser reads exactly.
        if let Expr::Interval(iv) = e
            && iv.leading_field.is_none()
            && iv.last_field.is_none()
            && let Expr::Value(v) = iv.value.as_mut()
            && let Value::SingleQuotedString(text) = &mut v.value
            && let Some(canonical) = crate::types::interval::canonical(text)
        {
            *text = canonical;
            return ControlFlow::Continue(());
        }
        if let Expr::Cast {
            expr, data_type, ..
        } = e
        {
            // `'t'::name`, PostgreSQL's type of catalog names, which tools'
            // catalog queries cast to: text here, as the catalog's names are.
            if let DataType::Custom(n, args) = data_type
                && args.is_empty()
                && n.0
                    .last()
                    .and_then(|p| p.as_ident())
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("name"))
            {
                *data_type = DataType::Text;
                return ControlFlow::Continue(());
            }
            // `1e308::float8`: a number literal read as the float, not
            // as a numeric first (which holds 76 digits).
            // Only where the float holds it: beyond, the numeric path
            // reports the value out of range.
            if matches!(
                data_type,
                DataType::Double(_)
                    | DataType::DoublePrecision
                    | DataType::Float8
                    | DataType::Float64
            ) && let Expr::Value(v) = expr.as_mut()
                && let Value::Number(n, _) = &v.value
                && n.parse::<f64>().is_ok_and(|f| {
                    f.is_finite()
                        && (f != 0.0 || n.chars().all(|c| !c.is_ascii_digit() || c == '0'))
                })
            {
                v.value = Value::SingleQuotedString(n.clone());
                return ControlFlow::Continue(());
            }
            if let DataType::Numeric(ExactNumberInfo::None)
            | DataType::Decimal(ExactNumberInfo::None)
            | DataType::Dec(ExactNumberInfo::None) = data_type
            {
                // An unconstrained numeric keeps the digits of the value.
                let written = match expr.as_ref() {
                    Expr::Value(v) => match &v.value {
                        Value::SingleQuotedString(s) => crate::types::numeric::literal_digits(s),
                        _ => None,
                    },
                    _ => None,
                };
                if let Some((p, s)) = written {
                    *data_type =
                        DataType::Numeric(ExactNumberInfo::PrecisionAndScale(p as u64, s as i64));
                } else {
                    let null = Expr::Value(Value::Null.into());
                    let arg = std::mem::replace(expr.as_mut(), null);
                    *e = call(crate::types::numeric::FUNCTION, vec![arg], vec![]);
                }
                return ControlFlow::Continue(());
            }
            if let Some(ty) = text_type(data_type) {
                let null = Expr::Value(Value::Null.into());
                let arg = std::mem::replace(expr.as_mut(), null);
                *e = call(ty.function(), vec![arg], vec![]);
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// A column default stored as PostgreSQL prints it (`'{}'::jsonb`), as
/// text DataFusion plans: the casts spelled as the frontend spells a
/// statement's own (`'{}'::jsonb` was "Unsupported SQL type JSONB" when a
/// row took the default). Text that does not parse is returned as it is.
pub fn planned_default(sql: &str) -> String {
    let parsed = datafusion::sql::sqlparser::parser::Parser::new(
        &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
    )
    .try_with_sql(sql)
    .and_then(|mut p| p.parse_expr());
    match parsed {
        Ok(mut e) => {
            typed_casts(&mut e);
            timestamp_casts(&mut e);
            e.to_string()
        }
        Err(_) => sql.to_string(),
    }
}

/// Every cast to a timestamp in `node` in microseconds (see
/// [`timestamp_micros`]): statements that do not pass through [`rewrite`]
/// (the query of a CREATE TABLE AS) are planned with it too.
pub fn timestamp_casts<N: datafusion::sql::sqlparser::ast::VisitMut>(node: &mut N) {
    use datafusion::sql::sqlparser::ast::{Expr, TypedString};
    let _ = crate::visit::visit_expressions_mut(node, |e: &mut Expr| {
        if let Expr::Cast { data_type, .. } | Expr::TypedString(TypedString { data_type, .. }) = e {
            timestamp_micros(data_type);
        }
        ControlFlow::<()>::Continue(())
    });
}

/// A timestamp type without a precision (of an array's elements too) is
/// microseconds, as a stored timestamp and PostgreSQL's are: DataFusion's
/// default, nanoseconds, holds only the years 1677 to 2262.
pub fn timestamp_micros(data_type: &mut datafusion::sql::sqlparser::ast::DataType) {
    use datafusion::sql::sqlparser::ast::{ArrayElemTypeDef, DataType};
    match data_type {
        DataType::Timestamp(precision @ None, _) => *precision = Some(6),
        DataType::Array(
            ArrayElemTypeDef::AngleBracket(inner)
            | ArrayElemTypeDef::SquareBracket(inner, _)
            | ArrayElemTypeDef::Parenthesis(inner),
        ) => timestamp_micros(inner),
        _ => {}
    }
}

/// `pg_get_viewdef('name')`, PostgreSQL's form taking the view's name, as
/// `pg_get_viewdef('name'::regclass)` (it answered NULL).
fn view_name_arguments(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{
        CastKind, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Value,
    };
    let _ = crate::visit::visit_expressions_mut(stmt, |e| {
        if let Expr::Function(f) = e
            && f.name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("pg_get_viewdef"))
            && let FunctionArguments::List(list) = &mut f.args
            && let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(first))) = list.args.first_mut()
            && matches!(first, Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)))
        {
            *first = Expr::Cast {
                kind: CastKind::DoubleColon,
                expr: Box::new(first.clone()),
                data_type: DataType::Regclass,
                array: false,
                format: None,
            };
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `array_agg(DISTINCT x)` (and `string_agg`, `json_agg`, `jsonb_agg`)
/// without ORDER BY collects its values sorted, as PostgreSQL's DISTINCT
/// aggregates do (it sorts to find the repeats): DataFusion's came in the
/// order of a hash table (`{2,NULL,1,3}` for PostgreSQL's
/// `{1,2,3,NULL}`). The sort is by the first argument, NULLs last.
fn sorted_distinct_aggregates(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{
        DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArgumentClause,
        FunctionArguments, OrderByExpr, OrderByOptions,
    };
    let _ = crate::visit::visit_expressions_mut(stmt, |e| {
        if let Expr::Function(f) = e
            && f.over.is_none()
            && f.name.0.len() == 1
            && f.name.0[0].as_ident().is_some_and(|i| {
                ["array_agg", "string_agg", "json_agg", "jsonb_agg"]
                    .contains(&i.value.to_ascii_lowercase().as_str())
            })
            && let FunctionArguments::List(list) = &mut f.args
            && list.duplicate_treatment == Some(DuplicateTreatment::Distinct)
            && !list
                .clauses
                .iter()
                .any(|c| matches!(c, FunctionArgumentClause::OrderBy(_)))
            && let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(first))) = list.args.first()
        {
            let key = OrderByExpr {
                expr: first.clone(),
                options: OrderByOptions {
                    asc: None,
                    nulls_first: None,
                },
                with_fill: None,
            };
            list.clauses
                .push(FunctionArgumentClause::OrderBy(vec![key]));
        }
        ControlFlow::<()>::Continue(())
    });
}

/// PostgreSQL's prefix operators `@ x` (absolute value), `|/ x` (square
/// root) and `||/ x` (cube root), and the array overlap `a && b`, which
/// DataFusion does not plan, as the functions they are. An unaliased select item keeps an operator's name,
/// `?column?`.
/// A sign binds tighter than `^` in PostgreSQL (`-2 ^ 2` is 4); sqlparser
/// reads it as the sign of the power (-4). The sign is moved onto the
/// base of the leftmost power; `-(2 ^ 2)` written with parentheses stays.
pub fn signed_powers<N: datafusion::sql::sqlparser::ast::VisitMut>(stmt: &mut N) {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, UnaryOperator};
    fn base(e: &mut Expr) -> &mut Expr {
        match e {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::PGExp,
                ..
            } => base(left),
            other => other,
        }
    }
    let _ = crate::visit::visit_expressions_mut(stmt, |e: &mut Expr| {
        if let Expr::UnaryOp {
            op: op @ (UnaryOperator::Minus | UnaryOperator::Plus),
            expr,
        } = e
            && matches!(
                expr.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::PGExp,
                    ..
                }
            )
        {
            let op = *op;
            let mut power = std::mem::replace(
                expr.as_mut(),
                Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
            );
            let b = base(&mut power);
            let operand =
                std::mem::replace(b, Expr::value(datafusion::sql::sqlparser::ast::Value::Null));
            // Parenthesized, so that the statement printed and read again
            // (a column default, a rewrite) keeps the meaning.
            *b = Expr::Nested(Box::new(Expr::UnaryOp {
                op,
                expr: Box::new(operand),
            }));
            *e = power;
        }
        ControlFlow::<()>::Continue(())
    });
}

fn prefix_operators(stmt: &mut Statement) {
    use crate::visit::visit_expressions_mut;
    use datafusion::sql::sqlparser::ast::{Expr, Ident, SelectItem, SetExpr, UnaryOperator};
    let function = |op: &UnaryOperator| match op {
        UnaryOperator::PGAbs => Some("abs"),
        UnaryOperator::PGSquareRoot => Some("sqrt"),
        UnaryOperator::PGCubeRoot => Some("cbrt"),
        _ => None,
    };
    if let Statement::Query(q) = stmt
        && let SetExpr::Select(select) = q.body.as_mut()
    {
        for item in select.projection.iter_mut() {
            let named = match item {
                SelectItem::UnnamedExpr(Expr::UnaryOp { op, .. }) => function(op).is_some(),
                SelectItem::UnnamedExpr(Expr::BinaryOp {
                    op: datafusion::sql::sqlparser::ast::BinaryOperator::PGOverlap,
                    ..
                }) => true,
                _ => false,
            };
            if let SelectItem::UnnamedExpr(e) = item
                && named
            {
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: Ident::with_quote('"', "?column?"),
                };
            }
        }
    }
    let _ = visit_expressions_mut(stmt, |e: &mut Expr| {
        let null = || Expr::Value(datafusion::sql::sqlparser::ast::Value::Null.into());
        if let Expr::UnaryOp { op, expr } = e
            && let Some(f) = function(op)
        {
            let arg = std::mem::replace(expr.as_mut(), null());
            *e = call(f, vec![arg], vec![]);
        }
        // `a && b` of arrays: whether they have an element in common.
        if let Expr::BinaryOp {
            left,
            op: datafusion::sql::sqlparser::ast::BinaryOperator::PGOverlap,
            right,
        } = e
        {
            let (l, r) = (
                std::mem::replace(left.as_mut(), null()),
                std::mem::replace(right.as_mut(), null()),
            );
            // NULL elements match nothing, as in PostgreSQL.
            let l = call("array_remove", vec![l, null()], vec![]);
            *e = call("array_has_any", vec![l, r], vec![]);
        }
        // `s ^@ p`: whether s starts with p.
        if let Expr::BinaryOp {
            left,
            op: datafusion::sql::sqlparser::ast::BinaryOperator::PGStartsWith,
            right,
        } = e
        {
            let (l, r) = (
                std::mem::replace(left.as_mut(), null()),
                std::mem::replace(right.as_mut(), null()),
            );
            *e = call("starts_with", vec![l, r], vec![]);
        }
        // `~x` of an integer: its bits inverted, -x - 1.
        if let Expr::UnaryOp {
            op: UnaryOperator::BitwiseNot,
            expr,
        } = e
        {
            let x = std::mem::replace(expr.as_mut(), null());
            *e = Expr::Nested(Box::new(Expr::BinaryOp {
                left: Box::new(Expr::UnaryOp {
                    op: UnaryOperator::Minus,
                    expr: Box::new(Expr::Nested(Box::new(x))),
                }),
                op: datafusion::sql::sqlparser::ast::BinaryOperator::Minus,
                right: Box::new(Expr::value(datafusion::sql::sqlparser::ast::Value::Number(
                    "1".into(),
                    false,
                ))),
            }));
        }
        // The clock functions of a statement that runs in its own
        // transaction: the statement's time, and the time now.
        if let Expr::Function(f) = e
            && let [part] = f.name.0.as_slice()
            && let Some(i) = part.as_ident()
            && i.quote_style.is_none()
        {
            let now = matches!(
                i.value.to_ascii_lowercase().as_str(),
                "statement_timestamp" | "transaction_timestamp" | "clock_timestamp"
            );
            if now
                && matches!(&f.args, datafusion::sql::sqlparser::ast::FunctionArguments::List(l) if l.args.is_empty())
            {
                let name = i.value.to_ascii_lowercase();
                let mut c = call("now", vec![], vec![]);
                if name == "clock_timestamp" {
                    c = call(crate::types::functions::CLOCK_TIMESTAMP, vec![], vec![]);
                }
                *e = c;
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// A function returning one scalar column, in FROM with a bare alias,
/// names its column after the alias in PostgreSQL:
/// `SELECT g FROM generate_series(1, 3) g`, `SELECT u FROM unnest(a) u`.
pub fn scalar_function_aliases<N: datafusion::sql::sqlparser::ast::VisitMut>(node: &mut N) {
    use datafusion::sql::sqlparser::ast::{TableAliasColumnDef, VisitorMut};
    struct Aliases;
    impl VisitorMut for Aliases {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
            // Without an alias, the function's name is the relation's and
            // its column's: `SELECT * FROM generate_series(1, 3)` has a
            // column `generate_series`.
            if let TableFactor::Table {
                name,
                args: Some(_),
                alias: alias @ None,
                ..
            } = t
                && let Some(f) = name.0.last().and_then(|p| p.as_ident())
                && f.value.eq_ignore_ascii_case("generate_series")
            {
                *alias = Some(datafusion::sql::sqlparser::ast::TableAlias {
                    explicit: false,
                    name: datafusion::sql::sqlparser::ast::Ident::new("generate_series"),
                    columns: vec![],
                    at: None,
                });
            }
            let alias = match t {
                TableFactor::Table {
                    name,
                    args: Some(_),
                    alias: Some(alias),
                    ..
                } if name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("generate_series")) =>
                {
                    alias
                }
                TableFactor::UNNEST {
                    array_exprs,
                    alias: Some(alias),
                    with_offset: false,
                    with_ordinality: false,
                    ..
                } if array_exprs.len() == 1 => alias,
                _ => return ControlFlow::Continue(()),
            };
            if alias.columns.is_empty() {
                alias.columns = vec![TableAliasColumnDef {
                    name: alias.name.clone(),
                    data_type: None,
                }];
            }
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(node, &mut Aliases);
}

/// `localtimestamp` and `localtime`, SQL's current date and time without
/// a zone (DataFusion looked for columns of those names): `now()` cast to
/// `timestamp` or `time`, a select item of one named as PostgreSQL names
/// it.
fn local_times(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{
        CastKind, DataType, Expr, Ident, SelectItem, TimezoneInfo, VisitorMut,
    };
    fn local(e: &Expr) -> Option<(&'static str, DataType)> {
        // The parser reads the keyword as a call without arguments.
        let Expr::Function(f) = e else { return None };
        if !matches!(
            f.args,
            datafusion::sql::sqlparser::ast::FunctionArguments::None
        ) {
            return None;
        }
        let [part] = f.name.0.as_slice() else {
            return None;
        };
        let i = part.as_ident()?;
        if i.quote_style.is_some() {
            return None;
        }
        match i.value.to_ascii_lowercase().as_str() {
            "localtimestamp" => Some((
                "localtimestamp",
                DataType::Timestamp(None, TimezoneInfo::WithoutTimeZone),
            )),
            "localtime" => Some(("localtime", DataType::Time(None, TimezoneInfo::None))),
            _ => None,
        }
    }
    fn now_as(data_type: DataType) -> Expr {
        Expr::Cast {
            kind: CastKind::Cast,
            expr: Box::new(call("now", vec![], vec![])),
            data_type,
            array: false,
            format: None,
        }
    }
    struct Local;
    impl VisitorMut for Local {
        type Break = ();
        fn pre_visit_select(
            &mut self,
            s: &mut datafusion::sql::sqlparser::ast::Select,
        ) -> ControlFlow<()> {
            for item in s.projection.iter_mut() {
                if let SelectItem::UnnamedExpr(e) = item
                    && let Some((name, t)) = local(e)
                {
                    *item = SelectItem::ExprWithAlias {
                        expr: now_as(t),
                        alias: Ident::new(name),
                    };
                }
            }
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Some((_, t)) = local(e) {
                *e = now_as(t);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(stmt, &mut Local);
}

/// PostgreSQL's definition of the `pg_indexes` view, over the catalog
/// tables Sluice fills in.
const PG_INDEXES: &str = "SELECT n.nspname AS schemaname, c.relname AS tablename, \
     i.relname AS indexname, CAST(NULL AS text) AS tablespace, \
     pg_get_indexdef(i.oid) AS indexdef \
     FROM pg_catalog.pg_index x \
     JOIN pg_catalog.pg_class c ON c.oid = x.indrelid \
     JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid \
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'm', 'p') AND i.relkind IN ('i', 'I')";

/// `pg_indexes` (or `pg_catalog.pg_indexes`) read as the view it is in
/// PostgreSQL (it was an unknown relation).
fn pg_indexes_view(stmt: &mut Statement) -> crate::error::Result<()> {
    use datafusion::sql::sqlparser::ast::{Ident, TableAlias, VisitorMut};
    let ctes = cte_names(stmt);
    let view = super::template::query(PG_INDEXES, &[])?;
    struct Views<'a> {
        view: &'a datafusion::sql::sqlparser::ast::Query,
        ctes: &'a std::collections::HashSet<String>,
    }
    impl VisitorMut for Views<'_> {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
            let TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } = t
            else {
                return ControlFlow::Continue(());
            };
            let parts: Vec<String> = name
                .0
                .iter()
                .filter_map(|p| p.as_ident())
                .map(|i| i.value.to_ascii_lowercase())
                .collect();
            let is_view = match parts.as_slice() {
                [t] => t == "pg_indexes" && !self.ctes.contains(t),
                [s, t] => s == "pg_catalog" && t == "pg_indexes",
                _ => false,
            };
            if is_view {
                let alias = alias.take().unwrap_or(TableAlias {
                    explicit: true,
                    name: Ident::new("pg_indexes"),
                    columns: vec![],
                    at: None,
                });
                *t = TableFactor::Derived {
                    lateral: false,
                    subquery: Box::new(self.view.clone()),
                    alias: Some(alias),
                    sample: None,
                };
            }
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(
        stmt,
        &mut Views {
            view: &view,
            ctes: &ctes,
        },
    );
    Ok(())
}

/// `pg_trigger` is always empty, so the values a query over it alone
/// selects are never computed: its scalar subqueries (psql's correlated
/// "parent trigger" lookup, which DataFusion cannot plan) become NULL.
fn without_trigger_subqueries(stmt: &mut Statement) {
    use crate::visit::visit_expressions_mut;
    use datafusion::sql::sqlparser::ast::{Expr, SetExpr, Value};
    let Statement::Query(q) = stmt else { return };
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    let only_triggers = match select.from.as_slice() {
        [t] => {
            t.joins.is_empty()
                && matches!(&t.relation, TableFactor::Table { name, .. }
                    if name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| i.value.eq_ignore_ascii_case("pg_trigger")))
        }
        _ => false,
    };
    if !only_triggers {
        return;
    }
    for item in select.projection.iter_mut() {
        let _ = visit_expressions_mut(item, |e: &mut Expr| {
            if matches!(e, Expr::Subquery(_)) {
                *e = Expr::Value(Value::Null.into());
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
    }
}

/// A select item that is a relation OID cast to `regclass` shows the
/// relation's name, and a type OID cast to `regtype` the type's, as in
/// PostgreSQL (the
/// compatibility layer turns the cast into the OID). Only whole select
/// items: a regclass inside an expression (compared, cast on to oid)
/// stays an OID.
fn regclass_names(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{DataType, Expr, SelectItem, SetExpr};
    // Cast on to text anywhere, an OID alias is its name
    // (`c.oid::regclass::text = 'orders'`, `p.oid::regprocedure::text`).
    let _ = crate::visit::visit_expressions_mut(stmt, |e: &mut Expr| {
        if let Expr::Cast {
            expr: outer,
            data_type: DataType::Text | DataType::Varchar(_) | DataType::String(_),
            ..
        } = e
            && let Expr::Cast {
                expr: inner,
                data_type,
                ..
            } = outer.as_mut()
        {
            let ty = data_type.to_string().to_ascii_lowercase();
            let name = match ty.trim_start_matches("pg_catalog.") {
                "regclass" => crate::catalog::pg_constraints::REGCLASS_NAME,
                "regtype" => REGTYPE_NAME,
                "regproc" => REGPROC_NAME,
                "regprocedure" => REGPROCEDURE_NAME,
                _ => return ControlFlow::<()>::Continue(()),
            };
            let arg = std::mem::replace(
                inner.as_mut(),
                Expr::Value(datafusion::sql::sqlparser::ast::Value::Null.into()),
            );
            **outer = call(name, vec![arg], vec![]);
        }
        ControlFlow::<()>::Continue(())
    });
    let Statement::Query(q) = stmt else { return };
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    for item in select.projection.iter_mut() {
        let (e, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e.clone(), None),
            SelectItem::ExprWithAlias { expr, alias } => (expr.clone(), Some(alias.clone())),
            _ => continue,
        };
        let Expr::Cast {
            expr, data_type, ..
        } = &e
        else {
            continue;
        };
        // A number cast shows the object's name as well (`870::regproc`).
        if matches!(expr.as_ref(), Expr::Value(v) if !matches!(v.value, datafusion::sql::sqlparser::ast::Value::Number(..)))
        {
            continue;
        }
        let ty = data_type.to_string().to_ascii_lowercase();
        let call = if ty.ends_with("regclass") {
            call(
                crate::catalog::pg_constraints::REGCLASS_NAME,
                vec![expr.as_ref().clone()],
                vec![],
            )
        } else if ty.ends_with("regtype") {
            // A type OID shows as the type's SQL name (`bigint`).
            call(REGTYPE_NAME, vec![expr.as_ref().clone()], vec![])
        } else if ty.ends_with("regprocedure") {
            call(REGPROCEDURE_NAME, vec![expr.as_ref().clone()], vec![])
        } else if ty.ends_with("regproc") {
            call(REGPROC_NAME, vec![expr.as_ref().clone()], vec![])
        } else {
            continue;
        };
        // An alias named like the column would clash with it (ORDER BY).
        *item = match alias {
            Some(alias) => SelectItem::ExprWithAlias { expr: call, alias },
            None => SelectItem::UnnamedExpr(call),
        };
    }
}

/// `make_interval(days => 3)`: PostgreSQL's seven parameters (`years`,
/// `months`, `weeks`, `days`, `hours`, `mins`, `secs`) all default to 0,
/// which DataFusion's named arguments cannot leave out; the call is given
/// all seven, in order. A call with a name it does not have is left as it
/// is, for the planner to refuse.
fn make_interval_arguments(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{
        Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Value,
    };
    const PARAMETERS: [&str; 7] = ["years", "months", "weeks", "days", "hours", "mins", "secs"];
    let _ = crate::visit::visit_expressions_mut(stmt, |e: &mut Expr| {
        if let Expr::Function(f) = e
            && let [.., name] = f.name.0.as_slice()
            && name
                .as_ident()
                .is_some_and(|i| i.value.eq_ignore_ascii_case("make_interval"))
            && let FunctionArguments::List(list) = &mut f.args
            && list.args.len() <= PARAMETERS.len()
        {
            let mut slots: Vec<Option<Expr>> = vec![None; PARAMETERS.len()];
            for (i, arg) in list.args.iter().enumerate() {
                let (slot, x) = match arg {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => (i, x),
                    FunctionArg::Named {
                        name,
                        arg: FunctionArgExpr::Expr(x),
                        ..
                    }
                    | FunctionArg::ExprNamed {
                        name: Expr::Identifier(name),
                        arg: FunctionArgExpr::Expr(x),
                        ..
                    } => match PARAMETERS
                        .iter()
                        .position(|p| name.value.eq_ignore_ascii_case(p))
                    {
                        Some(slot) => (slot, x),
                        None => return ControlFlow::Continue(()),
                    },
                    _ => return ControlFlow::Continue(()),
                };
                if slots[slot].is_some() {
                    return ControlFlow::Continue(());
                }
                slots[slot] = Some(x.clone());
            }
            list.args = slots
                .into_iter()
                .map(|x| {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(
                        x.unwrap_or_else(|| Expr::Value(Value::Number("0".into(), false).into())),
                    ))
                })
                .collect();
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `(s1, e1) OVERLAPS (s2, e2)`: a call of `types::functions::OVERLAPS`
/// with the four ends (DataFusion plans no row values there).
fn overlaps(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr};
    let _ = crate::visit::visit_expressions_mut(stmt, |e: &mut Expr| {
        if let Expr::BinaryOp {
            left,
            op: BinaryOperator::Overlaps,
            right,
        } = e
            && let (Expr::Tuple(a), Expr::Tuple(b)) = (left.as_ref(), right.as_ref())
            && a.len() == 2
            && b.len() == 2
        {
            let args = a.iter().chain(b.iter()).cloned().collect();
            *e = call(crate::types::functions::OVERLAPS, args, vec![]);
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `substring(s FROM 'pattern')` and `substring(s, 'pattern')` (not
/// `substr`, whose second argument is always a position): a text literal
/// where the start position goes is a POSIX regular expression, and the
/// result is the part of `s` it matches, or of its first parenthesized
/// group when it has one: `regexp_match(s, pattern, 's')[1]`, which answers
/// exactly that (`s`: `.` matches a newline, as in PostgreSQL). A select
/// item keeps PostgreSQL's name, `substring`.
fn substring_patterns(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{Expr, Ident, SelectItem, SetExpr, Value};
    let pattern = |e: &Expr| {
        matches!(e, Expr::Substring {
            substring_from: Some(from),
            substring_for: None,
            shorthand: false,
            ..
        } if matches!(from.as_ref(), Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_))))
    };
    if let Statement::Query(q) = stmt
        && let SetExpr::Select(select) = q.body.as_mut()
    {
        for item in select.projection.iter_mut() {
            if let SelectItem::UnnamedExpr(e) = item
                && pattern(e)
            {
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: Ident::new("substring"),
                };
            }
        }
    }
    let _ = crate::visit::visit_expressions_mut(stmt, |e: &mut Expr| {
        if pattern(e)
            && let Expr::Substring {
                expr,
                substring_from: Some(from),
                ..
            } = e
        {
            let text = std::mem::replace(expr.as_mut(), Expr::Value(Value::Null.into()));
            let flags = Expr::Value(Value::SingleQuotedString("s".into()).into());
            let matched = call(
                "regexp_match",
                vec![text, from.as_ref().clone(), flags],
                vec![],
            );
            *e = call(
                "array_element",
                vec![
                    matched,
                    Expr::Value(Value::Number("1".into(), false).into()),
                ],
                vec![],
            );
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `format(fmt, a, ...)`, `concat(a, ...)` and `concat_ws(sep, a, ...)`:
/// each value argument shows as PostgreSQL's output function prints it
/// (`t` for true, `\\x01` for bytea), so it is wrapped in
/// [`crate::types::text::OUTPUT_TEXT`]. The argument of `quote_literal` and
/// `quote_nullable` is cast to text, as theirs is in PostgreSQL (`true`).
/// A text literal, and an explicit cast to text (`true::text` is `true`),
/// stay as they are.
pub fn format_arguments<N: datafusion::sql::sqlparser::ast::VisitMut>(node: &mut N) {
    use crate::visit::visit_expressions_mut;
    use datafusion::sql::sqlparser::ast::{
        DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Value,
    };
    let _ = visit_expressions_mut(node, |e: &mut Expr| {
        if let Expr::Function(f) = e
            && let [.., name] = f.name.0.as_slice()
            && let Some((skip, cast)) = name.as_ident().and_then(|i| {
                let n = i.value.to_ascii_lowercase();
                match n.as_str() {
                    "format" | "concat_ws" => Some((1, false)),
                    "concat" => Some((0, false)),
                    "quote_literal" | "quote_nullable" => Some((0, true)),
                    _ => None,
                }
            })
            && let FunctionArguments::List(list) = &mut f.args
        {
            for arg in list.args.iter_mut().skip(skip) {
                if let FunctionArg::Unnamed(FunctionArgExpr::Expr(a)) = arg
                    && !matches!(
                        a,
                        Expr::Cast {
                            data_type: DataType::Text,
                            ..
                        }
                    )
                    && !matches!(a, Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)))
                {
                    let inner = std::mem::replace(a, Expr::value(Value::Null));
                    *a = if cast {
                        Expr::Cast {
                            kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
                            expr: Box::new(inner),
                            data_type: DataType::Text,
                            array: false,
                            format: None,
                        }
                    } else {
                        call(crate::types::text::OUTPUT_TEXT, vec![inner], vec![])
                    };
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// A call of function `name` with `args` (and clauses such as ORDER BY).
pub fn call(
    name: &str,
    args: Vec<datafusion::sql::sqlparser::ast::Expr>,
    clauses: Vec<datafusion::sql::sqlparser::ast::FunctionArgumentClause>,
) -> datafusion::sql::sqlparser::ast::Expr {
    use datafusion::sql::sqlparser::ast::{
        Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments,
        Ident,
    };
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses,
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// `information_schema._pg_expandarray(array)`, a set of `(x, n)` records
/// (an element and its position), as `unnest` of a list of them: pgjdbc's
/// `getPrimaryKeys` calls it twice in one select list, which unnest in
/// step as PostgreSQL's set-returning functions do.
pub fn expand_array<N: datafusion::sql::sqlparser::ast::VisitMut>(node: &mut N) {
    use crate::visit::visit_expressions_mut;
    use datafusion::sql::sqlparser::ast::{Expr, FunctionArguments};
    let _ = visit_expressions_mut(node, |e: &mut Expr| {
        if let Expr::Function(f) = e
            && f.name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("_pg_expandarray"))
            && let FunctionArguments::List(list) = &f.args
            && list.args.len() == 1
        {
            let args = list.args.clone();
            let mut inner = f.clone();
            inner.name = datafusion::sql::sqlparser::ast::ObjectName::from(vec![
                datafusion::sql::sqlparser::ast::Ident::new(
                    crate::catalog::pg_constraints::EXPAND_ARRAY,
                ),
            ]);
            if let FunctionArguments::List(l) = &mut inner.args {
                l.args = args;
            }
            *e = call("unnest", vec![Expr::Function(inner)], vec![]);
        }
        record_fields(e);
        ControlFlow::<()>::Continue(())
    });
}

/// `(expr).field`, a field of a record-valued expression, as the subscript
/// `(expr)['field']` DataFusion plans for a struct (its dot access takes
/// only column names).
fn record_fields(e: &mut datafusion::sql::sqlparser::ast::Expr) {
    use datafusion::sql::sqlparser::ast::{AccessExpr, Expr, Subscript, Value};
    let Expr::CompoundFieldAccess { root, access_chain } = e else {
        return;
    };
    if !matches!(root.as_ref(), Expr::Nested(_)) {
        return;
    }
    for access in access_chain.iter_mut() {
        if let AccessExpr::Dot(Expr::Identifier(field)) = access {
            let name = if field.quote_style.is_some() {
                field.value.clone()
            } else {
                field.value.to_ascii_lowercase()
            };
            *access = AccessExpr::Subscript(Subscript::Index {
                index: Expr::value(Value::SingleQuotedString(name)),
            });
        }
    }
}

/// `generate_subscripts(array, dim)` (a set-returning function, in the
/// select list beside `unnest(array)` in SQLAlchemy's key and index
/// reflection) becomes `unnest(range(lower, upper + 1))`. Arrays
/// start at 1, except the catalog's `int2vector` / `oidvector` columns
/// (`indkey`, `indclass`, `indoption`, `indcollation`), which start at 0
/// in PostgreSQL.
pub fn generate_subscripts<N: datafusion::sql::sqlparser::ast::VisitMut>(node: &mut N) {
    use crate::visit::visit_expressions_mut;
    use datafusion::sql::sqlparser::ast::{
        BinaryOperator, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Value,
    };
    let _ = visit_expressions_mut(node, |e: &mut Expr| {
        let Expr::Function(f) = e else {
            return ControlFlow::<()>::Continue(());
        };
        let named = f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| i.value.eq_ignore_ascii_case("generate_subscripts"));
        let FunctionArguments::List(list) = &f.args else {
            return ControlFlow::Continue(());
        };
        let args: Vec<&Expr> = list
            .args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x),
                _ => None,
            })
            .collect();
        if !named || args.len() != 2 || list.args.len() != 2 {
            return ControlFlow::Continue(());
        }
        let (array, dim) = (args[0].clone(), args[1].clone());
        let column = match &array {
            Expr::Identifier(i) => Some(i.value.to_ascii_lowercase()),
            Expr::CompoundIdentifier(ids) => ids.last().map(|i| i.value.to_ascii_lowercase()),
            _ => None,
        };
        let vector = column.is_some_and(|c| {
            matches!(
                c.as_str(),
                "indkey" | "indclass" | "indoption" | "indcollation"
            )
        });
        let lower: i64 = if vector { 0 } else { 1 };
        let length = Expr::Cast {
            kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
            expr: Box::new(call("array_length", vec![array, dim], vec![])),
            data_type: DataType::BigInt(None),
            array: false,
            format: None,
        };
        let upper = Expr::BinaryOp {
            left: Box::new(length),
            op: BinaryOperator::Plus,
            right: Box::new(Expr::value(Value::Number(lower.to_string(), false))),
        };
        let lower = Expr::value(Value::Number(lower.to_string(), false));
        // `range` stops before its end (and is not rewritten again as a
        // set-returning `generate_series`).
        *e = call(
            "unnest",
            vec![call("range", vec![lower, upper], vec![])],
            vec![],
        );
        ControlFlow::Continue(())
    });
}

/// `x.tableoid`, the system column, on a `pg_catalog` table `x`: the OID
/// of that catalog table, as `'pg_catalog.x'::regclass` finds it (psql's
/// `\dd` and `\dL` join pg_description's `classoid` with it). An alias
/// is looked up in the SELECT that uses it, then in the enclosing ones.
fn tableoid_columns(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{Expr, Select, TableWithJoins, VisitorMut};
    use std::collections::HashMap;
    /// The `pg_catalog` tables of each enclosing SELECT's FROM, by alias.
    struct Scopes(Vec<HashMap<String, String>>);
    fn catalog_tables(from: &[TableWithJoins], out: &mut HashMap<String, String>) {
        fn factor(t: &TableFactor, out: &mut HashMap<String, String>) {
            match t {
                TableFactor::Table { name, alias, .. } => {
                    let parts: Vec<String> = name
                        .0
                        .iter()
                        .filter_map(|p| p.as_ident())
                        .map(|i| i.value.to_ascii_lowercase())
                        .collect();
                    let table = match parts.as_slice() {
                        [s, t] if s == "pg_catalog" => t.clone(),
                        [t] if t.starts_with("pg_") => t.clone(),
                        _ => return,
                    };
                    let key = alias
                        .as_ref()
                        .map(|a| a.name.value.to_ascii_lowercase())
                        .unwrap_or_else(|| table.clone());
                    out.insert(key, table);
                }
                TableFactor::NestedJoin {
                    table_with_joins, ..
                } => catalog_tables(std::slice::from_ref(table_with_joins), out),
                _ => {}
            }
        }
        for t in from {
            factor(&t.relation, out);
            for j in &t.joins {
                factor(&j.relation, out);
            }
        }
    }
    impl VisitorMut for Scopes {
        type Break = ();
        fn pre_visit_select(&mut self, s: &mut Select) -> ControlFlow<()> {
            let mut scope = HashMap::new();
            catalog_tables(&s.from, &mut scope);
            self.0.push(scope);
            ControlFlow::Continue(())
        }
        fn post_visit_select(&mut self, _: &mut Select) -> ControlFlow<()> {
            self.0.pop();
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Expr::CompoundIdentifier(parts) = e
                && let [alias, column] = parts.as_slice()
                && column.value.eq_ignore_ascii_case("tableoid")
            {
                let alias = alias.value.to_ascii_lowercase();
                if let Some(table) = self.0.iter().rev().find_map(|s| s.get(&alias))
                    && let Some(lookup) = relation_lookup(&format!("pg_catalog.{table}"))
                {
                    *e = lookup;
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = crate::visit::walk_mut(stmt, &mut Scopes(Vec::new()));
}

/// `'t'::regclass`, `'s.t'::regclass`: the relation's OID, found as
/// PostgreSQL finds it. A one-part name is looked up in `pg_catalog` and
/// then along the session's search path (`current_schemas(true)`, which
/// lists exactly that), the first match winning; a two-part name in its
/// schema. A name nothing matches is `42P01`. The cast stays around the
/// lookup, so a select item shows the relation's name. A type name cast
/// to `regtype` is looked up as `to_regtype` does, by any SQL spelling of
/// the type (`bigint`, `int8`, `character varying`), `42704` when none.
fn regclass_literals(stmt: &mut Statement) {
    use crate::visit::visit_expressions_mut;
    use datafusion::sql::sqlparser::ast::{Expr, Value};
    let _ = visit_expressions_mut(stmt, |e: &mut Expr| {
        // `'bigint'::regtype`: the type's OID by any of its SQL names.
        if let Expr::Cast {
            expr, data_type, ..
        } = e
            && data_type
                .to_string()
                .to_ascii_lowercase()
                .trim_start_matches("pg_catalog.")
                == "regtype"
            && let Expr::Value(v) = expr.as_ref()
            && let Value::SingleQuotedString(text) = &v.value
            && !text.bytes().all(|b| b.is_ascii_digit())
        {
            let name = Expr::value(Value::SingleQuotedString(text.clone()));
            **expr = call(REGTYPE_FOUND, vec![name], vec![]);
            return ControlFlow::Continue(());
        }
        // `'lower'::regproc`, `'upper(text)'::regprocedure`: the one
        // function named, `42725` when the name has overloads.
        if let Expr::Cast {
            expr, data_type, ..
        } = e
            && let Some(lookup) = match data_type
                .to_string()
                .to_ascii_lowercase()
                .trim_start_matches("pg_catalog.")
            {
                "regproc" => Some(REGPROC_FOUND),
                "regprocedure" => Some(REGPROCEDURE_FOUND),
                _ => None,
            }
            && let Expr::Value(v) = expr.as_ref()
            && let Value::SingleQuotedString(text) = &v.value
            && !text.bytes().all(|b| b.is_ascii_digit())
        {
            let name = Expr::value(Value::SingleQuotedString(text.clone()));
            **expr = call(lookup, vec![name], vec![]);
            return ControlFlow::Continue(());
        }
        // `to_regclass('name')`: the relation's OID, NULL when there is none.
        if let Expr::Function(f) = e
            && let [part] = f.name.0.as_slice()
            && part
                .as_ident()
                .is_some_and(|i| i.value.eq_ignore_ascii_case("to_regclass"))
            && let datafusion::sql::sqlparser::ast::FunctionArguments::List(list) = &f.args
            && let [
                datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                    datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(Expr::Value(v)),
                ),
            ] = list.args.as_slice()
            && let Value::SingleQuotedString(text) = &v.value
        {
            *e = Expr::Cast {
                kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
                expr: Box::new(relation_lookup(text).unwrap_or_else(|| Expr::value(Value::Null))),
                data_type: datafusion::sql::sqlparser::ast::DataType::Regclass,
                array: false,
                format: None,
            };
            return ControlFlow::Continue(());
        }
        if let Expr::Cast {
            expr, data_type, ..
        } = e
            && is_regclass(data_type)
            && let Expr::Value(v) = expr.as_ref()
            && let Value::SingleQuotedString(text) = &v.value
            && !text.bytes().all(|b| b.is_ascii_digit())
            && let Some(lookup) = relation_lookup(text)
        {
            **expr = call(
                REGCLASS_FOUND,
                vec![lookup, Expr::value(Value::SingleQuotedString(text.clone()))],
                vec![],
            );
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `(SELECT c.oid FROM pg_class c JOIN pg_namespace n ... LIMIT 1)` for the
/// relation `text` names; None when `text` is not a relation name.
fn relation_lookup(text: &str) -> Option<datafusion::sql::sqlparser::ast::Expr> {
    use datafusion::sql::sqlparser::ast::{Expr, Value};
    use std::sync::OnceLock;
    static TEMPLATES: OnceLock<[Expr; 2]> = OnceLock::new();
    let [bare, qualified] = TEMPLATES.get_or_init(|| {
        let parse = |sql: &str| {
            let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
            datafusion::sql::sqlparser::parser::Parser::new(&dialect)
                .try_with_sql(sql)
                .and_then(|mut p| p.parse_expr())
                .expect("the regclass lookup parses")
        };
        let from = "SELECT c.oid FROM pg_catalog.pg_class c \
                    JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid";
        [
            parse(&format!(
                "({from} WHERE c.relname = $1 \
                 AND array_position(current_schemas(true), n.nspname) IS NOT NULL \
                 ORDER BY array_position(current_schemas(true), n.nspname) LIMIT 1)"
            )),
            parse(&format!(
                "({from} WHERE n.nspname = $1 AND c.relname = $2 LIMIT 1)"
            )),
        ]
    });
    let parts = crate::types::ident::parse_ident(text, true).ok()?;
    let (template, values) = match parts.as_slice() {
        [name] => (bare, vec![name.clone()]),
        [schema, name] | [_, schema, name] => (qualified, vec![schema.clone(), name.clone()]),
        _ => return None,
    };
    let mut lookup = template.clone();
    let _ = crate::visit::visit_expressions_mut(&mut lookup, |e: &mut Expr| {
        if let Expr::Value(v) = e
            && let Value::Placeholder(p) = &v.value
            && let Some(value) = p
                .trim_start_matches('$')
                .parse::<usize>()
                .ok()
                .and_then(|i| values.get(i - 1))
        {
            *e = Expr::value(Value::SingleQuotedString(value.clone()));
        }
        ControlFlow::<()>::Continue(())
    });
    Some(lookup)
}

/// pg_type's function columns hold function names here: a comparison
/// with a `'[schema.]name'::regproc` literal (pgjdbc's
/// `typinput = 'pg_catalog.array_in'::regproc`) compares the name.
fn regproc_names(stmt: &mut Statement) {
    use crate::visit::visit_expressions_mut;
    use datafusion::sql::sqlparser::ast::{BinaryOperator, DataType, Expr, Value};
    let literal = |e: &Expr| -> Option<String> {
        let Expr::Cast {
            expr, data_type, ..
        } = e
        else {
            return None;
        };
        let DataType::Custom(name, _) = data_type else {
            return None;
        };
        let is_regproc = name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| i.value.eq_ignore_ascii_case("regproc"));
        match expr.as_ref() {
            Expr::Value(v) if is_regproc => match &v.value {
                Value::SingleQuotedString(s) => Some(
                    s.rsplit('.')
                        .next()
                        .unwrap_or(s)
                        .trim_matches('"')
                        .to_string(),
                ),
                _ => None,
            },
            _ => None,
        }
    };
    let _ = visit_expressions_mut(stmt, |e: &mut Expr| {
        if let Expr::BinaryOp { left, op, right } = e
            && matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq)
        {
            let name = |x: &str| Expr::value(Value::SingleQuotedString(x.to_string()));
            if regproc_column(left)
                && let Some(n) = literal(right)
            {
                **right = name(&n);
            } else if regproc_column(right)
                && let Some(n) = literal(left)
            {
                **left = name(&n);
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// A column of pg_type that names a function (`regproc` in PostgreSQL).
fn regproc_column(e: &datafusion::sql::sqlparser::ast::Expr) -> bool {
    use datafusion::sql::sqlparser::ast::Expr;
    let name = match e {
        Expr::Identifier(i) => &i.value,
        Expr::CompoundIdentifier(ids) => match ids.last() {
            Some(i) => &i.value,
            None => return false,
        },
        _ => return false,
    };
    matches!(
        name.to_ascii_lowercase().as_str(),
        "typinput"
            | "typoutput"
            | "typreceive"
            | "typsend"
            | "typmodin"
            | "typmodout"
            | "typanalyze"
            | "typsubscript"
    )
}

/// pg_type's function columns (`typreceive`, `typsend`, ...) are `regproc`
/// in PostgreSQL, and 0 is "no function", which it prints as `-`; here
/// they hold the printed name, so `typreceive != 0` (ADBC's type query)
/// compares with `-`.
fn regproc_zero(stmt: &mut Statement) {
    use crate::visit::visit_expressions_mut;
    use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, Value};
    let regproc = regproc_column;
    let _ = visit_expressions_mut(stmt, |e: &mut Expr| {
        if let Expr::BinaryOp { left, op, right } = e
            && matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq)
        {
            let zero = |x: &Expr| matches!(x, Expr::Value(v) if matches!(&v.value, Value::Number(n, _) if n == "0"));
            let dash = || Expr::value(Value::SingleQuotedString("-".into()));
            if regproc(left) && zero(right) {
                **right = dash();
            } else if regproc(right) && zero(left) {
                **left = dash();
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `ROLLUP (a.k, k)`, `CUBE (x, x)`: a key named twice is spelled out as
/// the grouping sets it stands for (`GROUPING SETS ((a.k, k), (a.k), ())`),
/// whose sets may repeat a key, as PostgreSQL allows; planned as written
/// the aggregate's schema named the key twice (`XX000`). Keys are told
/// apart by their last name only: spelling out a rollup or cube whose keys
/// only look alike is the same grouping.
fn repeated_rollup_keys(stmt: &mut Statement) {
    use crate::visit::visit_expressions_mut;
    use datafusion::sql::sqlparser::ast::Expr;
    /// Cubes of more keys keep their form (2^n sets).
    const MAX_CUBE: usize = 8;
    let last_name = |e: &Expr| match e {
        Expr::Identifier(i) => i.value.to_ascii_lowercase(),
        Expr::CompoundIdentifier(ids) => ids
            .last()
            .map(|i| i.value.to_ascii_lowercase())
            .unwrap_or_default(),
        other => other.to_string(),
    };
    let _ = visit_expressions_mut(stmt, |e: &mut Expr| {
        let (elements, cube) = match e {
            Expr::Rollup(v) => (v, false),
            Expr::Cube(v) if v.len() <= MAX_CUBE => (v, true),
            _ => return ControlFlow::<()>::Continue(()),
        };
        let names: Vec<String> = elements.iter().flatten().map(last_name).collect();
        let unique: std::collections::HashSet<&String> = names.iter().collect();
        if unique.len() == names.len() {
            return ControlFlow::Continue(());
        }
        let n = elements.len();
        let sets: Vec<Vec<Expr>> = if cube {
            (0..1usize << n)
                .rev()
                .map(|mask| {
                    (0..n)
                        .filter(|i| mask & (1 << (n - 1 - i)) != 0)
                        .flat_map(|i| elements[i].clone())
                        .collect()
                })
                .collect()
        } else {
            (0..=n)
                .rev()
                .map(|k| elements[..k].iter().flatten().cloned().collect())
                .collect()
        };
        *e = Expr::GroupingSets(sets);
        ControlFlow::Continue(())
    });
}
