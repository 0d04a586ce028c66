"""A private OpenLDAP ``slapd`` for integration tests (in the style of python-ldap's slapdtest).

Each :class:`Slapd` owns a temporary folder: a ``cn=config`` built with
``slapadd -n0`` from generated LDIF (mdb database for ``dc=univ-demo,dc=fr``,
core/cosine/inetorgperson/nis schemas, ``tests/data/ldap/supann-min.ldif``,
the ppolicy overlay with a default policy, the monitor database), the data
seeded offline with ``slapadd`` (which accepts operational attributes such
as ``pwdAccountLockedTime``), and a loopback port of its own. The Debian
system instance on port 389, if any, is never touched.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from ldap3 import NONE, Connection, Server

from ldapdir.settings import DirectorySettings
from tests.support.ports import LOOPBACK, accepts_connections, free_port
from tests.support.process import ServerProcess

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "ldap"
#: The demo people (also the embedded demo's data).
DEMO_LDIF = ROOT / "config" / "demo-directory.ldif"
#: Minimal SUPANN/SCHAC/eduPerson schema (cn=config form).
SCHEMA_LDIF = DATA / "supann-min.ldif"
#: ``ou=policies`` and the default password policy.
PPOLICY_LDIF = DATA / "ppolicy.ldif"

#: Environment variable that turns "skip, slapd missing" into a failure (CI).
REQUIRE_ENV = "SSO_REQUIRE_SERVERS"


def require_slapd() -> None:
    """Skip the calling test when slapd is not installed, or fail under CI."""
    missing = [str(path) for path in (SLAPD, SLAPADD) if not path.exists()]
    if not missing:
        return
    reason = f"OpenLDAP not installed ({', '.join(missing)} missing; apt install slapd ldap-utils)"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(reason + f" and {REQUIRE_ENV}=1")
    pytest.skip(reason)


def _ssha(password: str) -> str:
    salt = secrets.token_bytes(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()


def directory_settings(*servers: Slapd, **overrides: object) -> DirectorySettings:
    """Settings for the demo directory: on ``servers`` (in failover order), or
    for the embedded directory when none is given. ``overrides`` replace fields."""
    values: dict[str, object] = {
        "urls": tuple(server.url for server in servers),
        "bind_dn": Slapd.service_dn,
        "bind_password": Slapd.service_pw,
        "people_base": Slapd.people_base,
        "release_attributes": ("uid", "mail", "cn", "displayName", "givenName", "sn", "eduPersonAffiliation"),
        "connect_timeout": 2.0,
        "receive_timeout": 2.0,
    }
    values.update(overrides)
    return DirectorySettings(**values)  # type: ignore[arg-type]


class SlapdError(RuntimeError):
    """slapd could not be set up or did not start; carries its log's tail."""


