"""The Hub client never hangs, honours offline mode without touching the network, resolves cached refs offline, and
never leaves the cache's repo folder."""

import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import zoo
from zoo import hf_hub
from zoo.errors import WeightsError, ZooError
from zoo.testing import FAKE_REVISION, fake_hub_from_folder

REPO = "zoo-models/toyae.hub"
OTHER_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
OFFLINE_SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "ZOO_OFFLINE")


# --- endpoints that misbehave ------------------------------------------------------------------------------------


@contextmanager
def blackhole():
    """Accepts connections (the kernel completes them) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


@contextmanager
def serving(respond):
    """A local HTTP server whose handler runs ``respond(handler, stop)`` for every GET and HEAD; its URL."""
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            respond(self, stop)

        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def answers_503():
    """Answers every request with 503, which huggingface_hub would retry with back-off."""
    return serving(lambda handler, stop: handler.send_error(503))


def drips_headers():
    """Sends its status line and then one header byte every 0.3 s (for 10 s): no single read ever times out."""
    def respond(handler, stop):
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Drip: ")
        for _ in range(33):
            if stop.wait(0.3):
                break
            handler.wfile.write(b"a")
            handler.wfile.flush()
    return serving(respond)


def stalls_mid_body():
    """Announces 1000 bytes, sends 10 and stops (for 10 s, then hangs up)."""
    def respond(handler, stop):
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(b"0123456789")
        handler.wfile.flush()
        stop.wait(10)
    return serving(respond)


@contextmanager
def refuses():
    """A port nobody listens on: connections are refused, which huggingface_hub would retry with back-off."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


def run_cli(args, endpoint, home: Path, timeout: str | None):
    """``zoo ARGS`` in a fresh process (huggingface_hub reads HF_ENDPOINT when imported); (result, seconds)."""
    env = {k: v for k, v in os.environ.items() if k not in (*OFFLINE_SWITCHES, "ZOO_HUB_TIMEOUT")}
    env |= {"HF_ENDPOINT": endpoint, "HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"),
            "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    if timeout is not None:
        env["ZOO_HUB_TIMEOUT"] = timeout
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", "from zoo_cli.main import main; main()", *args], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    return result, time.monotonic() - start


def assert_one_error_line(result, *needles):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("endpoint, command, name, needles", [
    pytest.param(blackhole, "pull", "hf-hub:org/repo", ["did not answer within 1 s", "ZOO_HUB_TIMEOUT"], id="pull"),
    pytest.param(blackhole, "pull", f"hf-hub:org/repo@{FAKE_REVISION}", ["did not answer within 1 s"],
                 id="pull-pinned"),
    pytest.param(blackhole, "info", f"hf-hub:org/repo@{FAKE_REVISION}", ["did not answer within 1 s"],
                 id="info-pinned"),
    pytest.param(answers_503, "pull", f"hf-hub:org/repo@{FAKE_REVISION}", ["answered HTTP 503"], id="http-503"),
    pytest.param(refuses, "pull", f"hf-hub:org/repo@{FAKE_REVISION}", ["cannot be reached"], id="refused"),
])
def test_misbehaving_hub_fails_fast_in_one_line(endpoint, command, name, needles, tmp_path):
    with endpoint() as url:
        result, seconds = run_cli([command, name], url, tmp_path, timeout="1")
    assert_one_error_line(result, name, *needles)
    # huggingface_hub's own back-off alone would take 23 s here; a 1 s timeout plus start-up needs far less
    assert seconds < 15, f"took {seconds:.1f} s"


def test_default_timeout_is_bounded(tmp_path):
    with blackhole() as url:
        result, seconds = run_cli(["pull", "hf-hub:org/repo"], url, tmp_path, timeout=None)
    assert_one_error_line(result, f"did not answer within {hf_hub.DEFAULT_TIMEOUT:g} s", "ZOO_HUB_TIMEOUT")
    assert seconds < 30, f"took {seconds:.1f} s"


@pytest.mark.parametrize("endpoint, stream", [
    pytest.param(blackhole, False, id="never-answers"),
    pytest.param(drips_headers, False, id="drips-headers"),
    pytest.param(stalls_mid_body, True, id="stalls-mid-download"),
])
def test_each_request_is_bounded(endpoint, stream):
    """The wrapper zoo puts around huggingface_hub's client: one timeout, whatever the server does."""
    import httpx2

    with endpoint() as url, httpx2.Client() as client:
        send = hf_hub._bounded(client.send, 1.0)
        start = time.monotonic()
        with pytest.raises(hf_hub._HubUnreachable, match="did not answer within 1 s"):
            response = send(client.build_request("GET", url), stream=stream)
            b"".join(response.iter_bytes())
        assert time.monotonic() - start < 5


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan", "inf"])
def test_bad_timeout_setting_is_one_line(value, monkeypatch):
    monkeypatch.setenv("ZOO_HUB_TIMEOUT", value)
    with pytest.raises(ZooError, match="ZOO_HUB_TIMEOUT") as err:
        hf_hub.hub_timeout()
    assert "\n" not in str(err.value)


