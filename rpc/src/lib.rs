//! Protocol buffer definitions of the demo and test services, compiled at run time with `protox`
//! (no `protoc` needed) into descriptors the bridge's transcoder reads.

use std::path::{Path, PathBuf};

use prost_reflect::DescriptorPool;

pub mod echo;

/// The folder holding this crate's `.proto` files.
pub const PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");

/// Where the Google API protos (`google/api/*.proto`, `google/rpc/*.proto`) live in a checkout
/// of the project: `<repo>/../shared/reference/protos`. They are third-party files and are not
/// copied into this crate, so protos importing them compile only where that folder exists.
pub const REFERENCE_PROTOS: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/protos");

/// Errors while compiling protos.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// protox rejected a file or one of its imports.
    #[error("compiling {file}: {source}")]
    Compile {
        /// The proto file.
        file: String,
        /// protox's error.
        #[source]
        source: Box<protox::Error>,
    },
}

/// Compiles `file` (relative to [`PROTO_DIR`] or to one of `includes`) and its imports into a
/// descriptor pool. `includes` are searched after [`PROTO_DIR`]; the `google/protobuf/*.proto`
/// well-known types are always available.
///
/// The pool keeps extension options such as `google.api.http`, which a `FileDescriptorSet`
/// decoded through `prost-types` would drop.
pub fn compile(file: &str, includes: &[&Path]) -> Result<DescriptorPool, Error> {
    let err = |e: protox::Error| Error::Compile {
        file: file.to_string(),
        source: Box::new(e),
    };
    let dirs = std::iter::once(Path::new(PROTO_DIR)).chain(includes.iter().copied());
    let mut compiler = protox::Compiler::new(dirs).map_err(err)?;
    compiler.include_imports(true);
    compiler.open_file(file).map_err(err)?;
    Ok(compiler.descriptor_pool())
}

/// [`REFERENCE_PROTOS`] when that folder exists. Tests and examples use it to decide whether the
/// protos that import `google/api/annotations.proto` can be compiled here.
pub fn reference_protos() -> Option<PathBuf> {
    let dir = PathBuf::from(REFERENCE_PROTOS);
    dir.join("google/api/annotations.proto")
        .is_file()
        .then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_proto_compiles_with_its_methods() {
        let pool = compile("demo/echo.proto", &[]).expect("compiles");
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
            compile("demo/missing.proto", &[]),
            Err(Error::Compile { .. })
        ));
    }

    #[test]
    fn annotated_protos_keep_the_http_option() {
        let Some(dir) = reference_protos() else {
            println!("skipped: {REFERENCE_PROTOS} is absent");
            return;
        };
        for (file, method) in [
            ("demo/shop.proto", "demo.shop.v1.Orders.GetOrder"),
            (
                "test/messaging.proto",
                "test.messaging.v1.Messaging.GetMessage",
            ),
        ] {
            let pool = compile(file, &[&dir]).expect("compiles");
            let ext = pool
                .get_extension_by_name("google.api.http")
                .expect("extension known");
            let (svc, name) = method.rsplit_once('.').expect("qualified");
            let m = pool
                .get_service_by_name(svc)
                .and_then(|s| s.methods().find(|m| m.name() == name))
                .expect("method present");
            assert!(m.options().has_extension(&ext), "{method} lost its rule");
        }
    }

    #[test]
    fn annotated_protos_need_the_reference_includes() {
        assert!(compile("demo/shop.proto", &[]).is_err());
    }
}
