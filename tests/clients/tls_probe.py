#!/usr/bin/env python3
"""Reports what a TLS server negotiates, trusting only the CA file given.

argv: <host> <port> <CA file>. Prints one line per handshake:
  offer h2,http/1.1: <ALPN protocol> <TLS version>
  only TLSv1.2: <TLS version> | refused <reason>
  only TLSv1.1: <TLS version> | refused <reason>
The TLS 1.1 client lowers its own security level so that only the server can refuse.
Standard library only.
"""

import socket
import ssl
import sys
import warnings

# TLS 1.1 is offered on purpose, to be refused.
warnings.filterwarnings("ignore", category=DeprecationWarning)


def handshake(host, port, context):
    with socket.create_connection((host, port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            return tls.selected_alpn_protocol(), tls.version()


def context(cafile, version=None):
    ctx = ssl.create_default_context(cafile=cafile)
    if version is not None:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


def only(host, port, cafile, version):
    try:
        return handshake(host, port, context(cafile, version))[1]
    except ssl.SSLError as err:
        return f"refused {err.reason}"


def main(host, port, cafile):
    port = int(port)
    alpn_context = context(cafile)
    alpn_context.set_alpn_protocols(["h2", "http/1.1"])
    alpn, version = handshake(host, port, alpn_context)
    print(f"offer h2,http/1.1: {alpn} {version}", flush=True)
    print(f"only TLSv1.2: {only(host, port, cafile, ssl.TLSVersion.TLSv1_2)}", flush=True)
    print(f"only TLSv1.1: {only(host, port, cafile, ssl.TLSVersion.TLSv1_1)}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
