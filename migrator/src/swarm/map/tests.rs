//! Tests of the Swarm → tree mapping.
