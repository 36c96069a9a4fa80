//! A gRPC-only HTTP/2 client over cleartext TCP (h2c, prior knowledge), for the forward lane's
//! upstream connections (ADR 0016).
//!
//! It does what a gRPC call needs and no more: POST requests whose body is known up front,
//! answers read as DATA frames and trailers. Requests are encoded without HPACK's dynamic table
//! or Huffman coding; answers are decoded in full. Flow control both ways, SETTINGS, PING
//! (answered, and sent as a keep-alive), GOAWAY (calls above the peer's last stream come back as
//! [`Error::NotSent`], safe to retry), RST_STREAM, CONTINUATION and the peer's
//! `MAX_CONCURRENT_STREAMS` (calls wait for a slot) are handled; server push is refused.

mod conn;
mod frame;
mod hpack;
#[cfg(test)]
mod tests;

pub use conn::{Answer, Config, Connection, Driver, Error, start};
