# The token filter as an OCI image in Istio's Wasm image format (the "compat" variant: one
# layer holding `plugin.wasm` at the root), for a WasmPlugin with `url: oci://<registry>/…`.
# Push it with `podman push` / `docker push`; the plain file, for `url: file://…` or
# http(s)://, is target/images/plugin.wasm with its SHA-256 beside it.
FROM scratch
COPY plugin.wasm ./
