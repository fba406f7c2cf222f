"""`tidings backup create | verify | restore` and the worker's scheduled backups.

The archive is ONE tar file (gzip- or xz-compressed by its name's suffix), members in
this order:

    manifest.json              what the archive holds, with the SHA-256 of every part
    settings.json              the server's settings, secrets left out
    database/<dump>            the database: tidings.sqlite3 (SQLite's online backup
                               API) or tidings.pgdump (pg_dump, custom format)
    blobs/<sha256>             the files' contents (issue 15, not built yet: the part is
                               listed in the manifest, empty, so that an archive of a
                               later version only adds members; an S3 store is not
                               copied: its manifest and the bucket's versioning are)

The manifest carries the format and its version, the Tidings version, the backend, the
schema revision, the stream head at the snapshot (the newest event in the copy: read in
the copy's own snapshot), the audit log's last entry, counts, the ids (never the keys)
of the server keys the data needs, and `parts`: name -> {sha256, bytes}.

NOT in the archive, by design: the server keys (secret_keys or the key file), the
admin password, and every password, token or secret of the settings (left out by name
and type; a URL's password is masked). The operator keeps the key file (or the
secret_keys) apart from the backups: without it the sealed TOTP secrets cannot be
opened and the audit log's signed head cannot be checked (docs/operations.md).

Verify reads the archive once, start to end: the manifest must come first, every
member must be a plain file listed in the manifest with its sum, every listed part must
be there, and the database part must open (SQLite: integrity_check, and its facts must
be the manifest's; PostgreSQL: pg_restore --list). Restore verifies first, refuses a
backup of a schema newer than this Tidings knows, a target that holds anything (unless
`force`), and settings without the keys the data needs; then loads the dump, migrates
it to this version's schema and moves the stream positions on (services/backup.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import lzma
import os
import re
import shutil
import socket
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import structlog

import tidings
from tidings.app.container import Container
from tidings.app.keys import keyring_for
from tidings.app.settings import Settings
from tidings.core.jobs import Job, JobPolicy
from tidings.services.backup import BackupStatus
from tidings.services.hub import Services
from tidings.store import migrations
from tidings.store.sql.engines import engine_class
from tidings.store.sql.engines.dumps import DumpFacts, DumpFailed, Progress, no_progress

log = structlog.get_logger(__name__)

FORMAT = "tidings-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SETTINGS = "settings.json"
DATABASE_DIR = "database"
BLOBS_DIR = "blobs"
HASH_CHUNK = 1 << 20
GZIP_LEVEL = 6
MANIFEST_MAX_BYTES = 16 << 20
JOB_KIND = "backup.scheduled"
BACKENDS = {"sqlite": "sqlite://", "postgresql": "postgresql://"}  # a URL each engine handles
SCHEDULED_NAME = re.compile(r"^tidings-backup-\d{8}T\d{6}Z\.tar\.gz$")
SECRET_NAME = re.compile(r"password|secret|token|credential|private", re.IGNORECASE)


class BackupProblem(Exception):
    """The archive is not a good backup, or cannot be restored here: `problems`, one
    line each (the first is the message)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems[0])
        self.problems = problems


class Steps(Protocol):
    """Where long steps report their progress (the CLI's Rich bars; nothing in a job)."""

    def step(self, description: str) -> Progress: ...


class NoSteps:
    def step(self, description: str) -> Progress:
        return no_progress


