//! The feature store: point-in-time (ASOF) joins, training sets, online
//! serving.
//!
//! ```text
//!  asof       the ASOF join in plans: marker rule, logical node, planner
//!  asof_exec  the ASOF join operator
//!  training   training_set(): a feature service joined to labels in time
//!  online     the online store: the latest row per entity, in memory
//!  lookup     online lookups answered from it without planning
//! ```

pub mod asof;
pub mod asof_exec;
pub mod lookup;
pub mod online;
pub mod training;
