//! `chr(n)`: the character with code point `n`, refused as PostgreSQL
//! refuses it: zero (54000, a text value holds no NUL), a negative number
//! (22023), beyond Unicode or a surrogate (54000). DataFusion's gave a NUL
//! character for `chr(0)`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::{Error, ErrorKind};

fn character(n: i64) -> std::result::Result<char, Error> {
    if n == 0 {
        return Err(Error::new(
            ErrorKind::ProgramLimitExceeded,
            "null character not permitted",
        ));
    }
    if n < 0 {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            "character number must be positive",
        ));
    }
    if n > 0x10FFFF {
        return Err(Error::new(
            ErrorKind::ProgramLimitExceeded,
            format!("requested character too large for encoding: {n}"),
        ));
    }
    char::from_u32(n as u32).ok_or_else(|| {
        Error::new(
            ErrorKind::ProgramLimitExceeded,
            format!("requested character not valid for encoding: {n}"),
        )
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Chr {
    signature: Signature,
}

impl ScalarUDFImpl for Chr {
    fn name(&self) -> &str {
        "chr"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = args.args[0].to_array(if scalar { 1 } else { args.number_rows })?;
        let input = datafusion::arrow::compute::cast(&input, &DataType::Int64)?;
        let codes = input.as_primitive::<Int64Type>();
        let mut out: Vec<Option<String>> = Vec::with_capacity(codes.len());
        for i in 0..codes.len() {
            out.push(if codes.is_null(i) {
                None
            } else {
                Some(character(codes.value(i))?.to_string())
            });
        }
        let out = Arc::new(StringArray::from(out));
        super::columnar(out, scalar)
    }
}

/// `chr` as a UDF.
pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Chr {
        signature: Signature::uniform(1, vec![DataType::Int64], Volatility::Immutable),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_postgresql_refuses_are_refused() {
        assert_eq!(character(65).unwrap(), 'A');
        assert_eq!(character(8364).unwrap(), '€');
        assert_eq!(
            character(0).unwrap_err().kind,
            ErrorKind::ProgramLimitExceeded
        );
        assert_eq!(character(-1).unwrap_err().kind, ErrorKind::InvalidParameter);
        assert_eq!(
            character(0x110000).unwrap_err().kind,
            ErrorKind::ProgramLimitExceeded
        );
        assert_eq!(
            character(0xD800).unwrap_err().kind,
            ErrorKind::ProgramLimitExceeded
        );
    }
}
