"""Identity providers' adapters and their ports: the IO of signing in with a company's
directory or identity provider (ldap.py: LDAP / Active Directory, ports.py: its Directory
port; oidc.py: OpenID Connect). Services use them; app/ builds them."""
