//! `encode(bytes, format)` as PostgreSQL writes it: `base64` with its `=`
//! padding and a line break every 76 characters (RFC 2045), `hex`, and
//! `escape` (zero bytes and bytes with the high bit set as `\nnn`,
//! backslashes doubled). DataFusion's drops the padding and never breaks
//! lines. A text argument is read as bytea input (`encode('\x1234',
//! 'hex')` is `1234`), as PostgreSQL reads the literal. `decode(text,
//! format)` reads the three back, base64 with its line breaks.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::{Error, ErrorKind};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Encode {
    signature: Signature,
}

/// The function `encode`.
pub fn encode_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Encode {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

/// `length(bytea)` and `octet_length(text | bytea)`: the number of bytes,
/// an `integer` (a bytea reached `length` as its hex text, so
/// `length('hello'::bytea)` was 12, and `octet_length` refused it).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ByteLength {
    signature: Signature,
}

/// `octet_length` of text (its UTF-8 bytes) or of a `bytea`.
pub fn octet_length_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(ByteLength {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

/// The bytes of a `bytea`, as [`ByteLength`] counts them.
pub fn byte_length(arg: datafusion::logical_expr::Expr) -> datafusion::logical_expr::Expr {
    octet_length_udf().call(vec![arg])
}

impl ScalarUDFImpl for ByteLength {
    fn name(&self) -> &str {
        "octet_length"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = args.args[0].to_array(args.number_rows)?;
        let input = datafusion::arrow::compute::cast(&input, &DataType::Binary)?;
        let bytes = input.as_binary::<i32>();
        let out: datafusion::arrow::array::Int32Array =
            bytes.iter().map(|b| b.map(|b| b.len() as i32)).collect();
        let out: ArrayRef = Arc::new(out);
        super::columnar(out, scalar)
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `bytes` in base64, 76 characters a line.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4 + bytes.len() / 57);
    let mut line = 0;
    for chunk in bytes.chunks(3) {
        if line == 76 {
            out.push('\n');
            line = 0;
        }
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
        line += 4;
    }
    out
}

/// `bytes` in PostgreSQL's `escape` format.
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            0 | 0x80..=0xff => out.push_str(&format!("\\{b:03o}")),
            b => out.push(char::from(b)),
        }
    }
    out
}

impl ScalarUDFImpl for Encode {
    fn name(&self) -> &str {
        "encode"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let data = args.args[0].to_array(n)?;
        let formats =
            datafusion::arrow::compute::cast(&args.args[1].to_array(n)?, &DataType::Utf8)?;
        let formats = formats.as_string::<i32>();
        // Text is bytea input; bytes are themselves.
        let bytes: ArrayRef = match data.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let text = datafusion::arrow::compute::cast(&data, &DataType::Utf8)?;
                let text = text.as_string::<i32>();
                let mut b = datafusion::arrow::array::BinaryBuilder::new();
                for i in 0..n {
                    if text.is_null(i) {
                        b.append_null();
                    } else {
                        let v = super::text::parse_bytea_text(text.value(i)).map_err(|m| {
                            datafusion::error::DataFusionError::from(Error::new(
                                ErrorKind::InvalidText,
                                m,
                            ))
                        })?;
                        b.append_value(v);
                    }
                }
                Arc::new(b.finish())
            }
            _ => datafusion::arrow::compute::cast(&data, &DataType::Binary)?,
        };
        let bytes = bytes.as_binary::<i32>();
        let mut out = StringBuilder::new();
        for i in 0..n {
            if bytes.is_null(i) || formats.is_null(i) {
                out.append_null();
                continue;
            }
            let v = bytes.value(i);
            match formats.value(i).to_ascii_lowercase().as_str() {
                "base64" => out.append_value(base64(v)),
                "hex" => out.append_value(v.iter().map(|b| format!("{b:02x}")).collect::<String>()),
                "escape" => out.append_value(escape(v)),
                other => {
                    return Err(Error::new(
                        ErrorKind::InvalidParameter,
                        format!("unrecognized encoding: \"{other}\""),
                    )
                    .into());
                }
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Decode {
    signature: Signature,
}

/// The function `decode`.
pub fn decode_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Decode {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

/// The bytes of base64 `text`, whitespace (line breaks) skipped.
pub fn from_base64(text: &str) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits, mut ended) = (0u32, 0u32, false);
    for c in text.bytes().filter(|b| !b.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                ended = true;
                continue;
            }
            other => {
                return Err(format!(
                    "invalid symbol \"{}\" found while decoding base64 sequence",
                    char::from(other)
                ));
            }
        };
        if ended {
            return Err("invalid base64 end sequence".into());
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

impl ScalarUDFImpl for Decode {
    fn name(&self) -> &str {
        "decode"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let text = datafusion::arrow::compute::cast(&args.args[0].to_array(n)?, &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        let formats =
            datafusion::arrow::compute::cast(&args.args[1].to_array(n)?, &DataType::Utf8)?;
        let formats = formats.as_string::<i32>();
        let mut out = datafusion::arrow::array::BinaryBuilder::new();
        let invalid = |m: String| -> datafusion::error::DataFusionError {
            Error::new(ErrorKind::InvalidParameter, m).into()
        };
        for i in 0..n {
            if text.is_null(i) || formats.is_null(i) {
                out.append_null();
                continue;
            }
            let t = text.value(i);
            let bytes = match formats.value(i).to_ascii_lowercase().as_str() {
                "base64" => from_base64(t).map_err(invalid)?,
                "hex" => super::text::parse_bytea_text(&format!("\\x{t}"))
                    .map_err(|_| invalid(format!("invalid hexadecimal data: \"{t}\"")))?,
                "escape" => super::text::parse_bytea_text(t).map_err(invalid)?,
                other => return Err(invalid(format!("unrecognized encoding: \"{other}\""))),
            };
            out.append_value(bytes);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads_and_breaks_lines_as_postgresql() {
        assert_eq!(base64(&[1, 2]), "AQI=");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b""), "");
        let long = base64(&[b'x'; 60]);
        assert_eq!(long.lines().map(str::len).collect::<Vec<_>>(), vec![76, 4]);
        assert_eq!(escape(b"a\\b\x00\xff"), "a\\\\b\\000\\377");
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(from_base64(&base64(&bytes)).unwrap(), bytes);
        assert_eq!(from_base64("AQI=").unwrap(), vec![1, 2]);
        assert!(from_base64("AQ!=").is_err());
    }
}
