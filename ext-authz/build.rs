//! Generates the `mcp_auth.v1.Decisions` server and client from the prost types in
//! `mcp_auth_proto::decisions` (tonic's manual builder: no protoc needed).

use tonic_build::manual::{Builder, Method, Service};

fn main() {
    let types = "mcp_auth_proto::decisions";
    let method = |name: &str, route: &str, input: &str, output: &str| {
        Method::builder()
            .name(name)
            .route_name(route)
            .input_type(format!("{types}::{input}"))
            .output_type(format!("{types}::{output}"))
            .codec_path("tonic_prost::ProstCodec")
    };
    let service = Service::builder()
        .name("Decisions")
        .package("mcp_auth.v1")
        .method(method("decide", "Decide", "DecideRequest", "DecideResponse").build())
        .method(
            method(
                "watch_invalidations",
                "WatchInvalidations",
                "WatchRequest",
                "Invalidation",
            )
            .server_streaming()
            .build(),
        )
        .build();
    Builder::new().compile(&[service]);
    println!("cargo:rerun-if-changed=build.rs");
}
