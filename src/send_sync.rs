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
