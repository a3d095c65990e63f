//! PostgreSQL's array functions where DataFusion's of the same name answer
//! differently: `array_remove` and `array_replace` act on every element
//! equal to (not distinct from) the value, NULL included (DataFusion's act
//! on the first only, and a NULL value makes the result NULL), and
//! `array_dims` is the text `[1:3]` (DataFusion's is a list of lengths).
//! And `x = ANY(array)` of numerics of different types compares them at a
//! common type, as PostgreSQL does (see [`ArrayElementTypes`]).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, ListArray, StringArray, UInt32Array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::kernels::{cmp, zip::zip};
use datafusion::arrow::compute::{filter, not, take};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::exec_err;
use datafusion::error::Result;
use datafusion::functions::utils::make_scalar_function;
use datafusion::logical_expr::{
    ArrayFunctionArgument, ArrayFunctionSignature, ColumnarValue, ReturnFieldArgs,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Edit {
    Remove,
    Replace,
}

/// `array_remove(array, value)` and `array_replace(array, value, with)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayEdit {
    edit: Edit,
    signature: Signature,
}

impl ScalarUDFImpl for ArrayEdit {
    fn name(&self) -> &str {
        match self.edit {
            Edit::Remove => "array_remove",
            Edit::Replace => "array_replace",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(
            args.arg_fields[0].as_ref().clone().with_nullable(true),
        ))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        make_scalar_function(|a: &[ArrayRef]| edit(&a[0], &a[1], a.get(2)), vec![])(&args.args)
    }
}

/// The list column `list` with each element not distinct from its row's
/// `target` removed, or replaced by its row's `with`.
fn edit(list: &ArrayRef, target: &ArrayRef, with: Option<&ArrayRef>) -> Result<ArrayRef> {
    let DataType::List(field) = list.data_type() else {
        return exec_err!("array_remove/array_replace of a {}", list.data_type());
    };
    let list = list.as_list::<i32>();
    let offsets: Vec<usize> = list.value_offsets().iter().map(|o| *o as usize).collect();
    let (start, end) = (offsets[0], offsets[offsets.len() - 1]);
    let values = list.values().slice(start, end - start);
    // The row each element belongs to, to line the targets up with them.
    let mut row_of = Vec::with_capacity(values.len());
    for row in 0..list.len() {
        row_of.extend(std::iter::repeat_n(
            row as u32,
            offsets[row + 1] - offsets[row],
        ));
    }
    let row_of = UInt32Array::from(row_of);
    let targets = take(target.as_ref(), &row_of, None)?;
    let same: BooleanArray = cmp::not_distinct(&values, &targets)?;
    let (values, offsets) = match (with, list.len()) {
        (Some(with), _) => {
            let with = take(with.as_ref(), &row_of, None)?;
            let replaced = zip(&same, &with, &values)?;
            let shifted: Vec<i32> = offsets.iter().map(|o| (o - start) as i32).collect();
            (replaced, shifted)
        }
        (None, rows) => {
            let keep = not(&same)?;
            let kept = filter(&values, &keep)?;
            let mut shifted = Vec::with_capacity(rows + 1);
            shifted.push(0i32);
            let mut n = 0i32;
            for row in 0..rows {
                for i in offsets[row]..offsets[row + 1] {
                    if keep.value(i - start) {
                        n += 1;
                    }
                }
                shifted.push(n);
            }
            (kept, shifted)
        }
    };
    Ok(Arc::new(ListArray::try_new(
        field.clone(),
        OffsetBuffer::new(offsets.into()),
        values,
        list.nulls().cloned(),
    )?))
}

/// `array_dims(array)`: `[1:3]`, `[1:2][1:3]` for an array of arrays;
/// NULL for an empty array (also `{{}}`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayDims {
    signature: Signature,
}

impl ScalarUDFImpl for ArrayDims {
    fn name(&self) -> &str {
        "array_dims"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        make_scalar_function(|a: &[ArrayRef]| dims(&a[0]), vec![])(&args.args)
    }
}