# --- what goes in ----------------------------------------------------------------------
def _mask_url(text: str) -> str:
    """A URL without its password (and without query values named like secrets)."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if not parts.scheme or not parts.netloc:
        return text
    netloc = parts.netloc
    if parts.password is not None:
        host = netloc.rsplit("@", 1)[1]
        netloc = f"{parts.username or ''}:***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if SECRET_NAME.search(k) else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redacted_settings(settings: Settings) -> dict[str, Any]:
    """The settings as JSON, every secret left out: SecretStr values, and anything named
    like a password, secret, token or credential; URLs lose their password."""
    dumped = settings.model_dump(mode="json")
    kept: dict[str, Any] = {}
    left_out: list[str] = []
    for name, value in dumped.items():
        raw = getattr(settings, name)
        secret_type = type(raw).__name__ in ("SecretStr", "SecretBytes") or (
            isinstance(raw, list) and any(type(v).__name__ == "SecretStr" for v in raw)
        )
        if secret_type or SECRET_NAME.search(name):
            if raw not in (None, [], "", False):
                left_out.append(name)
            continue
        if isinstance(value, str):
            value = _mask_url(value)
        elif isinstance(value, list):
            value = [_mask_url(v) if isinstance(v, str) else v for v in value]
        kept[name] = value
    return {
        "settings": kept,
        "set_explicitly": sorted(n for n in settings.model_fields_set if n in kept),
        "left_out": sorted(left_out),
    }


def _sha256(path: Path, progress: Progress = no_progress) -> str:
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            progress(done, total)
    return digest.hexdigest()


def _write_mode(path: Path) -> str:
    """The archive's compression, by its name: .tar.gz/.tgz gzip, .tar.xz/.txz xz, any
    other name a plain tar (reading finds out by itself)."""
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz")):
        return "w:gz"
    if name.endswith((".tar.xz", ".txz")):
        return "w:xz"
    return "w"


def _public_url(url: str) -> str:
    return _mask_url(url)


@dataclass(frozen=True, slots=True)
class Created:
    path: Path
    manifest: dict[str, Any]
    bytes: int
    seconds: float


async def create_backup(settings: Settings, out: Path, steps: Steps | None = None) -> Created:
    """A backup of the server of `settings` (running or not) into the file `out`,
    written beside it and renamed into place when whole."""
    steps = steps or NoSteps()
    started = time.monotonic()
    url = settings.db_url
    engine = engine_class(url)
    missing = engine.missing(url)
    if missing is not None:
        raise BackupProblem([f"{missing}: nothing to back up (check --data-dir or database_url)"])
    out, work = await asyncio.to_thread(_workspace, out)
    partial = out.with_name(f".{out.name}.partial")
    try:
        db_name = f"{DATABASE_DIR}/{engine.dump_name}"
        db_file = work / engine.dump_name
        try:
            facts = await engine.dump(url, db_file, steps.step("database snapshot"))
        except DumpFailed as exc:
            raise BackupProblem([str(exc)]) from exc
        settings_file = work / SETTINGS
        settings_file.write_bytes(
            orjson.dumps(redacted_settings(settings), option=orjson.OPT_INDENT_2)
        )
        parts = {}
        for name, path in ((SETTINGS, settings_file), (db_name, db_file)):
            sha = await asyncio.to_thread(_sha256, path, steps.step(f"SHA-256 of {name}"))
            parts[name] = {"sha256": sha, "bytes": path.stat().st_size}
        manifest = _manifest(settings, engine.name, facts, parts)
        data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        await asyncio.to_thread(
            _write_archive,
            partial,
            _write_mode(out),
            data,
            [(SETTINGS, settings_file), (db_name, db_file)],
            steps.step(f"writing {out.name}"),
        )
        os.replace(partial, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    size = out.stat().st_size
    return Created(out, manifest, size, time.monotonic() - started)


def _workspace(out: Path) -> tuple[Path, Path]:
    """The archive's absolute path, and a folder beside it for its parts (same disk)."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    return out, Path(tempfile.mkdtemp(prefix=".tidings-backup-", dir=out.parent))


def _manifest(
    settings: Settings, backend: str, facts: DumpFacts, parts: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "tidings_version": tidings.__version__,
        "backend": backend,
        "schema_revision": facts.schema_revision,
        "stream_head": facts.stream_head,
        "audit_last_seq": facts.audit_last_seq,
        "counts": facts.counts,
        "key_ids": facts.key_ids,
        "source": {
            "node": settings.node_name or socket.gethostname(),
            "database": _public_url(settings.db_url),
        },
        "parts": parts,
        "blobs": {"store": "none", "files": 0, "bytes": 0},
        "not_included": [
            "server keys (secret_keys or the key file): keep them apart from the backups",
            "passwords, tokens and secrets of the settings",
        ],
    }


