//! Reports: the conversion ledger (every source key with its status and reason) and, later, diffs.
