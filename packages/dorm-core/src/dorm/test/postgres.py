"""A throwaway PostgreSQL cluster started from the installed server binaries, for tests.

``start_cluster()`` runs ``initdb`` into a new temporary directory and starts the server
with ``pg_ctl`` on a free port of the loopback interface only (and a Unix socket in that
directory), with durability switched off: nothing in it outlives the test run. ``stop()``
stops the server and deletes the directory (also registered with ``atexit``).

The binaries are looked up in ``DORM_PG_BINDIR``, then the newest
``/usr/lib/postgresql/<version>/bin`` (Debian and Ubuntu), then ``initdb`` on ``PATH``.
PostgreSQL refuses to run as root; under root the binaries run as the ``postgres`` user.
The superuser of the cluster is ``dorm``, authenticated by ``trust`` (no password).

``cluster.start_replica()`` makes a streaming hot standby of a running cluster: a copy
taken with ``pg_basebackup -R`` (initdb's ``pg_hba.conf`` already trusts replication
connections from 127.0.0.1), started on its own loopback port; it returns once the
primary reports the standby as streaming. ``promote()`` turns a standby into a primary.
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dorm.exceptions import DormError

__all__ = [
    "PG_USER",
    "PgCluster",
    "PostgresUnavailableError",
    "find_pg_bindir",
    "postgres_required",
    "start_cluster",
]

PG_USER = "dorm"


class PostgresUnavailableError(DormError):
    """No throwaway cluster could be started; the message says why and what to install."""


def postgres_required() -> bool:
    """True when a missing PostgreSQL must fail the tests instead of skipping them:
    ``CI=true`` (or 1, yes) or ``DORM_REQUIRE_POSTGRES=1`` in the environment."""
    return (
        os.environ.get("CI", "").lower() in ("1", "true", "yes")
        or os.environ.get("DORM_REQUIRE_POSTGRES", "") == "1"
    )


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path))


def find_pg_bindir() -> str | None:
    """Return the directory holding ``initdb`` and ``pg_ctl``, newest version first."""
    explicit = os.environ.get("DORM_PG_BINDIR")
    if explicit:
        return explicit
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key, reverse=True)
    if found:
        return os.path.dirname(found[0])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _drop_privileges() -> Callable[[], None] | None:
    """PostgreSQL refuses to run as root: run its binaries as the ``postgres`` user."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError(
            "running as root, PostgreSQL refuses to start, and there is no 'postgres' user "
            "to run it as (install the 'postgresql' package or run the tests as a normal user)"
        ) from None
    uid, gid = entry.pw_uid, entry.pw_gid

    def demote() -> None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    demote.uid = uid  # type: ignore[attr-defined]
    demote.gid = gid  # type: ignore[attr-defined]
    return demote


