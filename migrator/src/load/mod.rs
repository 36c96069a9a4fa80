//! Load stage: reads one or more stack files into one merged, interpolated and schema-validated
//! YAML tree whose nodes remember where they were written.

pub mod node;
