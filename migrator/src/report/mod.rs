//! Reports: the conversion ledger (every source key with its status and reason) and, later, diffs.

pub mod classify;
pub mod ledger;

pub use classify::Status;
pub use ledger::{Entry, Ledger, Text};
