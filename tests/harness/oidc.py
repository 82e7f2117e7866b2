"""A real OpenID Connect provider for tests/test_oidc.py: panva's oidc-provider (OpenID
Certified) on the machine's Node.js, from the npm registry into tests/harness/oidc/node_modules
(`npm ci --prefix tests/harness/oidc`, which .ci/run and the first test that needs it run).

It listens on a free port and signs with keys of ours (a file of private JWKs), so that a test
can restart it with new ones (a rotation) or stop it (the provider down). Its development login
pages take any username and password: the username is the subject.
"""

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from incrementific.redis_server import free_port

FOLDER = Path(__file__).resolve().parent / "oidc"
CLIENT_ID, CLIENT_SECRET = "incrementific", "tests-only-client-secret-long-enough-for-hs256-at-least"
SERVICE_ID, SERVICE_SECRET = "nightly-builds", "tests-only-service-secret"  # client credentials
SHORT_ID, SHORT_SECRET = "short-lived", "tests-only-short-secret"  # its tokens live 2 s
AUDIENCE = "https://counters.example.com/api"


def missing() -> str | None:
    """Why the provider cannot run here (one line), or None."""
    if not shutil.which("node") or not shutil.which("npm"):
        return "OpenID Connect tests need Node.js and npm (.ci/run installs them: apt-get install nodejs npm)"
    if not (FOLDER / "node_modules" / "oidc-provider").exists():
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=FOLDER, capture_output=True, text=True
        )
        if done.returncode != 0:
            return f"npm ci in tests/harness/oidc failed: {done.stderr.strip()[-300:]}"
    return None


def new_key(kid: str) -> dict:
    """A private RSA JWK (PyJWT writes it) with this kid."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


class Provider:
    """oidc-provider on a free port, for apps whose callbacks are ``redirect_uris``."""

    def __init__(self, folder: Path, *redirect_uris: str, keys: list[dict] | None = None):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.redirect_uris = list(redirect_uris)
        self.keys = keys or [new_key("first")]
        self.process: subprocess.Popen | None = None

    def start(self) -> "Provider":
        jwks = self.folder / "jwks.json"
        jwks.write_text(json.dumps({"keys": self.keys}))
        client = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": self.redirect_uris,
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_post",  # as mozilla-django-oidc sends it
        }
        services = [
            {
                "client_id": cid,
                "client_secret": secret,
                "grant_types": ["client_credentials"],
                "response_types": [],
                "redirect_uris": [],
            }
            for cid, secret in ((SERVICE_ID, SERVICE_SECRET), (SHORT_ID, SHORT_SECRET))
        ]
        env = {
            **os.environ,
            "OIDC_PORT": str(self.port),
            "OIDC_ISSUER": self.issuer,
            "OIDC_CLIENTS": json.dumps([client, *services]),
            "OIDC_JWKS": str(jwks),
            "OIDC_AUDIENCE": AUDIENCE,
            "OIDC_SHORT_CLIENT": SHORT_ID,
            "NODE_ENV": "development",
        }
        log = (self.folder / "provider.log").open("a")
        self.process = subprocess.Popen(
            ["node", str(FOLDER / "provider.js")], env=env, cwd=FOLDER, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{self.issuer}/.well-known/openid-configuration", timeout=2):
                    return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.folder / "provider.log").read_text()[-2000:]
                    raise RuntimeError(f"the provider did not start: {log}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def restart(self, keys: list[dict]) -> None:
        """The same provider (issuer, clients), signing with ``keys`` from now on."""
        self.stop()
        self.keys = keys
        self.start()

    def service_token(self, *, client: str = SERVICE_ID, secret: str = SERVICE_SECRET, audience: str = AUDIENCE) -> str:
        """An access token (a JWT) for a service, by the client credentials grant."""
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "resource": audience, "scope": "counters"})
        request = urllib.request.Request(f"{self.issuer}/token", data=body.encode(), method="POST")
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{client}:{secret}".encode()).decode())
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())["access_token"]

    def __enter__(self) -> "Provider":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def log_in_at_provider(location: str, username: str, redirect_uri: str) -> str:
    """Follow the provider's pages as a browser would, from the authorization URL our app sent
    the browser to: its login form (any password), then its consent. Returns the URL it sends
    the browser back to (our callback, with the code and the state)."""
    import re

    import requests

    session = requests.Session()
    url = location
    for _ in range(12):
        if url.startswith(redirect_uri):
            return url
        response = session.get(url, allow_redirects=False, timeout=5)
        if response.is_redirect:
            url = urllib.parse.urljoin(url, response.headers["Location"])
            continue
        form = re.search(r'<form[^>]*action="([^"]+)"', response.text)
        assert form, response.text[:2000]
        fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', response.text))
        if 'name="login"' in response.text:
            fields.update(login=username, password="any-password")
        response = session.post(urllib.parse.urljoin(url, form.group(1)), data=fields, allow_redirects=False, timeout=5)
        assert response.is_redirect, response.text[:2000]
        url = urllib.parse.urljoin(url, response.headers["Location"])
    raise AssertionError(f"the provider never sent the browser back to {redirect_uri}")