class Slapd(ServerProcess):
    """One private slapd. ``setup()`` once, then ``start()``/``stop()``/``kill()`` freely.

    :param workdir: an empty folder owned by this instance.
    :param extra_ldif: more entries to seed (e.g. generated accounts for a bench).
    :param policy: overrides of the default password policy (``pwdMaxFailure``…).
    """

    #: Base of the directory.
    suffix = "dc=univ-demo,dc=fr"
    #: Where people are.
    people_base = "ou=people,dc=univ-demo,dc=fr"
    #: The database's root (bypasses ACLs and policy): for tests only.
    root_dn = "cn=admin,dc=univ-demo,dc=fr"
    #: The SSO's service account (from the demo LDIF).
    service_dn = "cn=sso,ou=services,dc=univ-demo,dc=fr"
    service_pw = "sso-service-secret"
    #: DN of the default password policy.
    policy_dn = "cn=default,ou=policies,dc=univ-demo,dc=fr"

    def __init__(
        self,
        workdir: Path,
        extra_ldif: Sequence[Path] = (),
        policy: dict[str, str] | None = None,
        start_timeout: float = 15.0,
        tls: bool = False,
    ) -> None:
        require_slapd()
        self.workdir = Path(workdir)
        self.extra_ldif = tuple(Path(path) for path in extra_ldif)
        self.policy = dict(policy or {})
        self.start_timeout = start_timeout
        #: Password of :attr:`root_dn` (random per instance).
        self.root_pw = secrets.token_urlsafe(16)
        self.port = free_port()
        #: Also listen on ``ldaps://`` (and accept StartTLS), with a certificate
        #: for 127.0.0.1 signed by a CA made for this instance (:attr:`ca_file`).
        self.tls = tls
        self.tls_port = free_port() if tls else 0
        self.process: subprocess.Popen[bytes] | None = None
        self._config = self.workdir / "slapd.d"
        self._db = self.workdir / "db"
        self._log = self.workdir / "slapd.log"
        self._ready = False
        self._frozen = False

    # -- what clients need ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``ldap://127.0.0.1:PORT``."""
        return f"ldap://{LOOPBACK}:{self.port}"

    @property
    def ldaps_url(self) -> str:
        """``ldaps://127.0.0.1:PORT`` (only with ``tls=True``)."""
        return f"ldaps://{LOOPBACK}:{self.tls_port}"

    @property
    def ca_file(self) -> Path:
        """The PEM file of the CA that signed the server's certificate."""
        return self.workdir / "tls" / "ca.pem"

    # -- building ------------------------------------------------------------------------------

    def _config_ldif(self) -> str:
        service = self.service_dn
        return f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {self.workdir}/slapd.pid
olcLogLevel: none
olcIdleTimeout: 0
{self._tls_config()}
dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {MODULE_DIR}
olcModuleLoad: back_mdb
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file://{SCHEMA_DIR}/core.ldif
include: file://{SCHEMA_DIR}/cosine.ldif
include: file://{SCHEMA_DIR}/inetorgperson.ldif
include: file://{SCHEMA_DIR}/nis.ldif
include: file://{SCHEMA_LDIF}

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend
olcPasswordHash: {{SSHA}}
olcAccess: {{0}}to dn.exact="" by * read
olcAccess: {{1}}to dn.base="cn=Subschema" by * read

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {self.suffix}
olcRootDN: {self.root_dn}
olcRootPW: {_ssha(self.root_pw)}
olcDbDirectory: {self._db}
olcDbMaxSize: 268435456
olcDbNoSync: TRUE
olcDbIndex: objectClass eq
olcDbIndex: uid,mail,supannMailPerso eq
olcAccess: {{0}}to attrs=userPassword by dn.exact="{service}" write by self write by anonymous auth by * none
olcAccess: {{1}}to dn.subtree="{self.people_base}" by dn.exact="{service}" write by self read by * none
olcAccess: {{2}}to * by dn.exact="{service}" read by * none

dn: olcOverlay={{0}}ppolicy,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {{0}}ppolicy
olcPPolicyDefault: {self.policy_dn}
olcPPolicyHashCleartext: TRUE
olcPPolicyUseLockout: TRUE

