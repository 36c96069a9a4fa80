//! The bridge: the mesh's ingress for legacy traffic. A Eureka-compatible registry for unmodified
//! legacy clients, and HTTP/JSON ↔ gRPC transcoding in both directions.