def _write_archive(
    path: Path, mode: str, manifest: bytes, files: list[tuple[str, Path]], progress: Progress
) -> None:
    total = len(manifest) + sum(p.stat().st_size for _, p in files)
    done = 0

    def member(name: str, size: int, mode: int = 0o600) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, mode, int(time.time())
        return info

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw:
        # gzip level 6, gzip's own default: tarfile's 9 took 3x as long (24.6 s against
        # 8.4 s for a 168 MB database, docs/operations.md) for an archive as small
        options = {"compresslevel": GZIP_LEVEL} if mode == "w:gz" else {}
        with tarfile.open(fileobj=raw, mode=mode, **options) as tar:  # type: ignore[call-overload]
            tar.addfile(member(MANIFEST, len(manifest)), io.BytesIO(manifest))
            done += len(manifest)
            for directory in (DATABASE_DIR, BLOBS_DIR):
                info = member(directory + "/", 0, 0o700)
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            for name, file in files:
                with file.open("rb") as f:
                    tar.addfile(
                        member(name, file.stat().st_size), _Counting(f, progress, done, total)
                    )
                done += file.stat().st_size
        raw.flush()
        os.fsync(raw.fileno())
    progress(total, total)


class _Counting(io.RawIOBase):
    """A file read through tarfile, reporting how far it got."""

    def __init__(self, f: io.BufferedReader, progress: Progress, base: int, total: int) -> None:
        self.f, self.progress, self.base, self.total, self.read_so_far = f, progress, base, total, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.f.read(size)
        self.read_so_far += len(chunk)
        self.progress(self.base + self.read_so_far, self.total)
        return chunk


# --- checking --------------------------------------------------------------------------
@dataclass
class Verified:
    manifest: dict[str, Any]
    summary: list[str] = field(default_factory=list)
    database: Path | None = None  # the extracted dump, while the caller's folder lives


def _safe_name(name: str) -> bool:
    return not (
        name.startswith("/")
        or "\\" in name
        or any(part in ("", "..", ".") for part in name.rstrip("/").split("/"))
    )


def _read_manifest(data: bytes) -> tuple[dict[str, Any], list[str]]:
    problems: list[str] = []
    try:
        manifest = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return {}, [f"{MANIFEST} is not JSON: {exc}"]
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return {}, [f"{MANIFEST} is not a Tidings backup manifest"]
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        return {}, [f"{MANIFEST}: bad format_version {version!r}"]
    if version > FORMAT_VERSION:
        return {}, [
            f"the archive's format {version} is newer than this Tidings reads "
            f"({FORMAT_VERSION}): use Tidings {manifest.get('tidings_version')} or later"
        ]
    parts = manifest.get("parts")
    if not isinstance(parts, dict) or not parts:
        problems.append(f"{MANIFEST} lists no parts")
    else:
        for name, part in parts.items():
            ok = (
                isinstance(part, dict)
                and isinstance(part.get("sha256"), str)
                and re.fullmatch(r"[0-9a-f]{64}", part["sha256"]) is not None
                and isinstance(part.get("bytes"), int)
            )
            if not ok or not _safe_name(name):
                problems.append(f"{MANIFEST}: bad entry for part {name!r}")
    for key, kind in (("backend", str), ("stream_head", int), ("schema_revision", str)):
        if not isinstance(manifest.get(key), kind):
            return {}, [f"{MANIFEST}: {key} missing or not a {kind.__name__}"]
    if manifest["backend"] not in BACKENDS:
        return {}, [f"{MANIFEST}: unknown backend {manifest['backend']!r}"]
    return manifest, problems


