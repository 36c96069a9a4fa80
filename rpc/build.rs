//! Generates the tonic client and server of `demo/echo.proto` with protox (no `protoc` needed).
//! Only protos without `google/api` imports are generated, so the crate builds where the
//! reference protos are absent; the annotated protos are compiled at run time instead.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/demo/echo.proto");
    let fds = protox::compile(["demo/echo.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
