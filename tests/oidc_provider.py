"""A small OpenID Connect provider for tests: the authorization-code flow, RS256 id tokens, userinfo and a
JWKS, served over real HTTP on 127.0.0.1. `provider.signs_in(claims)` chooses who the next sign-in is."""
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class Provider:
    client_id = "catalog-hygiene"
    client_secret = "provider-test-secret"

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.claims = {}
        self.codes = {}  # code -> (claims, nonce)
        self.tokens = {}  # access token -> claims
        self.requests = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body=None, headers=()):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                provider.requests.append(("GET", url.path))
                if url.path == "/authorize":
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = (dict(provider.claims), query.get("nonce"))
                    target = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
                    return self.answer(302, headers=[("Location", target)])
                if url.path == "/jwks":
                    jwk = json.loads(RSAAlgorithm.to_jwk(provider.key.public_key()))
                    return self.answer(200, {"keys": [{**jwk, "kid": provider.kid, "alg": "RS256", "use": "sig"}]})
                if url.path == "/userinfo":
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    if token not in provider.tokens:
                        return self.answer(401, {"error": "invalid_token"})
                    return self.answer(200, provider.tokens[token])
                return self.answer(404, {"error": "not_found"})

            def do_POST(self):
                provider.requests.append(("POST", self.path))
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if self.path != "/token":
                    return self.answer(404, {"error": "not_found"})
                if form.get("client_secret") != provider.client_secret or form.get("code") not in provider.codes:
                    return self.answer(400, {"error": "invalid_grant"})
                claims, nonce = provider.codes.pop(form["code"])
                now = int(time.time())
                id_token = jwt.encode({"iss": provider.issuer, "aud": provider.client_id, "sub": claims["sub"],
                                       "email": claims.get("email"), "iat": now, "exp": now + 300, "nonce": nonce},
                                      provider.key, algorithm="RS256", headers={"kid": provider.kid})
                access = secrets.token_urlsafe(16)
                provider.tokens[access] = claims
                return self.answer(200, {"access_token": access, "id_token": id_token, "token_type": "Bearer",
                                         "expires_in": 300})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def signs_in(self, **claims):
        self.claims = claims

    def settings(self):
        """The environment a deployment would set, as Django settings."""
        return {
            "OIDC_ENABLED": True, "OIDC_RP_CLIENT_ID": self.client_id, "OIDC_RP_CLIENT_SECRET": self.client_secret,
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{self.issuer}/authorize",
            "OIDC_OP_TOKEN_ENDPOINT": f"{self.issuer}/token",
            "OIDC_OP_USER_ENDPOINT": f"{self.issuer}/userinfo", "OIDC_OP_JWKS_ENDPOINT": f"{self.issuer}/jwks",
            "OIDC_RP_SIGN_ALGO": "RS256", "OIDC_RP_SCOPES": "openid email profile",
            "OIDC_PROVIDER_NAME": "Acme SSO", "OIDC_GROUPS_CLAIM": "groups",
            "OIDC_STEWARD_GROUPS": ["data-stewards"], "OIDC_VIEWER_GROUPS": ["analysts"],
            "OIDC_TIMEOUT": 5, "OIDC_VERIFY_SSL": True, "OIDC_CREATE_USER": True,
            "LOGIN_REDIRECT_URL_FAILURE": "/accounts/login/",
        }
