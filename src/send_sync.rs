//! `Send` and `Sync` for the types every async function holds, stated once.
//!
//! The compiler proves an async function's future `Send` by walking the
//! type of everything it holds across an `.await`, field by field down to
//! DataFusion's session state and the Delta tables; it does not keep the
//! proof of a struct from one future to the next. With `Engine`, `Session`
//! and the lake's types reached that way in every future, those walks were
//! a quarter of this crate's build time. For the types listed with
//! [`send_sync_by_fields`] the proof is one impl instead: the macro
//! implements `Send` and `Sync` and checks, once, that every field is
//! both, naming the fields without `..` so that a new field must be named
//! (and checked) too.
//!
//! A proof is kept for the next future only when it was made under the
//! same bounds. `#[async_trait]` writes bounds that name the implementing
//! type (`Self: 'async_trait`, one lifetime per reference), so each of its
//! methods walked DataFusion's expressions, plans and sqlparser's
//! statements afresh: those walks were three quarters of the crate's
//! type checking (about 100 of 130 seconds). Traits of this crate return
//! [`crate::error::ResultFuture`] instead, whose implementations box the
//! future under no bounds; methods of other crates' `#[async_trait]`
//! traits pass on a future boxed by a function of one lifetime
//! ([`scan_by`], [`schema_table_by`], or written out), and a generic
//! method (pgwire's, over its client type) awaits futures boxed that way.

/// Implement `Send` and `Sync` for a struct whose fields are all `Send`
/// and `Sync`, which the expansion checks (see the module documentation).
/// Use it in the module that defines the struct, listing every field.
macro_rules! send_sync_by_fields {
    ($ty:ident { $($field:ident),+ $(,)? }) => {
        // SAFETY: every field is `Send` and `Sync`: the function below
        // requires it of each, and destructures without `..`, so it stops
        // compiling when a field is added and not listed here.
        unsafe impl Send for $ty {}
        unsafe impl Sync for $ty {}
        const _: () = {
            #[allow(dead_code)]
            fn every_field_is_send_and_sync(value: &$ty) {
                fn check<T: Send + Sync + ?Sized>(_: &T) {}
                let $ty { $($field),+ } = value;
                $( check($field); )+
            }
        };
    };
}

pub(crate) use send_sync_by_fields;

/// DataFusion's `TableProvider::scan`, implemented by `$f(self, state,
/// projection, filters, limit)`: a function of one lifetime returning a
/// boxed `Send` future.
///
/// `#[async_trait]` would prove that future `Send` under bounds that name
/// the implementing type (`Self: 'async_trait`), so the proof, which walks
/// DataFusion's expressions and plans, is made again for every
/// implementation (see [`crate::error::ResultFuture`]). Here the trait's
/// method only passes the future on, and `$f` makes the proof under no
/// bounds, where it is made once for the crate.
macro_rules! scan_by {
    ($f:path) => {
        fn scan<'life0, 'life1, 'life2, 'life3, 'async_trait>(
            &'life0 self,
            state: &'life1 dyn datafusion::catalog::Session,
            projection: Option<&'life2 Vec<usize>>,
            filters: &'life3 [datafusion::logical_expr::Expr],
            limit: Option<usize>,
        ) -> futures::future::BoxFuture<
            'async_trait,
            datafusion::error::Result<std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>>,
        >
        where
            'life0: 'async_trait,
            'life1: 'async_trait,
            'life2: 'async_trait,
            'life3: 'async_trait,
            Self: 'async_trait,
        {
            $f(self, state, projection, filters, limit)
        }
    };
}

/// DataFusion's `SchemaProvider::table`, implemented by `$f(self, name)`
/// as [`scan_by`] implements `scan`.
macro_rules! schema_table_by {
    ($f:path) => {
        fn table<'life0, 'life1, 'async_trait>(
            &'life0 self,
            name: &'life1 str,
        ) -> futures::future::BoxFuture<
            'async_trait,
            datafusion::error::Result<
                Option<std::sync::Arc<dyn datafusion::catalog::TableProvider>>,
            >,
        >
        where
            'life0: 'async_trait,
            'life1: 'async_trait,
            Self: 'async_trait,
        {
            $f(self, name)
        }
    };
}

pub(crate) use {scan_by, schema_table_by};
