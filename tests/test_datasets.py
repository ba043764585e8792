"""Readers, the UCI download path (against a local HTTP server) and the split."""

import http.server
import threading
import zipfile

import numpy as np
import pytest

from skflow.datasets import (
    ETHYLENE_CO_COLUMNS,
    fetch_gas,
    gas_paper_split,
    load_gas,
    load_gas_drift,
    read_ethylene_co,
)
from skflow.datasets import _gas

from .conftest import shared_path

HEADER = "Time (seconds), CO conc (ppm), Ethylene conc (ppm), sensor readings (16 channels) \n"


def _ethylene_text(n_rows, seed=0, header=HEADER):
    rng = np.random.RandomState(seed)
    rows = np.column_stack([
        np.arange(n_rows) * 0.01,
        rng.choice([0.0, 5.56], n_rows),
        rng.choice([0.0, 6.25], n_rows),
        rng.normal(1000, 300, (n_rows, 16)).round(2),
    ])
    lines = ["  ".join(f"{v:.2f}" for v in row) for row in rows]
    return header + "\n".join(lines) + "\n", rows


def test_read_ethylene_co_uci_format(tmp_path):
    text, rows = _ethylene_text(250)
    path = tmp_path / "ethylene_CO.txt"
    path.write_text(text)
    data = read_ethylene_co(path)
    assert data.shape == (250, 19) and data.dtype == np.float32
    np.testing.assert_allclose(data, rows, rtol=1e-6, atol=1e-3)
    assert len(ETHYLENE_CO_COLUMNS) == 19
    bunch = load_gas(path)
    assert bunch.feature_names[:3] == ["time_s", "co_ppm", "ethylene_ppm"]
    with pytest.raises(ValueError, match="expected 251"):
        read_ethylene_co(path, expected_rows=251)


def test_read_without_trailing_newline_and_float64(tmp_path):
    text, rows = _ethylene_text(5)
    path = tmp_path / "e.txt"
    path.write_text(text.rstrip("\n"))
    data = read_ethylene_co(path, dtype=np.float64)
    np.testing.assert_allclose(data, rows, atol=1e-9)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda t: t.replace(HEADER, "1 2 3\n"), "header"),
        (lambda t: t.replace("\n", "\n1.0 2.0\n", 2).replace(HEADER.replace("\n", "\n1.0 2.0\n"), HEADER), "parse|columns"),
        (lambda t: t.replace("5.56", "abc", 1), "parse"),
    ],
)
def test_reader_rejects_malformed_files(tmp_path, mutate, match):
    text, _ = _ethylene_text(30)
    path = tmp_path / "bad.txt"
    path.write_text(mutate(text))
    with pytest.raises(ValueError, match=match):
        read_ethylene_co(path)


def test_load_gas_without_cache_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="fetch_gas"):
        load_gas(data_home=tmp_path)


# ------------------------------------------------------------ download path
class _Server:
    def __init__(self, payload: bytes):
        self.payload = payload
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.payload)))
                self.end_headers()
                self.wfile.write(outer.payload)

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/gas.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _uci_archive(tmp_path, n_rows=120, **kw):
    text, rows = _ethylene_text(n_rows, **kw)
    methane, _ = _ethylene_text(10, seed=1, header=HEADER.replace("CO conc", "Methane conc"))
    archive = tmp_path / "archive.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ethylene_CO.txt", text)
        zf.writestr("ethylene_methane.txt", methane)
    return archive.read_bytes(), rows


@pytest.fixture
def serve(monkeypatch):
    servers = []

    def start(payload, n_rows=120):
        server = _Server(payload)
        servers.append(server)
        monkeypatch.setattr(_gas, "GAS_URL", server.url)
        monkeypatch.setattr(_gas, "ETHYLENE_CO_ROWS", n_rows)
        return server

    yield start
    for s in servers:
        s.close()


def test_fetch_downloads_verifies_and_caches(tmp_path, serve):
    payload, rows = _uci_archive(tmp_path)
    server = serve(payload)
    home = tmp_path / "home"
    bunch = fetch_gas(data_home=home)
    assert bunch.data.shape == (120, 19)
    np.testing.assert_allclose(bunch.data, rows, atol=1e-3)
    assert server.requests == 1
    again = fetch_gas(data_home=home)  # from the cache, no second download
    assert server.requests == 1
    np.testing.assert_array_equal(again.data, bunch.data)
    np.testing.assert_array_equal(load_gas(data_home=home).data, bunch.data)
    assert [p.name for p in (home / "gas").iterdir()] == ["ethylene_CO.npy"]


def test_fetch_checks_checksum_when_known(tmp_path, serve, monkeypatch):
    payload, _ = _uci_archive(tmp_path)
    serve(payload)
    monkeypatch.setattr(_gas, "GAS_ARCHIVE_SHA256", "0" * 64)
    with pytest.raises(ValueError, match="SHA-256"):
        fetch_gas(data_home=tmp_path / "home")
    assert not any((tmp_path / "home" / "gas").iterdir())


@pytest.mark.parametrize("damage", ["truncate", "rows", "member"])
def test_fetch_rejects_bad_archives_and_caches_nothing(tmp_path, serve, damage):
    payload, _ = _uci_archive(tmp_path)
    n_rows = 120
    if damage == "truncate":
        payload = payload[: len(payload) // 2]
    elif damage == "rows":
        n_rows = 121
    else:
        bad = tmp_path / "other.zip"
        with zipfile.ZipFile(bad, "w") as zf:
            zf.writestr("readme.txt", "hello")
        payload = bad.read_bytes()
    serve(payload, n_rows)
    with pytest.raises(ValueError, match="corrupt|truncated|rows|no ethylene_CO"):
        fetch_gas(data_home=tmp_path / "home")
    assert not any((tmp_path / "home" / "gas").iterdir())


def test_fetch_without_network_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(_gas, "GAS_URL", "http://127.0.0.1:9/unreachable.zip")
    with pytest.raises(OSError, match="could not download"):
        fetch_gas(data_home=tmp_path)
    with pytest.raises(OSError, match="download_if_missing"):
        fetch_gas(data_home=tmp_path, download_if_missing=False)


# --------------------------------------------------------------------- split
def test_paper_split_sizes_on_full_file_row_count():
    X = np.arange(4_208_261)
    train, val, test = gas_paper_split(X, random_state=0)
    assert (len(train), len(val), len(test)) == (852_174, 94_685, 105_206)
    assert len(np.intersect1d(train, test)) == 0 and len(np.intersect1d(train, val)) == 0


def test_paper_split_is_reproducible():
    X = np.arange(1000)
    a = gas_paper_split(X, random_state=3, sample_fraction=1.0)
    b = gas_paper_split(X, random_state=3, sample_fraction=1.0)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert sum(len(p) for p in a) == 1000


# ----------------------------------------------------------------- real data
def test_load_gas_drift_from_shared():
    folder = shared_path("uci_gas_sensor_array_drift")
    bunch = load_gas_drift(folder, batches=[1, 4])
    assert bunch.data.shape == (445 + 161, 129)
    assert set(np.unique(bunch.batch)) == {1, 4}
    assert bunch.feature_names[0] == "concentration"
    with pytest.raises(FileNotFoundError):
        load_gas_drift(folder, batches=[7])
