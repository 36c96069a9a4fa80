//! Protocol buffer definitions of the demo and test services, compiled at run time with `protox`
//! (no `protoc` needed) into descriptors the bridge's transcoder reads.

use prost_reflect::DescriptorPool;

/// The folder holding this crate's `.proto` files.
pub const PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");

/// Errors while compiling the bundled protos.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// protox rejected a file.
    #[error("compiling {file}: {source}")]
    Compile {
        /// The proto file.
        file: String,
        /// protox's error.
        #[source]
        source: Box<protox::Error>,
    },
    /// The compiled set could not be loaded into a pool.
    #[error("loading descriptors: {0}")]
    Descriptor(#[from] prost_reflect::DescriptorError),
}

/// Compiles `file` (relative to [`PROTO_DIR`]) and its imports into a descriptor pool.
pub fn compile(file: &str) -> Result<DescriptorPool, Error> {
    let fds = protox::compile([file], [PROTO_DIR]).map_err(|e| Error::Compile {
        file: file.to_string(),
        source: Box::new(e),
    })?;
    Ok(DescriptorPool::from_file_descriptor_set(fds)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_proto_compiles_with_its_methods() {
        let pool = compile("demo/echo.proto").expect("compiles");
        let svc = pool
            .get_service_by_name("demo.echo.v1.Echo")
            .expect("service present");
        let names: Vec<_> = svc.methods().map(|m| m.name().to_string()).collect();
        assert_eq!(names, ["Say", "Stream"]);
        let say = svc.methods().next().expect("Say");
        assert!(!say.is_server_streaming());
        assert_eq!(say.input().full_name(), "demo.echo.v1.SayRequest");
    }

    #[test]
    fn unknown_file_is_an_error() {
        assert!(matches!(
            compile("demo/missing.proto"),
            Err(Error::Compile { .. })
        ));
    }
}
