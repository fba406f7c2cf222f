"""A real OpenLDAP server for the tests: Debian's `slapd`, started on loopback ports
(ldap:// and ldaps://) with its own slapd.conf and database in a temporary directory,
running as the current user, loaded with a generated tree:

    dc=example,dc=org
      cn=search                       the service account (SEARCH_DN / SEARCH_PASSWORD)
      ou=people
        ou=Engineering
          ou=Platform
            uid=kate                  Kate Lin, kate@example.org; in cn=admins
          uid=li                      李雷 (displayName), li@example.org
        ou=Sales
          uid=sam                     Sam Hill; in cn=contractors
          uid=dora                    Dora Diaz, employeeType: disabled
      ou=groups
        cn=admins                     groupOfNames: kate
        cn=contractors                groupOfNames: sam

Every person's password is PASSWORDS[uid]. The ldaps:// listener has a certificate for
127.0.0.1 from a `trustme` CA (`ca_file`). The server is skipped (or, under
TIDINGS_REQUIRE_SERVICES=1, fails) when slapd is not installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret-for-tests"
SEARCH_DN = f"cn=search,{SUFFIX}"
SEARCH_PASSWORD = "search-secret-for-tests"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
PASSWORDS = {
    "kate": "kate-directory-pw-1",
    "li": "li-directory-pw-2",
    "sam": "sam-directory-pw-3",
    "dora": "dora-directory-pw-4",
}
SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
LDAPADD = shutil.which("ldapadd") or "/usr/bin/ldapadd"
SCHEMA = Path("/etc/ldap/schema")
MODULES = Path("/usr/lib/ldap")


def dn_of(uid: str) -> str:
    return {
        "kate": f"uid=kate,ou=Platform,ou=Engineering,{PEOPLE}",
        "li": f"uid=li,ou=Engineering,{PEOPLE}",
        "sam": f"uid=sam,ou=Sales,{PEOPLE}",
        "dora": f"uid=dora,ou=Sales,{PEOPLE}",
    }[uid]


def _person(uid: str, cn: str, sn: str, extra: str = "") -> str:
    return (
        f"dn: {dn_of(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {cn}\nsn: {sn}\n"
        f"mail: {uid}@example.org\nuserPassword: {PASSWORDS[uid]}\n{extra}\n"
    )


def _ou(dn: str, name: str) -> str:
    return f"dn: {dn}\nobjectClass: organizationalUnit\nou: {name}\n\n"


TREE = (
    f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n"
    f"dn: {SEARCH_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
    f"cn: search\nuserPassword: {SEARCH_PASSWORD}\n\n"
    + _ou(PEOPLE, "people")
    + _ou(f"ou=Engineering,{PEOPLE}", "Engineering")
    + _ou(f"ou=Platform,ou=Engineering,{PEOPLE}", "Platform")
    + _ou(f"ou=Sales,{PEOPLE}", "Sales")
    + _ou(GROUPS, "groups")
    + _person("kate", "Kate Lin", "Lin", "displayName: Kate Lin\n")
    + _person("li", "Li Lei", "Li", "displayName: 李雷\n")
    + _person("sam", "Sam Hill", "Hill")
    + _person("dora", "Dora Diaz", "Diaz", "employeeType: disabled\n")
    + f"dn: cn=admins,{GROUPS}\nobjectClass: groupOfNames\ncn: admins\nmember: {dn_of('kate')}\n\n"
    + f"dn: cn=contractors,{GROUPS}\nobjectClass: groupOfNames\ncn: contractors\n"
    f"member: {dn_of('sam')}\n\n"
)

CONF = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
include {schema}/nis.schema
{extra_schema}pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
modulepath {modules}
moduleload back_mdb
TLSCACertificateFile {dir}/ca.pem
TLSCertificateFile {dir}/server.pem
TLSCertificateKeyFile {dir}/server.key
database mdb
maxsize 33554432
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_pw}
directory {dir}/db
access to attrs=userPassword
  by self write
  by anonymous auth
  by * none
access to *
  by users read
  by anonymous auth
"""


