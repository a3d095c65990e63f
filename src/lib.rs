//! Sluice: a SQL-first lakehouse. A PostgreSQL-wire server whose tables are
//! Delta Lake tables in a local folder or on S3.
//!
//! ```text
//!  client ──pgwire──▶ server ──▶ frontend ──▶ engine ──▶ lake (Delta)
//!                                              │
//!                                           catalog
//! ```

pub mod catalog;
pub mod config;
pub mod engine;
pub mod error;
pub mod features;
pub mod frontend;
pub mod ingest;
pub mod interrupt;
pub mod lake;
pub mod metrics;
pub mod project;
pub mod quality;
pub mod scheduler;
pub mod send_sync;
pub mod server;
pub mod tree;
pub mod types;
pub mod visit;
pub mod write;

pub use error::{Error, ErrorKind, Result};
