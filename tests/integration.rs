//! End-to-end tests: a real `sluice serve` process on a free port with a
//! temporary lake, spoken to by real clients (tokio-postgres, psql, Python).

#[path = "integration/asof.rs"]
mod asof;
#[path = "integration/auth.rs"]
mod auth;
#[path = "integration/common.rs"]
mod common;
#[path = "integration/concurrency.rs"]
mod concurrency;
#[path = "integration/copy.rs"]
mod copy;
#[path = "integration/crash.rs"]
mod crash;
#[path = "integration/extract.rs"]
mod extract;
#[path = "integration/faults.rs"]
mod faults;
#[path = "integration/fixed_cost.rs"]
mod fixed_cost;
#[path = "integration/fuzz.rs"]
mod fuzz;
#[path = "integration/ingest.rs"]
mod ingest;
#[path = "integration/interop.rs"]
mod interop;
#[path = "integration/key_reads.rs"]
mod key_reads;
#[path = "integration/matviews.rs"]
mod matviews;
#[path = "integration/online.rs"]
mod online;
#[path = "integration/orchestration.rs"]
mod orchestration;
#[path = "integration/projects.rs"]
mod projects;
#[path = "integration/psql.rs"]
mod psql;
#[path = "integration/quality.rs"]
mod quality;
#[path = "integration/restart.rs"]
mod restart;
#[path = "integration/s3.rs"]
mod s3;
#[path = "integration/slt.rs"]
mod slt;
#[path = "integration/wire.rs"]
mod wire;