def require_slapd() -> None:
    if not (os.access(SLAPD, os.X_OK) and os.access(LDAPADD, os.X_OK)):
        message = "slapd and ldap-utils are not installed (apt-get install slapd ldap-utils)"
        if os.environ.get("TIDINGS_REQUIRE_SERVICES") == "1":
            pytest.fail(message + " and TIDINGS_REQUIRE_SERVICES=1")
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- an Active Directory-shaped tree: AD's attribute names and classes (a small schema
# of the test's own, AD_SCHEMA: Debian's msuser.schema gives them no matching rules, so
# no filter could find a sAMAccountName), sAMAccountName, userAccountControl (514:
# disabled), a binary objectGUID, department, memberOf: what docs/identity.md's Active
# Directory example configures.
AD_SCHEMA = """\
attributetype ( 1.3.6.1.4.1.32473.18.1.1 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.32473.18.1.2 NAME 'userPrincipalName'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.32473.18.1.3 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.32473.18.1.4 NAME 'objectGUID'
  EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.32473.18.1.5 NAME 'department'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.32473.18.1.6 NAME 'memberOf'
  EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 )
attributetype ( 1.3.6.1.4.1.32473.18.1.7 NAME 'groupType'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.32473.18.2.1 NAME 'user' SUP inetOrgPerson STRUCTURAL
  MAY ( sAMAccountName $ userPrincipalName $ userAccountControl $ objectGUID $
        department $ memberOf ) )
objectclass ( 1.3.6.1.4.1.32473.18.2.2 NAME 'group' SUP top STRUCTURAL MUST cn
  MAY ( member $ groupType $ sAMAccountName ) )
"""
AD_SUFFIX = "dc=corp,dc=example,dc=com"
AD_STAFF = f"ou=Staff,{AD_SUFFIX}"
AD_SERVICE_DN = f"cn=svc-tidings,{AD_SUFFIX}"
AD_ADMINS = f"cn=Tidings Admins,ou=Groups,{AD_SUFFIX}"
AD_KATE = f"cn=Kate Lin,ou=Engineering,{AD_STAFF}"
AD_DORA = f"cn=Dora Diaz,ou=Sales,{AD_STAFF}"
KATE_GUID = "6f9619ff-8b86-d011-b42d-00c04fc964ff"  # as AD tools print it


def _ad_user(dn: str, sam: str, name: str, uac: int, guid: str, dept: str, extra: str) -> str:
    import base64
    import uuid

    raw = base64.b64encode(uuid.UUID(guid).bytes_le).decode()
    return (
        f"dn: {dn}\nobjectClass: user\ncn: {name}\nsn: {name.split()[-1]}\nsAMAccountName: {sam}\n"
        f"userPrincipalName: {sam}@corp.example.com\ndisplayName: {name}\n"
        f"mail: {sam}@corp.example.com\nuserAccountControl: {uac}\nobjectGUID:: {raw}\n"
        f"department: {dept}\nuserPassword: {PASSWORDS[sam]}\n{extra}\n"
    )


AD_TREE = (
    f"dn: {AD_SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: corp\no: Corp\n\n"
    f"dn: {AD_SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
    f"cn: svc-tidings\nuserPassword: {SEARCH_PASSWORD}\n\n"
    + _ou(AD_STAFF, "Staff")
    + _ou(f"ou=Engineering,{AD_STAFF}", "Engineering")
    + _ou(f"ou=Sales,{AD_STAFF}", "Sales")
    + _ou(f"ou=Groups,{AD_SUFFIX}", "Groups")
    + _ad_user(
        AD_KATE,
        "kate",
        "Kate Lin",
        512,
        KATE_GUID,
        "Engineering/Platform",
        f"memberOf: {AD_ADMINS}\n",
    )
    + _ad_user(
        AD_DORA, "dora", "Dora Diaz", 514, "0c1f6a3e-8d2b-4c55-9a70-3d2e1f0a9b88", "Sales", ""
    )
    + f"dn: {AD_ADMINS}\nobjectClass: group\n"
    f"cn: Tidings Admins\ngroupType: -2147483646\nmember: {AD_KATE}\n\n"
)