dn: olcDatabase={{2}}monitor,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{2}}monitor
olcAccess: {{0}}to * by dn.exact="{self.root_dn}" read by * none
"""

    def _tls_config(self) -> str:
        if not self.tls:
            return ""
        folder = self.ca_file.parent
        return (
            f"olcTLSCACertificateFile: {self.ca_file}\n"
            f"olcTLSCertificateFile: {folder / 'server.pem'}\n"
            f"olcTLSCertificateKeyFile: {folder / 'server.key'}\n"
        )

    def _make_certificates(self) -> None:
        """A CA and a server certificate for 127.0.0.1 (openssl), valid two days."""
        folder = self.ca_file.parent
        folder.mkdir(parents=True)
        openssl = shutil.which("openssl")
        if openssl is None:
            raise SlapdError("openssl is needed for a TLS slapd")
        (folder / "server.ext").write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
            encoding="utf-8",
        )
        self._run(
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Test CA",
            "-keyout", str(folder / "ca.key"), "-out", str(self.ca_file),
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
        )  # fmt: skip
        self._run(
            openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", str(folder / "server.key"), "-out", str(folder / "server.csr"),
        )  # fmt: skip
        self._run(
            openssl, "x509", "-req", "-in", str(folder / "server.csr"), "-CA", str(self.ca_file),
            "-CAkey", str(folder / "ca.key"), "-CAcreateserial", "-days", "2",
            "-extfile", str(folder / "server.ext"), "-out", str(folder / "server.pem"),
        )  # fmt: skip

    def _policy_ldif(self) -> str:
        text = PPOLICY_LDIF.read_text(encoding="utf-8")
        for name, value in self.policy.items():
            lines = [line for line in text.splitlines() if not line.startswith(f"{name}:")]
            lines.append(f"{name}: {value}")
            text = "\n".join(lines) + "\n"
        return text

    def _run(self, *args: str) -> None:
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SlapdError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")

    def setup(self) -> Slapd:
        """Build cn=config and seed the database (offline, with slapadd)."""
        self._config.mkdir(parents=True)
        self._db.mkdir(parents=True)
        if self.tls:
            self._make_certificates()
        config = self.workdir / "config.ldif"
        config.write_text(self._config_ldif(), encoding="utf-8")
        self._run(str(SLAPADD), "-n0", "-F", str(self._config), "-l", str(config))
        policy = self.workdir / "policy.ldif"
        policy.write_text(self._policy_ldif(), encoding="utf-8")
        for seed in (DEMO_LDIF, policy, *self.extra_ldif):
            self._run(str(SLAPADD), "-q", "-F", str(self._config), "-b", self.suffix, "-l", str(seed))
        return self

    # -- running -------------------------------------------------------------------------------

    def start(self) -> Slapd:
        """Start slapd (again) on its port and wait until it answers.

        :raises SlapdError: it exited, or did not answer within ``start_timeout``.
        """
        if self.running:
            return self
        for attempt in range(3):
            log = self._log.open("ab")
            try:
                self.process = subprocess.Popen(
                    [str(SLAPD), "-F", str(self._config), "-h", self._listen(), "-d", "0"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            finally:
                log.close()
            try:
                self._wait_ready()
                return self
            except SlapdError:
                self.kill()
                in_use = "Address already in use" in self.log_tail()
                if not in_use or self._ready or attempt == 2:
                    raise
                self.port = free_port()  # lost the race for the port: only before the first start
        raise SlapdError("unreachable")  # pragma: no cover

    def _listen(self) -> str:
        return f"{self.url} {self.ldaps_url}" if self.tls else self.url

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise SlapdError(
                    f"slapd exited ({self.process and self.process.returncode}): {self.log_tail()}"
                )
            if accepts_connections(LOOPBACK, self.port) and self._answers():
                self._ready = True
                return
            time.sleep(0.05)
        raise SlapdError(f"slapd did not answer within {self.start_timeout}s: {self.log_tail()}")

    def _answers(self) -> bool:
        connection = Connection(Server(self.url, get_info=NONE, connect_timeout=1), receive_timeout=2)
        try:
            return bool(connection.bind())
        except OSError:
            return False
        finally:
            connection.unbind()

    # -- tests' own access ---------------------------------------------------------------------

    def root_connection(self) -> Connection:
        """A connection bound as the root DN (tests arrange data with it; close it)."""
        connection = Connection(
            Server(self.url, get_info=NONE, connect_timeout=3),
            user=self.root_dn,
            password=self.root_pw,
            receive_timeout=5,
            raise_exceptions=True,
        )
        connection.bind()
        return connection

    def monitor_counter(self, dn: str) -> int:
        """A ``monitorCounter`` of the monitor database, e.g.
        ``cn=Total,cn=Connections,cn=Monitor`` (connections accepted so far)."""
        connection = self.root_connection()
        try:
            connection.search(dn, "(objectClass=*)", search_scope="BASE", attributes=["monitorCounter"])
            return int(connection.response[0]["raw_attributes"]["monitorCounter"][0])
        finally:
            connection.unbind()

    def __enter__(self) -> Slapd:
        return self.setup().start()