async def verify_backup(
    path: Path, steps: Steps | None = None, *, extract_to: Path | None = None
) -> Verified:
    """Check the archive at `path` whole (BackupProblem lists everything wrong). With
    `extract_to` (a folder) its database part is left there for a restore."""
    steps = steps or NoSteps()
    if not await asyncio.to_thread(path.is_file):
        raise BackupProblem([f"no such file: {path}"])
    own = extract_to is None
    folder = Path(tempfile.mkdtemp(prefix=".tidings-verify-")) if own else extract_to
    assert folder is not None
    try:
        verified = await asyncio.to_thread(
            _verify_archive, path, folder, steps.step(f"reading {path.name}")
        )
        manifest = verified.manifest
        db = verified.database
        assert db is not None
        engine = engine_class(BACKENDS[manifest["backend"]])
        try:
            check = await engine.check_dump(db)
        except DumpFailed as exc:
            raise BackupProblem([f"the database part does not open: {exc}"]) from exc
        verified.summary.append(check.summary)
        if check.facts is not None:
            _compare_facts(manifest, check.facts)
        if own:
            verified.database = None
        return verified
    finally:
        if own:
            shutil.rmtree(folder, ignore_errors=True)


def _compare_facts(manifest: dict[str, Any], facts: DumpFacts) -> None:
    problems = []
    if facts.stream_head != manifest["stream_head"]:
        problems.append(
            f"the database's stream head {facts.stream_head} is not the manifest's "
            f"{manifest['stream_head']}"
        )
    if facts.schema_revision != manifest["schema_revision"]:
        problems.append(
            f"the database's schema revision {facts.schema_revision} is not the manifest's "
            f"{manifest['schema_revision']}"
        )
    counts = manifest.get("counts")
    if isinstance(counts, dict) and counts != facts.counts:
        problems.append(f"the database's counts {facts.counts} are not the manifest's {counts}")
    if problems:
        raise BackupProblem(problems)


def _verify_archive(path: Path, folder: Path, progress: Progress) -> Verified:
    with path.open("rb") as raw:
        return _verify_tar(path, raw, folder, progress)


def _verify_tar(path: Path, raw: io.BufferedReader, folder: Path, progress: Progress) -> Verified:
    problems: list[str] = []
    total = path.stat().st_size
    try:
        tar = tarfile.open(fileobj=raw, mode="r:*")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupProblem([f"{path.name} is not a tar archive: {exc}"]) from exc
    manifest: dict[str, Any] = {}
    seen: dict[str, tuple[str, int]] = {}
    database: Path | None = None
    try:
        with tar:
            first = True
            for member in _members(tar):
                name = member.name
                if not _safe_name(name):
                    problems.append(f"unsafe member name {name!r}")
                    continue
                if first:
                    first = False
                    if name != MANIFEST or not member.isreg():
                        raise BackupProblem([f"the archive does not start with {MANIFEST}"])
                    if member.size > MANIFEST_MAX_BYTES:
                        raise BackupProblem([f"{MANIFEST} is too large"])
                    f = tar.extractfile(member)
                    assert f is not None
                    manifest, found = _read_manifest(f.read())
                    if not manifest:
                        raise BackupProblem(found)
                    problems += found
                    continue
                if member.isdir():
                    if name.rstrip("/") not in (DATABASE_DIR, BLOBS_DIR):
                        problems.append(f"unexpected folder {name!r}")
                    continue
                if not member.isreg():
                    problems.append(f"{name!r} is not a plain file (links are refused)")
                    continue
                if name in seen:
                    problems.append(f"{name!r} is in the archive twice")
                    continue
                if name not in manifest.get("parts", {}):
                    problems.append(f"{name!r} is not listed in the manifest")
                    continue
                keep = name.startswith(DATABASE_DIR + "/")
                target = folder / Path(name).name if keep else None
                seen[name] = _hash_member(tar, member, target)
                if keep:
                    database = target
                progress(raw.tell(), total)
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise BackupProblem([f"the archive is damaged or cut short: {exc}"]) from exc
    progress(total, total)
    for name, part in manifest.get("parts", {}).items():
        if not isinstance(part, dict):
            continue
        got = seen.get(name)
        if got is None:
            problems.append(f"{name!r} is missing from the archive")
        elif got[0] != part.get("sha256"):
            problems.append(
                f"{name!r}: SHA-256 {got[0]} is not the manifest's {part.get('sha256')}"
            )
        elif got[1] != part.get("bytes"):
            problems.append(f"{name!r}: {got[1]} bytes, the manifest says {part.get('bytes')}")
    if database is None:
        problems.append("the archive has no database part")
    if problems:
        raise BackupProblem(problems)
    counts = manifest.get("counts", {})
    summary = [
        f"Tidings {manifest.get('tidings_version')} backup of {manifest.get('created_at')}, "
        f"{manifest['backend']}, schema {manifest['schema_revision']}, stream head "
        f"{manifest['stream_head']}",
        "holds: " + ", ".join(f"{v} {k}" for k, v in counts.items()),
        f"{len(seen)} parts, every SHA-256 matches",
    ]
    return Verified(manifest, summary, database)


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while True:
        member = tar.next()
        if member is None:
            return
        yield member