def ad_settings(server: Slapd, **overrides: object) -> dict[str, object]:
    """docs/identity.md's Active Directory example, on this directory."""
    return {
        "ldap_url": server.url,
        "ldap_bind_dn": AD_SERVICE_DN,
        "ldap_bind_password": SEARCH_PASSWORD,
        "ldap_user_base": AD_STAFF,
        "ldap_user_filter": "(&(objectClass=user)(sAMAccountName={username}))",
        "ldap_username_attribute": "sAMAccountName",
        "ldap_uuid_attribute": "objectGUID",
        "ldap_disabled_attribute": "userAccountControl",
        "ldap_department_source": "attribute",
        "ldap_department_attribute": "department",
        "ldap_group_roles": {AD_ADMINS: "admin"},
        "ldap_ca_file": str(server.ca_file),
        "ldap_start_tls": True,
        "ldap_timeout_seconds": 5.0,
        "ldap_connect_timeout_seconds": 2.0,
        "ldap_sync_interval_seconds": 0,
        **overrides,
    }


class Slapd:
    """One slapd process with its own directory (`start`, `stop`, `ldif`); `flavour`
    "ad" holds the Active Directory-shaped suffix (AD_TREE) instead of TREE's."""

    def __init__(self, root: Path, flavour: str = "openldap") -> None:
        import trustme

        self.root = root
        (root / "db").mkdir(parents=True)
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(root / "server.key"))
        cert.cert_chain_pems[0].write_to_path(str(root / "server.pem"))
        self.ca.cert_pem.write_to_path(str(root / "ca.pem"))
        self.ca_file = root / "ca.pem"
        (root / "ad.schema").write_text(AD_SCHEMA)
        (root / "slapd.conf").write_text(
            CONF.format(
                schema=SCHEMA,
                dir=root,
                modules=MODULES,
                suffix=AD_SUFFIX if flavour == "ad" else SUFFIX,
                root_dn=f"cn=admin,{AD_SUFFIX}" if flavour == "ad" else ROOT_DN,
                extra_schema=f"include {root}/ad.schema\n" if flavour == "ad" else "",
                root_pw=ROOT_PASSWORD,
            )
        )
        self.port = _free_port()
        self.tls_port = _free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.ldaps_url = f"ldaps://127.0.0.1:{self.tls_port}"
        self.log = root / "slapd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.root_dn = f"cn=admin,{AD_SUFFIX}" if flavour == "ad" else ROOT_DN

    def start(self, timeout: float = 15.0) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    SLAPD,
                    "-f",
                    str(self.root / "slapd.conf"),
                    "-h",
                    f"{self.url}/ {self.ldaps_url}/",
                    "-d",
                    "none",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"slapd exited: {self.log.read_text(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                socket.create_connection(("127.0.0.1", self.tls_port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"slapd did not listen in {timeout}s: {self.log.read_text()}")

    def ldif(self, text: str, *, modify: bool = False) -> None:
        """Add (or, `modify`, change) entries as the root DN."""
        args = [LDAPADD, "-x", "-H", self.url, "-D", self.root_dn, "-w", ROOT_PASSWORD]
        if modify:
            args = ["ldapmodify", *args[1:]]
        done = subprocess.run(args, input=text.encode(), capture_output=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr.decode(errors='replace')}")

    def delete(self, dn: str) -> None:
        done = subprocess.run(
            ["ldapdelete", "-x", "-H", self.url, "-D", self.root_dn, "-w", ROOT_PASSWORD, dn],
            capture_output=True,
            timeout=30,
        )
        if done.returncode != 0:
            raise RuntimeError(f"ldapdelete failed: {done.stderr.decode(errors='replace')}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def ldap_settings(server: Slapd, **overrides: object) -> dict[str, object]:
    """The settings of a Tidings server on this directory (OpenLDAP style)."""
    return {
        "ldap_url": server.url,
        "ldap_bind_dn": SEARCH_DN,
        "ldap_bind_password": SEARCH_PASSWORD,
        "ldap_user_base": PEOPLE,
        "ldap_user_filter": "(&(objectClass=inetOrgPerson)(uid={username}))",
        "ldap_disabled_attribute": "employeeType",
        "ldap_group_base": GROUPS,
        "ldap_group_roles": {f"cn=admins,{GROUPS}": "admin", "contractors": "guest"},
        "ldap_ca_file": str(server.ca_file),
        "ldap_timeout_seconds": 5.0,
        "ldap_connect_timeout_seconds": 2.0,
        "ldap_sync_interval_seconds": 0,  # tests sync when they mean to
        **overrides,
    }
