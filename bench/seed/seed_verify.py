"""The seed gateway's token check, for `cargo xtask bench` (scenario `seed_verify`).

The Python gateway this project replaces had Traefik call `GET /verify` of PyPI
`mcp-oauth-dynamicclient` 0.2.0 (ForwardAuth) on every MCP request; that endpoint verifies
the RS256 JWT and looks its `jti` up in Redis. This script configures the package the way
its `.env` would (RS256 with a fresh key, the given Redis), mints one access token with the
package's own `AuthManager.create_jwt_token` (which also writes the Redis record), prints
`TOKEN <jwt>` and `VERIFY <url>`, then serves the package's app on 127.0.0.1:<port>.

argv: --redis-url URL --port PORT. Run with the bench's seed venv.
"""

import argparse
import asyncio
import base64
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

parser = argparse.ArgumentParser()
parser.add_argument("--redis-url", required=True)
parser.add_argument("--port", type=int, required=True)
args = parser.parse_args()

key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pem = key.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
)
os.environ.update(
    {
        "GITHUB_CLIENT_ID": "bench",
        "GITHUB_CLIENT_SECRET": "bench",
        "JWT_SECRET": "bench-unused-with-rs256-" + "x" * 16,
        "JWT_ALGORITHM": "RS256",
        "JWT_PRIVATE_KEY_B64": base64.b64encode(pem).decode(),
        "BASE_DOMAIN": "bench.localhost",
        "REDIS_URL": args.redis_url,
        "REDIS_PASSWORD": "",
        "ACCESS_TOKEN_LIFETIME": "3600",
        "REFRESH_TOKEN_LIFETIME": "7200",
        "SESSION_TIMEOUT": "300",
        "CLIENT_LIFETIME": "0",
        "ALLOWED_GITHUB_USERS": "*",
        "MCP_PROTOCOL_VERSION": "2025-06-18",
    }
)

import redis.asyncio as redis  # noqa: E402
import uvicorn  # noqa: E402
from mcp_oauth_dynamicclient.auth_authlib import AuthManager  # noqa: E402
from mcp_oauth_dynamicclient.config import Settings  # noqa: E402
from mcp_oauth_dynamicclient.server import create_app  # noqa: E402

settings = Settings()


async def mint():
    client = redis.from_url(settings.redis_url, decode_responses=True)
    claims = {"sub": "583231", "username": "octocat", "client_id": "bench", "scope": "mcp"}
    token = await AuthManager(settings).create_jwt_token(claims, client)
    await client.aclose()
    return token


print("TOKEN", asyncio.run(mint()), flush=True)
print("VERIFY", f"http://127.0.0.1:{args.port}/verify", flush=True)
uvicorn.run(create_app(settings), host="127.0.0.1", port=args.port, log_level="warning")