/// The text of [`ArrayDims`] for each row of `input`.
fn dims(input: &ArrayRef) -> Result<ArrayRef> {
    Ok(match input.data_type() {
        DataType::List(_) => {
            let list = input.as_list::<i32>();
            Arc::new(
                (0..list.len())
                    .map(|row| {
                        if list.is_null(row) {
                            return None;
                        }
                        let mut dims = String::new();
                        let mut level = list.value(row);
                        loop {
                            // An empty array, at any depth, has no
                            // dimensions: `{{}}` is `{}`.
                            if level.is_empty() {
                                return None;
                            }
                            dims.push_str(&format!("[1:{}]", level.len()));
                            match level.data_type() {
                                DataType::List(_) if !level.is_null(0) => {
                                    level = level.as_list::<i32>().value(0);
                                }
                                _ => break,
                            }
                        }
                        (!dims.is_empty()).then_some(dims)
                    })
                    .collect::<StringArray>(),
            )
        }
        DataType::Null => Arc::new(StringArray::new_null(input.len())),
        other => return exec_err!("array_dims of a {other}, not an array"),
    })
}

/// The function [`OrNullElement`] is registered as.
pub const OR_NULL_ELEMENT: &str = "sluice_or_null_element";

/// `sluice_or_null_element(list)`: the list, or a list of one NULL where it
/// is empty or NULL, so that `unnest` of it keeps the row: how a
/// set-returning function joined with `LEFT JOIN LATERAL ... ON true`
/// keeps a row it has no output for, as NULLs.
#[derive(Debug, PartialEq, Eq, Hash)]
struct OrNullElement {
    signature: Signature,
}

