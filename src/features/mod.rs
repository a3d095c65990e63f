//! The feature store: point-in-time (ASOF) joins.
//!
//! ```text
//!  asof       the ASOF join in plans: marker rule, logical node, planner
//!  asof_exec  the ASOF join operator
//!  training   training_set(): a feature service joined to labels in time
//! ```

pub mod asof;
pub mod asof_exec;
pub mod training;