# --- offline: from the cache only, no socket --------------------------------------------------------------------


@pytest.fixture
def online(monkeypatch):
    """No offline switch in the environment."""
    for switch in OFFLINE_SWITCHES:
        monkeypatch.delenv(switch, raising=False)


@pytest.fixture
def no_network(monkeypatch):
    """Every way to reach the network fails the test (and is recorded, in case a caller swallows the error)."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access attempted in offline mode")

    for owner, name in [(socket, "getaddrinfo"), (socket, "create_connection"), (socket.socket, "connect"),
                        (socket.socket, "connect_ex")]:
        monkeypatch.setattr(owner, name, refuse)
    yield attempts
    assert attempts == [], f"network used: {attempts}"


@pytest.fixture
def hub_cache(toy_plugin, tmp_path):
    """A Hub cache holding toy weights at FAKE_REVISION, reached by refs/main and refs/refs/pr/1; (cache, model)."""
    model = zoo.create_model("toyae", pretrained=False, seed=3)
    folder = zoo.save_pretrained(model, tmp_path / "weights", tag="hub")
    cache = tmp_path / "cache"
    snapshot = fake_hub_from_folder(cache, REPO, folder)
    (snapshot.parent.parent / "refs" / "refs" / "pr").mkdir(parents=True)
    (snapshot.parent.parent / "refs" / "refs" / "pr" / "1").write_text(FAKE_REVISION)
    return cache, model


@pytest.mark.parametrize("switch", ["HF_HUB_OFFLINE", "ZOO_OFFLINE"])
@pytest.mark.parametrize("suffix", ["", "@main", "@refs/pr/1", f"@{FAKE_REVISION}"])
def test_offline_resolves_cached_refs_without_network(switch, suffix, hub_cache, no_network, monkeypatch):
    cache, model = hub_cache
    monkeypatch.setenv(switch, "1")
    loaded = zoo.create_model(f"hf-hub:{REPO}{suffix}", cache_dir=cache)
    assert loaded.weights_source == f"hf-hub:{REPO}{suffix}"
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert a.equal(b), name


@pytest.mark.parametrize("switch", ["HF_HUB_OFFLINE", "ZOO_OFFLINE"])
@pytest.mark.parametrize("suffix", ["", "@main", "@v2", f"@{OTHER_COMMIT}"])
def test_offline_miss_is_one_line_without_network(switch, suffix, hub_cache, no_network, monkeypatch):
    cache, _ = hub_cache
    monkeypatch.setenv(switch, "1")
    name = f"hf-hub:zoo-models/absent{suffix}" if suffix in ("", "@main") else f"hf-hub:{REPO}{suffix}"
    with pytest.raises(WeightsError, match="not in the Hub cache .* offline mode is on") as err:
        zoo.create_model(name, cache_dir=cache)
    assert "\n" not in str(err.value)


def test_offline_switch_read_at_call_time(online, monkeypatch):
    """hub_download(offline=None) decides from the environment at every call: off by default, on for 1/true/yes/on
    (whatever huggingface_hub read when it was imported)."""
    assert not hf_hub.offline_mode()
    for switch in OFFLINE_SWITCHES:
        for value, offline in [("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("", False)]:
            monkeypatch.setenv(switch, value)
            assert hf_hub.offline_mode() == offline, (switch, value)
        monkeypatch.delenv(switch)


def test_cached_pinned_commit_needs_no_network_even_online(hub_cache, no_network, online):
    assert zoo.create_model(f"hf-hub:{REPO}@{FAKE_REVISION}", cache_dir=hub_cache[0]).arch == "toyae"


@pytest.fixture
def no_dns(online, monkeypatch):
    """A machine without network: names do not resolve."""
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)


@pytest.mark.parametrize("suffix", ["", "@main", "@refs/pr/1"])
def test_unreachable_hub_falls_back_to_cached_ref(suffix, hub_cache, no_dns):
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    offline_before = constants.HF_HUB_OFFLINE
    assert zoo.create_model(f"hf-hub:{REPO}{suffix}", cache_dir=hub_cache[0]).arch == "toyae"
    with pytest.raises(WeightsError, match="no network .* does not resolve") as err:
        zoo.create_model(f"hf-hub:zoo-models/absent{suffix}", cache_dir=hub_cache[0])
    assert "\n" not in str(err.value)
    # the bounded client and the offline switch are huggingface_hub's own again after the call
    assert "send" not in vars(get_session()) and constants.HF_HUB_OFFLINE == offline_before


# --- nothing outside the cache's repo folder ---------------------------------------------------------------------


@pytest.mark.parametrize("revision, problem", [
    ("..", "'..' segment"),
    ("../../../etc", "'..' segment"),
    ("main/../../x", "'..' segment"),
    ("a..b", "'..' segment"),
    ("/etc/passwd", "absolute path"),
    ("a\\..\\b", "backslash"),
    ("refs//main", "empty path segment"),
    ("main/", "empty path segment"),
    ("", "is empty"),
    ("ma in", "may hold only"),
])
def test_escaping_revision_is_refused(revision, problem, cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for call in (lambda: hf_hub.parse_hf_ref(f"org/repo@{revision}"),  # names typed by users
                 lambda: hf_hub.hub_download("org/repo", revision, cache_dir=tmp_path)):  # revisions from plugins
        with pytest.raises(WeightsError, match=problem) as err:
            call()
        assert "\n" not in str(err.value)
    result = cli("pull", f"hf-hub:org/repo@{revision}")
    assert result.exit_code != 0 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and problem in lines[0], result.stderr


@pytest.mark.parametrize("revision", ["main", "refs/pr/1", "v1.0", "feature/x-y_z", FAKE_REVISION])
def test_ordinary_revisions_parse(revision):
    assert hf_hub.parse_hf_ref(f"org/repo@{revision}") == ("org/repo", revision)


def _plant_ref_text(repo_folder: Path, outside: Path):
    (repo_folder / "refs" / "main").write_text(f"../../../{outside.name}")


def _plant_absolute_ref(repo_folder: Path, outside: Path):
    (repo_folder / "refs" / "main").write_text(str(outside))


def _plant_snapshot_link(repo_folder: Path, outside: Path):
    (repo_folder / "refs" / "main").write_text(OTHER_COMMIT)
    (repo_folder / "snapshots" / OTHER_COMMIT).symlink_to(outside, target_is_directory=True)


def _plant_file_link(repo_folder: Path, outside: Path):
    snapshot = repo_folder / "snapshots" / FAKE_REVISION
    (snapshot / "model.safetensors").unlink()
    (snapshot / "model.safetensors").symlink_to(outside / "model.safetensors")


@pytest.mark.parametrize("plant, needle", [
    pytest.param(_plant_ref_text, "not a 40-hex commit", id="ref-holds-relative-path"),
    pytest.param(_plant_absolute_ref, "not a 40-hex commit", id="ref-holds-absolute-path"),
    pytest.param(_plant_snapshot_link, "leads outside", id="snapshot-links-outside"),
    pytest.param(_plant_file_link, "leads outside", id="file-links-outside"),
])
def test_planted_cache_entry_pointing_outside_is_refused(plant, needle, hub_cache, tmp_path, no_network,
                                                          monkeypatch):
    cache, _ = hub_cache
    outside = tmp_path / "outside"
    outside.mkdir()
    snapshot = cache / f"models--{REPO.replace('/', '--')}" / "snapshots" / FAKE_REVISION
    for f in snapshot.iterdir():
        (outside / f.name).write_bytes(f.read_bytes())
    plant(snapshot.parent.parent, outside)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    revision = FAKE_REVISION if plant is _plant_file_link else "main"
    with pytest.raises(WeightsError, match=needle) as err:
        zoo.create_model(f"hf-hub:{REPO}@{revision}", cache_dir=cache)
    assert "\n" not in str(err.value)


def test_downloads_go_through_the_bounded_client_not_hf_xet(hub_cache, online, monkeypatch):
    """hf_xet's requests escape zoo's timeouts: while zoo downloads, huggingface_hub must not use it (the Hub's HTTP
    bridge serves Xet files through the client zoo bounds); the switch is restored afterwards."""
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.utils import _runtime

    cache, _ = hub_cache
    seen = []

    def snapshot_download(repo_id, **kwargs):
        seen.append(_runtime.is_xet_available())
        return str(next((cache / "models--zoo-models--toyae.hub" / "snapshots").iterdir()))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    before = constants.HF_HUB_DISABLE_XET
    assert hf_hub.hub_download(REPO, None, cache_dir=cache).is_dir()
    assert seen == [False] and constants.HF_HUB_DISABLE_XET == before