impl ScalarUDFImpl for OrNullElement {
    fn name(&self) -> &str {
        OR_NULL_ELEMENT
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match &args[0] {
            DataType::List(field) => Ok(DataType::List(Arc::new(
                field.as_ref().clone().with_nullable(true),
            ))),
            other => exec_err!("{OR_NULL_ELEMENT} of a {other}, not an array"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        make_scalar_function(|a: &[ArrayRef]| or_null_element(&a[0]), vec![])(&args.args)
    }
}

fn or_null_element(input: &ArrayRef) -> Result<ArrayRef> {
    use datafusion::arrow::array::{MutableArrayData, make_array};
    let DataType::List(field) = input.data_type() else {
        return exec_err!("{OR_NULL_ELEMENT} of a {}, not an array", input.data_type());
    };
    let list = input.as_list::<i32>();
    let values = list.values().to_data();
    let mut out = MutableArrayData::new(vec![&values], true, values.len() + list.len());
    let mut offsets = Vec::with_capacity(list.len() + 1);
    offsets.push(0i32);
    let mut n = 0i32;
    for row in 0..list.len() {
        let (start, end) = (
            list.value_offsets()[row] as usize,
            list.value_offsets()[row + 1] as usize,
        );
        if list.is_null(row) || start == end {
            out.try_extend_nulls(1)?;
            n += 1;
        } else {
            out.try_extend(0, start, end)?;
            n += (end - start) as i32;
        }
        offsets.push(n);
    }
    Ok(Arc::new(ListArray::try_new(
        Arc::new(field.as_ref().clone().with_nullable(true)),
        OffsetBuffer::new(offsets.into()),
        make_array(out.freeze()),
        None,
    )?))
}

/// Register the functions of this module in place of DataFusion's.
pub fn register(ctx: &datafusion::prelude::SessionContext) {
    let array = |arguments: Vec<ArrayFunctionArgument>| Signature {
        type_signature: TypeSignature::ArraySignature(ArrayFunctionSignature::Array {
            arguments,
            array_coercion: Some(datafusion::common::utils::ListCoercion::FixedSizedListToList),
        }),
        volatility: Volatility::Immutable,
        parameter_names: None,
    };
    use ArrayFunctionArgument::{Array as A, Element as E};
    ctx.register_udf(ScalarUDF::new_from_impl(ArrayEdit {
        edit: Edit::Remove,
        signature: array(vec![A, E]),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(ArrayEdit {
        edit: Edit::Replace,
        signature: array(vec![A, E, E]),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(ArrayDims {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(OrNullElement {
        signature: Signature::any(1, Volatility::Immutable),
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int32Array;
    use datafusion::arrow::datatypes::Int32Type;

    fn lists(rows: Vec<Option<Vec<Option<i32>>>>) -> ArrayRef {
        Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(rows))
    }

    #[test]
    fn an_empty_or_null_list_becomes_one_null_element() {
        let out = or_null_element(&lists(vec![
            Some(vec![Some(1), Some(2)]),
            Some(vec![]),
            None,
            Some(vec![None, Some(3)]),
        ]))
        .unwrap();
        let expected = lists(vec![
            Some(vec![Some(1), Some(2)]),
            Some(vec![None]),
            Some(vec![None]),
            Some(vec![None, Some(3)]),
        ]);
        assert_eq!(out.as_ref(), expected.as_ref());
    }

    #[test]
    fn remove_and_replace_every_equal_element() {
        let list = lists(vec![
            Some(vec![Some(1), Some(2), Some(1), None]),
            None,
            Some(vec![None, Some(3)]),
        ]);
        let target: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), Some(1), None]));
        let removed = edit(&list, &target, None).unwrap();
        assert_eq!(
            removed.as_ref(),
            lists(vec![Some(vec![Some(2), None]), None, Some(vec![Some(3)])]).as_ref()
        );
        let with: ArrayRef = Arc::new(Int32Array::from(vec![9, 9, 0]));
        let replaced = edit(&list, &target, Some(&with)).unwrap();
        assert_eq!(
            replaced.as_ref(),
            lists(vec![
                Some(vec![Some(9), Some(2), Some(9), None]),
                None,
                Some(vec![Some(0), Some(3)]),
            ])
            .as_ref()
        );
        // A slice of a list column keeps its rows.
        let tail = list.slice(2, 1);
        let one: ArrayRef = Arc::new(Int32Array::from(vec![Some(3)]));
        assert_eq!(
            edit(&tail, &one, None).unwrap().as_ref(),
            lists(vec![Some(vec![None])]).as_ref()
        );
    }
}

/// `x op ANY/ALL (array)` (and `IN` a subquery compared as an array) of
/// numerics of different precisions or scales, or a float beside a
/// numeric: DataFusion plans them with `array_has(array, x)`, whose
/// coercion turns no array of one numeric type into another (`price =
/// ANY(ARRAY[1.5, 2.25])` was `42804`). An analyzer rule, ahead of type
/// coercion, casts both to their common type: a float when one is a float
/// (as PostgreSQL compares a numeric with a float), else the decimal both
/// fit in.
#[derive(Debug, Default)]
pub struct ArrayElementTypes;

impl datafusion::optimizer::AnalyzerRule for ArrayElementTypes {
    fn name(&self) -> &str {
        "sluice_array_element_types"
    }

    fn analyze(
        &self,
        plan: datafusion::logical_expr::LogicalPlan,
        _: &datafusion::common::config::ConfigOptions,
    ) -> Result<datafusion::logical_expr::LogicalPlan> {
        // The casts change no output type (`array_has` is a boolean), so
        // the plan's schemas stand.
        super::rewrite_expressions(plan, |x, schema| Ok(common_element_type(x, schema)))
    }
}

/// `array_has(array, x)` with both cast to the common type of the
/// array's elements and `x`, when they are numerics of different types
/// one of which is a decimal.
fn common_element_type(
    e: datafusion::logical_expr::Expr,
    schema: &datafusion::common::DFSchema,
) -> datafusion::common::tree_node::Transformed<datafusion::logical_expr::Expr> {
    use datafusion::common::tree_node::Transformed;
    use datafusion::logical_expr::type_coercion::binary::comparison_coercion;
    use datafusion::logical_expr::{Expr, ExprSchemable, cast};
    let Expr::ScalarFunction(f) = &e else {
        return Transformed::no(e);
    };
    if f.name() != "array_has" {
        return Transformed::no(e);
    }
    let [array, x] = f.args.as_slice() else {
        return Transformed::no(e);
    };
    let (Ok(DataType::List(element)), Ok(t)) = (array.get_type(schema), x.get_type(schema)) else {
        return Transformed::no(e);
    };
    let element = element.data_type();
    let mismatched = element != &t
        && element.is_numeric()
        && t.is_numeric()
        && (element.is_decimal() || t.is_decimal());
    if !mismatched {
        return Transformed::no(e);
    }
    let common = if element.is_floating() || t.is_floating() {
        Some(DataType::Float64)
    } else {
        comparison_coercion(element, &t)
    };
    let Some(common) = common else {
        return Transformed::no(e);
    };
    let args = vec![
        cast(array.clone(), DataType::new_list(common.clone(), true)),
        cast(x.clone(), common),
    ];
    let mut f = f.clone();
    f.args = args;
    Transformed::yes(Expr::ScalarFunction(f))
}