def _hash_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path | None
) -> tuple[str, int]:
    f = tar.extractfile(member)
    assert f is not None
    digest = hashlib.sha256()
    size = 0
    out = None
    if target is not None:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        out = os.fdopen(fd, "wb")
    try:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if out is not None:
                out.write(chunk)
    finally:
        if out is not None:
            out.close()
    return digest.hexdigest(), size


# --- restoring -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RestoreReport:
    manifest: dict[str, Any]
    migrated_from: str
    migrated_to: str
    backup_head: int
    resumed_at: int
    settings_copy: Path | None


async def restore_backup(
    settings: Settings,
    path: Path,
    *,
    force: bool = False,
    keys_lost: bool = False,
    steps: Steps | None = None,
) -> RestoreReport:
    """Restore the archive at `path` into the data dir or database of `settings`
    (every server on it stopped)."""
    steps = steps or NoSteps()
    url = settings.db_url
    engine = engine_class(url)
    work = Path(tempfile.mkdtemp(prefix=".tidings-restore-"))
    try:
        verified = await verify_backup(path, steps, extract_to=work)
        manifest = verified.manifest
        if manifest["backend"] != engine.name:
            raise BackupProblem(
                [
                    f"this is a backup of {manifest['backend']}; the target is {engine.name}: "
                    f"restore it into a {manifest['backend']} database"
                ]
            )
        revision = str(manifest["schema_revision"])
        if revision not in migrations.revisions():
            raise BackupProblem(
                [
                    f"the backup is of a newer schema (revision {revision}) than this Tidings "
                    f"{tidings.__version__} knows (newest {migrations.head()}): restore it with "
                    f"Tidings {manifest.get('tidings_version')} or later"
                ]
            )
        needed = [str(k) for k in manifest.get("key_ids", [])]
        held = set(keyring_for(settings).ids)
        lacking = [k for k in needed if k not in held]
        if lacking and not keys_lost:
            raise BackupProblem(
                [
                    f"the backup's sealed TOTP secrets and signed audit head need the server "
                    f"key {', '.join(lacking)}, which these settings do not hold: copy the "
                    f"original key file to {settings.key_file} (or set secret_keys) first; "
                    "a key lost for good: --keys-lost, then `tidings secrets rotate --forget-lost`"
                ]
            )
        try:
            there = await engine.contents(url)
        except DumpFailed as exc:
            raise BackupProblem([str(exc)]) from exc
        if there is not None and not force:
            raise BackupProblem(
                [
                    f"{there}: a restore goes only into an empty data dir or database "
                    "(--force replaces what is there)"
                ]
            )
        engine.prepare(url)
        assert verified.database is not None
        try:
            await engine.load_dump(
                url, verified.database, replace=force, progress=steps.step("loading the database")
            )
        except DumpFailed as exc:
            raise BackupProblem([f"the restore failed: {exc}"]) from exc
        await asyncio.to_thread(migrations.upgrade, url)
        to = await asyncio.to_thread(migrations.current, url)
        container = Container(settings)
        try:
            done = await container.services.backups.restored(
                backup_head=int(manifest["stream_head"]),
                gap=settings.backup_restore_position_gap,
                details={
                    "backup_created_at": manifest.get("created_at"),
                    "file": path.name,
                    "schema_from": revision,
                    "schema_to": to,
                },
            )
        finally:
            await container.close()
        copy: Path | None = None
        if settings.database_url is None or settings.data_dir.is_dir():
            copy = settings.data_dir / "settings-from-backup.json"
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(_copy_settings, path, copy)
        return RestoreReport(manifest, revision, str(to), done.backup_head, done.resumed_at, copy)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _copy_settings(path: Path, copy: Path) -> None:
    with tarfile.open(path, "r:*") as tar:
        f = tar.extractfile(SETTINGS)
        if f is None:
            return
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(f.read())


