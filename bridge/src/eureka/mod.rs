//! A Eureka-compatible registry: the REST API legacy clients speak, leases with eviction and
//! self-preservation, delta fetches, a response cache, and mesh services shown as Eureka apps.

pub mod api;
pub mod auth;
pub mod cache;
pub mod clock;
pub mod instance;
pub mod lease;
pub mod mesh;
pub mod registry;
pub mod wire;
pub mod xml;

pub use clock::{Clock, ManualClock, SystemClock};
pub use instance::{Application, Applications, Instance, Status};
pub use registry::{Registry, Settings};
