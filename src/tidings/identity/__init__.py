"""Identity providers' adapters: the IO of signing in with a company's directory or
identity provider (oidc.py: OpenID Connect). Services use them; app/ builds them."""
