# Redis for the compose stack: Debian's redis-server, unprivileged, data in /data (a volume;
# compose turns AOF on). The official docker.io/library/redis image works as well
# (REDIS_IMAGE in deploy/compose/.env); this one exists so the stack also runs where no
# registry is reachable.
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim
FROM ${BASE_IMAGE}

RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data && chmod 0700 /data

COPY mcp-auth-healthcheck /usr/local/bin/

USER redis
WORKDIR /data
VOLUME ["/data"]
ENV MCP_AUTH_HEALTHCHECK=tcp://127.0.0.1:6379
EXPOSE 6379
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["mcp-auth-healthcheck"]
# As the official image: the command starts with `redis-server`, so compose files written
# for either image work with both.
CMD ["redis-server", "--dir", "/data", "--appendonly", "yes", "--maxmemory-policy", "noeviction"]
