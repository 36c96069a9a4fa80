//! `bridge`: runs the Eureka-compatible registry and the transcoding lanes.

fn main() {}
