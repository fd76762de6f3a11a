"""The Hugging Face Hub client side: ``hf-hub:ORG/REPO[@REVISION]`` names → a snapshot folder in the Hub cache."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zoo.errors import WeightsError, ZooError

HF_REF_RE = re.compile(r"^(?P<repo>[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*)(?:@(?P<rev>[A-Za-z0-9_./-]+))?$")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


@contextmanager
def _quiet_hub() -> Iterator[None]:
    """Silence huggingface_hub's retry warnings: zoo reports a failure in one line of its own."""
    from huggingface_hub.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _hub_resolves() -> bool:
    """Fail fast without network: huggingface_hub would retry name resolution for ~20 s before giving up."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def parse_hf_ref(ref: str) -> tuple[str, str | None]:
    """``"org/repo@rev"`` → (``"org/repo"``, ``"rev"``)."""
    m = HF_REF_RE.match(ref)
    if not m:
        raise ZooError(f"malformed Hub reference {ref!r}; expected hf-hub:ORG/REPO or hf-hub:ORG/REPO@REVISION")
    return m["repo"], m["rev"]



def hub_download(repo: str, revision: str | None, *, cache_dir: str | os.PathLike[str] | None = None,
                 offline: bool | None = None) -> Path:
    """The snapshot folder of ``repo@revision`` in the Hub cache, downloading it unless ``offline``.

    With a full 40-hex revision already cached, huggingface_hub returns it without any network request."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    from zoo import __version__

    offline = offline if offline is not None else os.environ.get("ZOO_OFFLINE", "") not in ("", "0")
    where = f"hf-hub:{repo}" + (f"@{revision}" if revision else "")
    if revision and COMMIT_RE.match(revision) and not offline:
        # A pinned commit never changes: serve it from the cache without asking the Hub (snapshot_download would
        # list the repo tree first, retrying for ~20 s when there is no network).
        try:
            return hub_download(repo, revision, cache_dir=cache_dir, offline=True)
        except WeightsError:
            pass
    if not offline and not _hub_resolves():
        raise WeightsError(f"{where} is not in the Hub cache and there is no network (the Hub's host does not "
                           f"resolve); run `zoo pull` where the Hub is reachable")
    try:
        with _quiet_hub():
            path = snapshot_download(repo, revision=revision, cache_dir=cache_dir, local_files_only=offline,
                                     library_name="latent-zoo", library_version=__version__)
    except LocalEntryNotFoundError:
        how = "offline mode is on" if offline else "the Hub cannot be reached"
        raise WeightsError(f"{where} is not in the Hub cache and {how}; run `zoo pull` where the Hub is reachable "
                           f"or set HF_HUB_CACHE to a cache that has it") from None
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise WeightsError(f"{where} was not found on the Hub ({type(exc).__name__})") from None
    except (HfHubHTTPError, OSError) as exc:
        raise WeightsError(f"could not fetch {where}: {str(exc).splitlines()[0]}") from None
    return Path(path)
