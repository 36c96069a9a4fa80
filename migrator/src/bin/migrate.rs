//! `migrate`: converts Docker Swarm stack files into a Helm chart and a conversion ledger.

fn main() {}
