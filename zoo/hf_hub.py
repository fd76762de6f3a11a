"""The Hugging Face Hub client side: ``hf-hub:ORG/REPO[@REVISION]`` names → a snapshot folder in the Hub cache.

Nothing hangs. While zoo talks to the Hub, every HTTP request huggingface_hub makes must start answering within
``ZOO_HUB_TIMEOUT`` seconds (default 10) — name lookup, connect, TLS and the response headers together — and every
later read of a download waits at most that long too. The first request that fails (timeout, refused connection, or a
429/5xx answer huggingface_hub would retry with back-off) ends the whole call at once: there are no retries, so a Hub
that never answers costs one ``ZOO_HUB_TIMEOUT``, not a multiple of it. ``HF_HUB_ETAG_TIMEOUT`` and
``HF_HUB_DOWNLOAD_TIMEOUT`` (read by huggingface_hub when it is imported) can only shorten the wait, never lengthen
it. Files stored on Xet come through the same client (the Hub's HTTP bridge), not the ``hf_xet`` extension, whose
requests zoo cannot bound: zoo's weights are megabytes, where Xet's chunk deduplication buys nothing.

Uploads (``zoo push``) are bounded the same way, with time for the bytes: a request carrying a body may take one more
second per 256 KiB of it (each read and write of the connection still waits at most ``ZOO_HUB_TIMEOUT``). They go
through the Hub's LFS protocol, not ``hf_xet``, for the same reason.

Offline. ``HF_HUB_OFFLINE=1`` (or zoo's older alias ``ZOO_OFFLINE=1``) serves names from the Hub cache only, with no
network access at all; so does a Hub that cannot be reached, for names whose revision the cache knows. A name without
a revision means ``@main``; a branch or tag resolves through ``<cache>/models--ORG--REPO/refs/<REVISION>``, which must
hold a 40-hex commit whose snapshot lies inside that repo folder. Revisions that could leave it (``..``, absolute
paths, backslashes, empty segments) are refused.
"""

from __future__ import annotations

import contextvars
import math
import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from zoo.errors import WeightsError, ZooError

REPO_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*"
REPO_RE = re.compile(f"^{REPO_PATTERN}$")
HF_REF_RE = re.compile(f"^(?P<repo>{REPO_PATTERN})(?:@(?P<rev>.*))?$")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
REVISION_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
TRUE_VALUES = ("1", "true", "yes", "on")  # what huggingface_hub accepts as "on" in its environment switches
DEFAULT_TIMEOUT = 10.0
RETRIED_STATUSES = (408, 429, 500, 502, 503, 504)  # huggingface_hub retries these with back-off (up to minutes)
# The slowest upload zoo waits for (bytes/s): a request body of B bytes gets B / UPLOAD_FLOOR more seconds to go out.
UPLOAD_FLOOR = 256 * 1024


class _HubUnreachable(Exception):
    """A request to the Hub failed in a way huggingface_hub would wait on or retry; zoo stops instead.

    ``waited`` is the timeout that ran out, or None when the Hub failed otherwise."""

    def __init__(self, reason: str, waited: float | None = None):
        super().__init__(reason)
        self.waited = waited


def offline_mode() -> bool:
    """Whether the environment forbids network access, read on every call (huggingface_hub reads it once, when it is
    imported): ``HF_HUB_OFFLINE`` (or, when that is unset, ``TRANSFORMERS_OFFLINE``) as huggingface_hub reads it, or
    zoo's older alias ``ZOO_OFFLINE``."""

    def on(value: str | None) -> bool:
        return (value or "").strip().lower() in TRUE_VALUES

    return on(os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")) or on(
        os.environ.get("ZOO_OFFLINE"))


