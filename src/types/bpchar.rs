//! `character(n)` (`bpchar`): a value is stored without trailing spaces,
//! which carry no meaning for it in PostgreSQL (comparisons, `length`,
//! `||` and casts to text ignore them), and is shown padded with spaces to
//! `n` characters, as PostgreSQL stores and prints it.
//!
//! ```text
//!  INSERT 'a ' ──trim──▶ stored 'a' ──result column char(3)──▶ shown 'a  '
//! ```
//!
//! Where PostgreSQL does see the padding (`LIKE`, `octet_length`,
//! `concat`) the planner pads the column first (see
//! `engine::result_types::CharSemantics`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use pgwire::api::Type;

/// The width a column of type `ty` with modifier `typmod` is shown at: `n`
/// for `character(n)`.
pub fn width(ty: &Type, typmod: i32) -> Option<usize> {
    (*ty == Type::BPCHAR && typmod > 4).then(|| (typmod - 4) as usize)
}

/// `col`'s strings padded with spaces to `width` characters (a longer value
/// is kept whole); `None` when `col` is not text.
pub fn pad(col: &ArrayRef, width: usize) -> Option<ArrayRef> {
    let padded = |v: &str, out: &mut String| {
        out.clear();
        out.push_str(v);
        let n = v.chars().count();
        out.extend(std::iter::repeat_n(' ', width.saturating_sub(n)));
    };
    // Reserved up to 1 MiB: a wide declared width (char(10485760)) grows
    // the buffer as values come, not all at once.
    let mut b =
        StringBuilder::with_capacity(col.len(), col.len().saturating_mul(width).min(1 << 20));
    let mut buf = String::with_capacity(width);
    let mut push = |v: Option<&str>| match v {
        Some(v) => {
            padded(v, &mut buf);
            b.append_value(&buf);
        }
        None => b.append_null(),
    };
    match col.data_type() {
        DataType::Utf8 => col.as_string::<i32>().iter().for_each(&mut push),
        DataType::LargeUtf8 => col.as_string::<i64>().iter().for_each(&mut push),
        DataType::Utf8View => col.as_string_view().iter().for_each(&mut push),
        _ => return None,
    }
    Some(Arc::new(b.finish()))
}

/// The function a cast to `character(n)` is planned with
/// (`'a'::char(3)` is `sluice_bpchar(left(CAST('a' AS text), 3), ' ')`):
/// `rtrim`, under a name of its own so that the planner knows the value
/// is a `character(n)` one (see `engine::char_semantics`).
pub const CAST: &str = "sluice_bpchar";

#[derive(Debug, PartialEq, Eq, Hash)]
struct CharCast {
    inner: datafusion::logical_expr::ScalarUDF,
}

impl datafusion::logical_expr::ScalarUDFImpl for CharCast {
    fn name(&self) -> &str {
        CAST
    }
    fn signature(&self) -> &datafusion::logical_expr::Signature {
        self.inner.signature()
    }
    fn coerce_types(&self, args: &[DataType]) -> datafusion::error::Result<Vec<DataType>> {
        self.inner.coerce_types(args)
    }
    fn return_type(&self, args: &[DataType]) -> datafusion::error::Result<DataType> {
        self.inner.return_type(args)
    }
    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::error::Result<datafusion::logical_expr::ColumnarValue> {
        self.inner.invoke_with_args(args)
    }
}

/// [`CAST`] as a UDF.
pub fn cast_udf() -> datafusion::logical_expr::ScalarUDF {
    datafusion::logical_expr::ScalarUDF::new_from_impl(CharCast {
        inner: datafusion::functions::string::rtrim().as_ref().clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{StringArray, StringViewArray};

    #[test]
    fn values_are_padded_to_the_declared_width_in_characters() {
        let col: ArrayRef = Arc::new(StringArray::from(vec![
            Some("a"),
            None,
            Some(""),
            Some("é"),
            Some("abcd"),
        ]));
        let out = pad(&col, 3).unwrap();
        let out = out.as_string::<i32>();
        assert_eq!(out.value(0), "a  ");
        assert!(out.is_null(1));
        assert_eq!(out.value(2), "   ");
        assert_eq!(out.value(3), "é  ");
        assert_eq!(out.value(4), "abcd");
        let view: ArrayRef = Arc::new(StringViewArray::from(vec!["xy"]));
        assert_eq!(pad(&view, 4).unwrap().as_string::<i32>().value(0), "xy  ");
        let ints: ArrayRef = Arc::new(datafusion::arrow::array::Int32Array::from(vec![1]));
        assert!(pad(&ints, 3).is_none());
    }

    #[test]
    fn the_width_comes_from_the_declared_type() {
        assert_eq!(width(&Type::BPCHAR, 7), Some(3));
        assert_eq!(width(&Type::BPCHAR, -1), None);
        assert_eq!(width(&Type::VARCHAR, 7), None);
    }
}
