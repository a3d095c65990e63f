//! Getting data in: COPY's wire formats decoded into Arrow batches.
//!
//! ```text
//!  CopyData pieces ─▶ text::TextDecoder (text, CSV) ─▶ RawRows (text columns)
//!                  ─▶ convert::Converter (column types) ─▶ RecordBatch
//!                  ─▶ binary::BinaryDecoder (binary) ────────────────▶ RecordBatch
//! ```

pub mod binary;
pub mod convert;
pub mod files;
pub mod postgres;
pub mod text;