@dataclass
class PgCluster:
    """A private PostgreSQL cluster in a temporary directory, on a loopback port."""

    bindir: str
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dorm-pg-")))
    port: int = 0
    running: bool = False
    # True for benchmarks that must pay for durability (fsync, synchronous commit).
    durable: bool = False
    # More ``postgresql.auto.conf`` settings (name -> value as written in the file).
    extra_settings: dict[str, str] = field(default_factory=dict)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        demote = _drop_privileges()
        return subprocess.run(
            [os.path.join(self.bindir, args[0]), *args[1:]],
            preexec_fn=demote,
            capture_output=True,
            text=True,
            check=check,
            env={**os.environ, "LC_ALL": "C", "PGTZ": "UTC"},
            cwd=self.root,
        )

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run(
            "pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-w", *args, check=check
        )

    def start(self) -> None:
        """Create the cluster (``initdb``) and start the server on a free loopback port."""
        demote = _drop_privileges()
        self.root.chmod(0o700)
        if demote is not None:
            os.chown(self.root, demote.uid, demote.gid)  # type: ignore[attr-defined]
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            PG_USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        last_error = ""
        # Another process may take the free port between the probe and the server's bind.
        for _attempt in range(5):
            self.port = _free_port()
            self._write_config()
            result = self._pg_ctl("-t", "60", "start", check=False)
            if result.returncode == 0:
                self.running = True
                atexit.register(self.stop)
                return
            last_error = result.stderr + self._log_tail()
        raise RuntimeError(f"the test PostgreSQL cluster did not start: {last_error}")

    def _write_config(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "max_prepared_transactions": "20",
            "max_connections": "200",
            # A throwaway cluster: durability buys nothing and costs test time.
            "fsync": "on" if self.durable else "off",
            "synchronous_commit": "on" if self.durable else "off",
            "full_page_writes": "on" if self.durable else "off",
            "timezone": "'UTC'",
            **self.extra_settings,
        }
        conf = self.datadir / "postgresql.auto.conf"
        conf.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        demote = _drop_privileges()
        if demote is not None:
            os.chown(conf, demote.uid, demote.gid)  # type: ignore[attr-defined]

    def _log_tail(self) -> str:
        try:
            return self.logfile.read_text()[-2000:]
        except OSError:
            return ""

    def start_replica(self, timeout: float = 60.0) -> PgCluster:
        """Start a streaming hot standby of this running cluster on a free loopback port.

        The copy is taken with ``pg_basebackup -R`` (which writes ``standby.signal``); the
        standby connects with ``application_name`` set to its directory's name and this
        returns once ``pg_stat_replication`` here shows it streaming.

        :raises RuntimeError: the copy failed, or the standby did not start or stream
            within ``timeout`` seconds (the message holds the standby's log).
        """
        replica = PgCluster(self.bindir, durable=self.durable)
        name = re.sub(r"[^a-z0-9_]", "_", replica.root.name.lower())
        replica.extra_settings = {
            **self.extra_settings,
            "primary_conninfo": f"'host=127.0.0.1 port={self.port} user={PG_USER} "
            f"application_name={name}'",
        }
        demote = _drop_privileges()
        replica.root.chmod(0o700)
        if demote is not None:
            os.chown(replica.root, demote.uid, demote.gid)  # type: ignore[attr-defined]
        try:
            replica._run(
                "pg_basebackup",
                *("-D", str(replica.datadir), "-h", "127.0.0.1", "-p", str(self.port)),
                *("-U", PG_USER, "-R", "-X", "stream", "-c", "fast", "--no-sync"),
            )
        except subprocess.CalledProcessError as exc:
            replica.stop()
            raise RuntimeError(f"pg_basebackup failed: {exc.stderr.strip()}") from exc
        replica.port = _free_port()
        replica._write_config()
        result = replica._pg_ctl("-t", str(int(timeout)), "start", check=False)
        if result.returncode != 0:
            detail = result.stderr + replica._log_tail()
            replica.stop()
            raise RuntimeError(f"the standby did not start: {detail}")
        replica.running = True
        atexit.register(replica.stop)
        self._wait_streaming(replica, name, timeout)
        return replica

    def _wait_streaming(self, replica: PgCluster, name: str, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT state FROM pg_stat_replication WHERE application_name = %s", (name,)
                ).fetchone()
                if row is not None and row[0] == "streaming":
                    return
                if time.monotonic() > deadline:
                    log = replica._log_tail()
                    replica.stop()
                    raise RuntimeError(f"the standby is not streaming after {timeout:g}s: {log}")
                time.sleep(0.05)

    def promote(self) -> None:
        """Promote this hot standby to a primary; returns when it accepts writes."""
        self._pg_ctl("-t", "60", "promote")

    def restart(self) -> None:
        """Restart the server in place (same port): open connections are cut."""
        self._pg_ctl("-m", "fast", "restart")

    def pause(self) -> None:
        """Stop the server, keeping its data and port (``resume()`` starts it again)."""
        self._pg_ctl("-m", "fast", "stop")

    def resume(self) -> None:
        self._pg_ctl("-t", "60", "start")

    def stop(self) -> None:
        """Stop the server and delete the cluster's directory (safe to call twice)."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.datadir), "-w", "-m", "fast", "stop", check=False)
            self.running = False
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{dbname}"

    def settings(self, dbname: str) -> dict[str, Any]:
        """Return a ``DATABASES`` entry for ``dbname`` on this cluster."""
        return {
            "ENGINE": "postgresql",
            "NAME": dbname,
            "USER": PG_USER,
            "PASSWORD": "",
            "HOST": "127.0.0.1",
            "PORT": self.port,
        }

    def admin(self, sql: str) -> None:
        """Run one statement as the superuser on the maintenance database (autocommit)."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str) -> None:
        """Create the database ``name`` (a plain lower-case identifier), replacing one of
        that name."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError(f"test database name {name!r} is not a plain identifier")
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin(f'CREATE DATABASE "{name}"')

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_cluster() -> PgCluster:
    """Start a new cluster from the server binaries (see the module docstring).

    :raises PostgresUnavailableError: psycopg is missing, no binaries were found, or the
        server did not start; the message gives the reason (and the server's log).
    """
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise PostgresUnavailableError(
            "psycopg is not installed (pip install 'dorm-core[postgresql]')"
        ) from None
    bindir = find_pg_bindir()
    if bindir is None:
        raise PostgresUnavailableError(
            "server binaries not found (apt-get install postgresql, or set DORM_PG_BINDIR)"
        )
    cluster = PgCluster(bindir)
    try:
        cluster.start()
    except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        cluster.stop()
        raise PostgresUnavailableError(
            f"could not start a cluster from {bindir}: {detail.strip()}"
        ) from exc
    return cluster
