//! `json_build_object(key, value, ...)`, as PostgreSQL builds the text:
//! `{"a" : 1, "b" : "x"}` (SQLAlchemy's column reflection asks for it).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::jsonb::quote;
use crate::error::{Error, ErrorKind};

#[derive(Debug, PartialEq, Eq, Hash)]
struct BuildObject {
    signature: Signature,
}

pub fn json_build_object() -> ScalarUDF {
    use datafusion::logical_expr::TypeSignature;
    ScalarUDF::new_from_impl(BuildObject {
        signature: Signature::one_of(
            vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
            Volatility::Stable,
        ),
    })
}

impl ScalarUDFImpl for BuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !args.args.len().is_multiple_of(2) {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "argument list must have even number of elements",
            )
            .with_hint(
                "The arguments of json_build_object() must consist of alternating keys and values.",
            )
            .into());
        }
        let n = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let keys = arrays
            .iter()
            .step_by(2)
            .map(|a| cast(a, &DataType::Utf8))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let values = arrays
            .iter()
            .skip(1)
            .step_by(2)
            .map(super::json_fns::to_json_texts)
            .collect::<Result<Vec<_>>>()?;
        let mut out = StringBuilder::new();
        for row in 0..n {
            let mut text = String::from("{");
            for (i, (key, value)) in keys.iter().zip(&values).enumerate() {
                let key = key.as_string::<i32>();
                if key.is_null(row) {
                    return Err(DataFusionError::from(Error::new(
                        ErrorKind::NullValueNotAllowed,
                        "null value not allowed for object key",
                    )));
                }
                if i > 0 {
                    text.push_str(", ");
                }
                quote(&mut text, key.value(row));
                text.push_str(" : ");
                text.push_str(value[row].as_deref().unwrap_or("null"));
            }
            text.push('}');
            out.append_value(text);
        }
        let array: ArrayRef = Arc::new(out.finish());
        Ok(ColumnarValue::Array(array))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn objects_read_as_postgres_writes_them() {
        let ctx = SessionContext::new();
        ctx.register_udf(json_build_object());
        let batches = ctx
            .sql(
                "SELECT json_build_object('a', 1, 'b', 'x\"y', 'c', NULL, 'd', true, 'e', 1.5), \
                        json_build_object()",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let row = |c: usize| batches[0].column(c).as_string::<i32>().value(0).to_string();
        assert_eq!(
            row(0),
            r#"{"a" : 1, "b" : "x\"y", "c" : null, "d" : true, "e" : 1.5}"#
        );
        assert_eq!(row(1), "{}");
        let odd = ctx.sql("SELECT json_build_object('a')").await;
        let err = match odd {
            Ok(df) => df.collect().await.unwrap_err(),
            Err(e) => e,
        };
        assert!(err.to_string().contains("even number"), "{err}");
    }
}
