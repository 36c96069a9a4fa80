//! The migrator: reads Docker Swarm stack files and turns them into a Helm chart, Istio resources and
//! a conversion ledger. Pipeline: `load` (YAML → merged, interpolated, validated tree) → `model`
//! (typed intermediate representation) → `emit` (bundle of files) → `report` (ledger and diffs).

pub mod diff;
pub mod dispose;
pub mod emit;
pub mod error;
pub mod load;
pub mod mesh;
pub mod model;
pub mod report;
pub mod swarm;
mod text;

pub use error::Error;
