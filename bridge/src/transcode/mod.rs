//! HTTP/JSON ↔ gRPC transcoding, pure: descriptors and bytes in, bytes out, no I/O. The lanes
//! wire these pieces to the network; rules and tables are in `docs/transcoding.md`.

pub mod frame;
pub mod headers;
pub mod json;
pub mod reverse;
pub mod route;
pub mod status;
pub mod template;