def hub_timeout() -> float:
    """Seconds a Hub request may take to start answering (``ZOO_HUB_TIMEOUT``, default 10)."""
    raw = os.environ.get("ZOO_HUB_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ZooError(f"ZOO_HUB_TIMEOUT={raw!r} is not a positive number of seconds; set it to e.g. 30 or unset it")
    return seconds


def _revision_problem(revision: str) -> str | None:
    """Why ``revision`` could name a path outside its folder in the Hub cache, or None when it is safe."""
    if not revision:
        return "is empty"
    if "\\" in revision:
        return "contains a backslash"
    if revision.startswith("/"):
        return "is an absolute path"
    segments = revision.split("/")
    if "" in segments:
        return "has an empty path segment"
    if any(s in (".", "..") or ".." in s for s in segments):
        return "has a '..' segment"
    if not all(REVISION_SEGMENT_RE.match(s) for s in segments):
        return "may hold only letters, digits, '_', '-', '.' and '/'"
    return None


def check_revision(repo: str, revision: str | None) -> None:
    """Refuse a revision that could escape ``models--ORG--REPO`` in the cache (``refs/pr/1`` style names are fine)."""
    if revision is not None and (problem := _revision_problem(revision)):
        raise WeightsError(f"revision {revision!r} of hf-hub:{repo} {problem}; use a branch, a tag or a 40-hex "
                           f"commit, e.g. hf-hub:{repo}@main")


def parse_hf_ref(ref: str) -> tuple[str, str | None]:
    """``"org/repo@rev"`` → (``"org/repo"``, ``"rev"``)."""
    m = HF_REF_RE.match(ref)
    if not m:
        raise ZooError(f"malformed Hub reference {ref!r}; expected hf-hub:ORG/REPO or hf-hub:ORG/REPO@REVISION")
    check_revision(m["repo"], m["rev"])
    return m["repo"], m["rev"]


@contextmanager
def _quiet_hub() -> Iterator[None]:
    """Silence huggingface_hub's warnings: zoo reports a failure in one line of its own."""
    from huggingface_hub.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is in the chain of exceptions that led to ``error``."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _send_within(send: Callable[..., Any], request: Any, kwargs: dict[str, Any], deadline: float) -> Any:
    """``send(request, **kwargs)`` in a daemon thread, given ``deadline`` seconds; None if it did not finish.

    A thread, because name lookup (getaddrinfo) has no timeout of its own. A request still running after the
    deadline is abandoned, and its response, should one come, closed."""
    outcome: dict[str, Any] = {}
    abandoned = threading.Event()

    def run() -> None:
        try:
            outcome["response"] = send(request, **kwargs)
        except BaseException as exc:  # noqa: BLE001 (handed to the waiting thread, which raises it)
            outcome["error"] = exc
        else:
            if abandoned.is_set():
                outcome["response"].close()

    context = contextvars.copy_context()  # huggingface_hub flags download calls in a context variable
    worker = threading.Thread(target=context.run, args=(run,), name="zoo-hub-request", daemon=True)
    worker.start()
    worker.join(deadline)
    if worker.is_alive():
        abandoned.set()
        return None
    if "error" in outcome:
        raise outcome["error"]
    return outcome["response"]


def _host(url: Any) -> str:
    return url.host + (f":{url.port}" if url.port else "")


def _unreachable(error: Exception, url: Any, waited: float) -> _HubUnreachable:
    """The one-line reason for an httpx transport ``error`` on ``url`` (after timeouts of ``waited`` seconds)."""
    import httpx2

    host = _host(url)
    if isinstance(error, httpx2.TimeoutException):
        return _HubUnreachable(f"the Hub at {host} did not answer within {waited:g} s", waited)
    if _caused_by(error, socket.gaierror):
        return _HubUnreachable(f"there is no network (the Hub's host {url.host} does not resolve)")
    reason = (str(error).splitlines() or [type(error).__name__])[0]
    return _HubUnreachable(f"the Hub at {host} cannot be reached ({reason})")


def _bounded(send: Callable[..., Any], timeout: float) -> Callable[..., Any]:
    """Wrap an httpx ``Client.send``: the response must start within ``timeout`` seconds, each later read waits at
    most that long, and any failure huggingface_hub would retry or wait on — while sending or while a download
    streams in — raises :class:`_HubUnreachable`."""
    import httpx2

    class BoundedStream(httpx2.SyncByteStream):
        def __init__(self, stream: httpx2.SyncByteStream, url: httpx2.URL, waited: float):
            self.stream, self.url, self.waited = stream, url, waited

        def __iter__(self) -> Iterator[bytes]:
            try:
                yield from self.stream
            except httpx2.TransportError as exc:  # huggingface_hub would resume the download, up to 5 times
                raise _unreachable(exc, self.url, self.waited) from None

        def close(self) -> None:
            self.stream.close()

    def bounded_send(request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        asked = request.extensions.get("timeout") or {}
        phases = {phase: min(asked.get(phase) or timeout, timeout) for phase in ("connect", "read", "write", "pool")}
        request.extensions = {**request.extensions, "timeout": phases}
        waited = max(phases.values())
        body = int(request.headers.get("content-length") or 0)  # an upload: time for its bytes to go out
        deadline = timeout + body / UPLOAD_FLOOR
        try:
            response = _send_within(send, request, kwargs, deadline)
        except httpx2.TransportError as exc:
            raise _unreachable(exc, request.url, waited) from None
        if response is None:
            raise _unreachable(httpx2.ReadTimeout("no answer", request=request), request.url, round(deadline, 1))
        if response.status_code in RETRIED_STATUSES:
            response.close()
            raise _HubUnreachable(f"the Hub at {_host(response.url)} answered HTTP {response.status_code}")
        if kwargs.get("stream"):
            response.stream = BoundedStream(response.stream, response.url, waited)
        return response

    return bounded_send


_SESSION_LOCK = threading.Lock()


@contextmanager
def _online_session(timeout: float) -> Iterator[None]:
    """huggingface_hub online for one zoo call, with every request of its shared HTTP client bounded by ``timeout``.

    huggingface_hub calls some endpoints (repo info, tree listing) with no timeout at all and retries network errors
    with back-off; wrapping the client's ``send`` covers every call it makes, whatever its own settings. Its offline
    switch, read once at import, is set to what zoo decided from the environment now. Files go down and up through
    that client (HTTP and LFS), not through ``hf_xet``, whose requests zoo cannot bound."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    with _SESSION_LOCK:
        session = get_session()
        was_offline, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, False
        no_xet, constants.HF_HUB_DISABLE_XET = constants.HF_HUB_DISABLE_XET, True
        session.send = _bounded(session.send, timeout)
        try:
            yield
        finally:
            del session.send  # the class's own method again
            constants.HF_HUB_OFFLINE = was_offline
            constants.HF_HUB_DISABLE_XET = no_xet


def _check_inside(snapshot: Path, repo_folder: Path, where: str) -> None:
    """Refuse a snapshot that is, or holds files that are, outside the repo's folder once symlinks are resolved."""
    root = repo_folder.resolve()
    for path in (snapshot, *snapshot.rglob("*")):
        if not path.resolve().is_relative_to(root):
            raise WeightsError(f"{where}: {path} in the Hub cache leads outside {repo_folder}; delete {snapshot} "
                               f"and run `zoo pull` again")


def _cached_snapshot(repo: str, revision: str | None, cache_dir: Path, where: str) -> Path | None:
    """The complete snapshot of ``repo@revision`` in the cache (branches and tags through their ref), or None;
    reads files only."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError
    from huggingface_hub.file_download import repo_folder_name

    repo_folder = cache_dir / repo_folder_name(repo_id=repo, repo_type="model")
    commit = revision or "main"
    if not COMMIT_RE.match(commit):
        ref = repo_folder / "refs" / commit
        if not ref.is_file():
            return None
        commit = ref.read_text(errors="replace").strip()
        if not COMMIT_RE.match(commit):
            raise WeightsError(f"{where}: the Hub cache's ref file {ref} holds {commit[:60]!r}, not a 40-hex commit; "
                               f"delete it and run `zoo pull` again")
    snapshot = repo_folder / "snapshots" / commit
    if not snapshot.is_dir():
        return None
    _check_inside(snapshot, repo_folder, where)
    try:  # huggingface_hub knows from its cached file listing whether the snapshot is complete
        snapshot_download(repo, revision=commit, cache_dir=cache_dir, local_files_only=True)
    except LocalEntryNotFoundError:  # IncompleteSnapshotError included
        return None
    return snapshot


def hub_download(repo: str, revision: str | None, *, cache_dir: str | os.PathLike[str] | None = None,
                 offline: bool | None = None) -> Path:
    """The snapshot folder of ``repo@revision`` in the Hub cache, downloading it unless offline.

    ``offline=None`` follows the environment (see :func:`offline_mode`). A 40-hex revision already in the cache is
    served without any network request; so is any cached revision when the Hub cannot be reached."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError
    from huggingface_hub.file_download import repo_folder_name

    from zoo import __version__

    check_revision(repo, revision)
    if not REPO_RE.match(repo):
        raise WeightsError(f"malformed Hub repository {repo!r}; expected ORG/REPO")
    offline = offline_mode() if offline is None else offline
    cache = Path(cache_dir if cache_dir is not None else constants.HF_HUB_CACHE).expanduser()
    where = f"hf-hub:{repo}" + (f"@{revision}" if revision else "")
    pinned = revision is not None and COMMIT_RE.match(revision) is not None
    # a pinned commit never changes: no need to ask the Hub
    if (offline or pinned) and (cached := _cached_snapshot(repo, revision, cache, where)):
        return cached
    if offline:
        raise WeightsError(f"{where} is not in the Hub cache ({cache}) and offline mode is on; "
                           f"run `zoo pull` where the Hub is reachable or set HF_HUB_CACHE to a cache that has it")
    timeout = hub_timeout()
    try:
        with _quiet_hub(), _online_session(timeout):
            path = Path(snapshot_download(repo, revision=revision, cache_dir=cache, etag_timeout=timeout,
                                          library_name="latent-zoo", library_version=__version__))
    except _HubUnreachable as exc:
        if not pinned and (cached := _cached_snapshot(repo, revision, cache, where)):
            return cached  # as huggingface_hub does: the cached ref is the best answer without the Hub
        advice = "run `zoo pull` where the Hub is reachable"
        if exc.waited is not None:
            advice = f"set ZOO_HUB_TIMEOUT=SECONDS to wait longer than {exc.waited:g} s, or {advice}"
        raise WeightsError(f"{where} is not in the Hub cache and {exc}; {advice}") from None
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise WeightsError(f"{where} was not found on the Hub ({type(exc).__name__})") from None
    except (HfHubHTTPError, OSError) as exc:
        raise WeightsError(f"could not fetch {where}: {str(exc).splitlines()[0]}") from None
    _check_inside(path, cache / repo_folder_name(repo_id=repo, repo_type="model"), where)
    return path


def _http_status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def hub_upload(folder: str | os.PathLike[str], repo: str, *, branch: str | None = None, private: bool = False,
               token: str | None = None, commit_message: str | None = None) -> str:
    """Upload every file of ``folder`` to the Hub model repo ``repo`` in one commit, creating the repo (``private``
    if new) and ``branch`` when missing; returns the commit's 40-hex id.

    Bounded like every zoo Hub call (see the module docstring); offline mode refuses without a network attempt. The
    token is ``token``, else huggingface_hub's (``HF_TOKEN`` or ``hf auth login``)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from zoo import __version__

    where = f"hf-hub:{repo}" + (f"@{branch}" if branch else "")
    if not REPO_RE.match(repo):
        raise ZooError(f"malformed Hub repository {repo!r}; expected ORG/REPO, e.g. my-org/myvae.dsprites")
    check_revision(repo, branch)
    if branch is not None and COMMIT_RE.match(branch):
        raise ZooError(f"{where}: a push goes to a branch, not to a commit; name a branch, e.g. --revision main")
    if offline_mode():
        raise ZooError(f"cannot push to {where}: offline mode is on (HF_HUB_OFFLINE or ZOO_OFFLINE); unset it where "
                       f"the Hub is reachable")
    timeout = hub_timeout()
    api = HfApi(token=token, library_name="latent-zoo", library_version=__version__)
    try:
        with _quiet_hub(), _online_session(timeout):
            api.create_repo(repo, private=private or None, exist_ok=True)
            if branch is not None:
                api.create_branch(repo, branch=branch, exist_ok=True)
            commit = api.upload_folder(repo_id=repo, folder_path=str(folder), revision=branch,
                                       commit_message=commit_message or "Upload weights with zoo push")
    except _HubUnreachable as exc:
        advice = "try again where the Hub is reachable"
        if exc.waited is not None:
            advice = f"set ZOO_HUB_TIMEOUT=SECONDS to wait longer than {exc.waited:g} s, or {advice}"
        raise ZooError(f"could not push to {where}: {exc}; {advice}") from None
    except HfHubHTTPError as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        if _http_status(exc) in (401, 403):
            reason += "; pass --token (a write token), set HF_TOKEN or run `hf auth login`"
        raise ZooError(f"the Hub refused the push to {where}: {reason}") from None
    except (OSError, ValueError) as exc:  # no token at all, a file that vanished, a refused argument
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ZooError(f"could not push to {where}: {reason}") from None
    oid = getattr(commit, "oid", None)
    if not isinstance(oid, str) or not COMMIT_RE.match(oid):
        raise ZooError(f"the Hub answered the push to {where} without a commit id ({str(oid)[:60]!r}); check the "
                       f"repo's history on the Hub")
    return oid
