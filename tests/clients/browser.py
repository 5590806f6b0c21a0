#!/usr/bin/env python3
"""Plays the user's browser for OAuth clients under test (set BROWSER to this script).

argv: the authorization URL (last argument). Follows redirects by hand, keeping the
authserver's session cookie (Secure, so a library cookie jar would drop it on loopback
http), approves our consent page by submitting its form with its CSRF token, lets the fake
GitHub auto-approve, and finally loads the client's own loopback callback, which delivers the
code to the client. Standard library only. Exits 0 once the client's callback answered.
"""

import html
import http.client
import re
import sys
import urllib.parse


def request(method, url, cookie, body=None):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        # The default context: the system's CAs, or SSL_CERT_FILE's.
        conn = http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=30)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    headers = {"cookie": cookie} if cookie else {}
    if body is not None:
        headers["content-type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    text = response.read().decode("utf-8", "replace")
    for name, value in response.getheaders():
        if name.lower() == "set-cookie":
            cookie = value.split(";", 1)[0]
    return response.status, response.getheader("location"), text, cookie


def main(url):
    cookie = None
    method, body = "GET", None
    for _ in range(15):
        status, location, text, cookie = request(method, url, cookie, body)
        method, body = "GET", None
        if status in (301, 302, 303, 307, 308) and location:
            url = urllib.parse.urljoin(url, location)
            continue
        if status == 200 and 'name="csrf"' in text:
            fields = {k: html.unescape(v) for k, v in re.findall(r'name="(request|csrf)" value="([^"]+)"', text)}
            fields["decision"] = "approve"
            action = re.search(r'<form method="post" action="([^"]+)"', text).group(1)
            url = urllib.parse.urljoin(url, html.unescape(action))
            method, body = "POST", urllib.parse.urlencode(fields)
            continue
        if 200 <= status < 300:
            return 0
        print(f"browser: {status} at {url}: {text[:300]}", file=sys.stderr)
        return 1
    print("browser: too many redirects", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[-1]))
