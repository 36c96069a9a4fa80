//! The bridge: the mesh's ingress for legacy traffic. A Eureka-compatible registry for unmodified
//! legacy clients, and HTTP/JSON ↔ gRPC transcoding in both directions.

pub mod admin;
pub mod config;
pub mod discovery;
pub mod error;
pub mod eureka;
pub mod lane;
pub mod metrics;
pub mod otlp;
pub mod run;
pub mod transcode;

pub use error::Error;