# --- scheduled backups (the worker role) ---------------------------------------------
def scheduled_name(slot_start: float) -> str:
    return f"tidings-backup-{datetime.fromtimestamp(slot_start, UTC):%Y%m%dT%H%M%SZ}.tar.gz"


def scheduled_archives(directory: Path) -> list[Path]:
    """The scheduled archives in `directory`, oldest first (by name: their time)."""
    return sorted(
        p for p in directory.glob("tidings-backup-*.tar.gz") if SCHEDULED_NAME.match(p.name)
    )


def scheduled_time(path: Path) -> datetime:
    """When a scheduled archive's time slot began (its name says it)."""
    return datetime.strptime(path.name[15:31], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` scheduled archives (by name: their time)."""
    found = scheduled_archives(directory)
    gone = found[: max(0, len(found) - keep)]
    for p in gone:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    return gone


RECORD_GRACE_S = 30.0  # a scheduled backup's job: time past backup_timeout_seconds to record it


class ScheduledBackups:
    """Every `backup_interval_seconds`, one job per time slot (`backup.scheduled:<slot>`,
    so that workers on several nodes enqueue the same job once), run by one worker:
    the archive is named by its slot, written whole or not at all, the newest
    `backup_keep` kept; the outcome goes to services.backups (for /metrics)."""

    def __init__(
        self, settings: Settings, services: Services, clock: Callable[[], float] = time.time
    ):
        self.settings = settings
        self.services = services
        self.clock = clock
        self.interval = settings.backup_interval_seconds
        self._enqueued: int | None = None

    def register(self) -> None:
        # the backup itself stops at backup_timeout_seconds (run: recorded and counted as
        # a failure); the job's limit leaves time to record that
        self.services.jobs.register(
            JOB_KIND,
            self.run,
            JobPolicy(
                max_attempts=3,
                timeout_seconds=self.settings.backup_timeout_seconds + RECORD_GRACE_S,
            ),
        )

    def slot(self) -> int:
        return int(self.clock() // self.interval)

    async def tick(self) -> str | None:
        """Enqueue this slot's job (once per slot in this process; the job id makes it
        once across nodes). Returns its id when it enqueued."""
        slot = self.slot()
        if slot == self._enqueued:
            return None
        job_id = f"{JOB_KIND}:{slot}"
        async with self.services.deps.store.write() as tx:
            await self.services.jobs.enqueue(tx, JOB_KIND, {"slot": slot}, job_id=job_id)
        self._enqueued = slot
        return job_id

    async def run(self, job: Job) -> None:
        slot = int(str(job.payload["slot"]))
        directory = self.settings.backups_dir
        path = directory / scheduled_name(slot * self.interval)
        if path.exists():  # this slot's archive is whole (renamed into place): done
            return
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.settings.backup_timeout_seconds):
                made = await create_backup(self.settings, path)
        except Exception as exc:
            self.services.deps.counts.backup_failures += 1  # /metrics
            await self.services.backups.record(
                BackupStatus(
                    at=datetime.now(UTC),
                    ok=False,
                    file=path.name,
                    seconds=time.monotonic() - started,
                    scheduled=True,
                    error=(
                        f"timed out after {self.settings.backup_timeout_seconds:g} s"
                        if isinstance(exc, TimeoutError)
                        else f"{type(exc).__name__}: {exc}"[:300]
                    ),
                )
            )
            raise
        await self.services.backups.record(
            BackupStatus(
                at=datetime.now(UTC),
                ok=True,
                file=path.name,
                bytes=made.bytes,
                seconds=made.seconds,
                stream_head=int(made.manifest["stream_head"]),
                scheduled=True,
            )
        )
        gone = prune(directory, self.settings.backup_keep)
        log.info(
            "backup_made",
            file=path.name,
            bytes=made.bytes,
            seconds=round(made.seconds, 2),
            stream_head=made.manifest["stream_head"],
            pruned=len(gone),
        )
