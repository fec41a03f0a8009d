"""Tests for downloading series, against a local HTTP server that mimics FRED and the World Bank."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from regimes.data import fetch_series, load_series
from regimes.data.catalog import PinkSheetSource
from regimes.data.fetch import parse_fred_csv, parse_pinksheet
from regimes.data.sources import clear_cache
from regimes.errors import DataError, UnknownSeriesError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "data" / "fred"


@dataclass
class Route:
    body: bytes
    status: int = 200
    content_type: str = "text/csv"
    truncate: bool = False  # announce more bytes than sent, then close (a dropped connection)


@dataclass
class FakeServer:
    """A local HTTP server: `routes` maps request path (with query) to a Route; counts hits."""

    base: str
    routes: dict[str, Route] = field(default_factory=dict)
    hits: Counter = field(default_factory=Counter)

    @property
    def fred_template(self) -> str:
        return f"{self.base}/graph/fredgraph.csv?id={{id}}"

    @property
    def pinksheet_url(self) -> str:
        return f"{self.base}/pinksheet/CMO-Historical-Data-Monthly.xlsx"

    def fred(self, fred_id: str, body: bytes, **kw: object) -> None:
        self.routes[f"/graph/fredgraph.csv?id={fred_id}"] = Route(body, **kw)  # type: ignore[arg-type]

    def fred_hits(self, fred_id: str) -> int:
        return self.hits[f"/graph/fredgraph.csv?id={fred_id}"]


@pytest.fixture
def server() -> Iterator[FakeServer]:
    state = FakeServer(base="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] += 1
            route = state.routes.get(self.path)
            if route is None:
                self.send_error(404, "Not Found")
                return
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            length = len(route.body) + (1000 if route.truncate else 0)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(route.body)
            if route.truncate:
                self.wfile.flush()
                self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never let a test reach the real publishers through environment overrides."""
    monkeypatch.delenv("REGIMES_FRED_URL", raising=False)
    monkeypatch.delenv("REGIMES_PINKSHEET_URL", raising=False)
    clear_cache()


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def pinksheet_bytes(*, unit_gold: str = "($/troy oz)", sheet: str = "Monthly Prices") -> bytes:
    """A tiny workbook with the real Pink Sheet layout (title rows, header, units, 1960M01 rows)."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "AFOSHEET"
    ws = book.create_sheet(sheet)
    ws.append(["World Bank Commodity Price Data (The Pink Sheet)"])
    ws.append(["monthly prices in nominal US dollars, 1960 to present"])
    ws.append(["(monthly series are available only in nominal US dollars)"])
    ws.append(["Updated on June 02, 2026"])
    ws.append([None, "Crude oil, average", "Crude oil, WTI", "Copper", "Gold", "Platinum",
               "Silver"])  # fmt: skip
    ws.append([None, "($/bbl)", "($/bbl)", "($/mt)", unit_gold, "($/troy oz)", "($/troy oz)"])
    ws.append(["1960M01", 1.63, "…", 715.4, 35.27, 83.5, 0.91])
    ws.append(["1960M02", 1.63, "…", 728.19, 35.27, "..", 0.91])
    ws.append(["1960M03", 1.63, "…", 732.0, "…", 83.5, "0.92"])
    ws.append(["2026M05", 100.43, 99.09, 13000, 4587.21, 1900, 70])
    book.create_sheet("Description")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def read_provenance(data_dir: Path, sid: str) -> dict:
    return json.loads((data_dir / "fetched" / f"{sid}.provenance.json").read_text())


# ----------------------------------------------------------------------------- FRED


def test_fred_monthly_with_dot_missing(server: FakeServer, tmp_path: Path) -> None:
    body = fixture_bytes("GS10.csv")
    server.fred("GS10", body)
    (prov,) = fetch_series(["GS10"], tmp_path, fred_url=server.fred_template)
    tidy = (tmp_path / "fetched" / "GS10.csv").read_text().splitlines()
    assert tidy == [
        "date,value", "2020-01-01,1.76", "2020-02-01,1.5", "2020-04-01,0.66", "2020-06-01,0.73",
    ]  # fmt: skip
    assert prov.rows == 4 and prov.first == "2020-01-01" and prov.last == "2020-06-01"
    assert prov.sha256 == hashlib.sha256(body).hexdigest()
    assert prov.source_url == server.fred_template.format(id="GS10")
    assert not prov.from_cache
    on_disk = read_provenance(tmp_path, "GS10")
    assert on_disk["sha256"] == hashlib.sha256(body).hexdigest()
    assert on_disk["rows"] == 4 and on_disk["source_url"] == prov.source_url
    retrieved = dt.datetime.fromisoformat(on_disk["retrieved_at"])
    assert retrieved.utcoffset() == dt.timedelta(0)
    # the loader reads the fetched copy when there is no snapshot file
    gs10 = load_series("GS10", tmp_path)
    assert list(gs10) == [1.76, 1.5, 0.66, 0.73]
    assert gs10.index[2] == pd.Timestamp("2020-04-01")


def test_fred_old_header_accepted(server: FakeServer, tmp_path: Path) -> None:
    server.fred("GS10", b"DATE,GS10\r\n2020-01-01,1.76\r\n2020-02-01,.\r\n")
    fetch_series(["GS10"], tmp_path, fred_url=server.fred_template)
    assert list(load_series("GS10", tmp_path)) == [1.76]


def test_fred_daily_aggregated_to_monthly_mean(server: FakeServer, tmp_path: Path) -> None:
    server.fred("DFII10", fixture_bytes("DFII10.csv"))
    (prov,) = fetch_series(["DFII10"], tmp_path, fred_url=server.fred_template)
    tips = load_series("DFII10", tmp_path)
    # Jan: (1 + 2 + 4) / 3 (the "." day is skipped); Feb: (0.5 + 1.5) / 2; Mar: only "."; Apr: -0.25
    assert list(tips.index.strftime("%Y-%m-%d")) == ["2020-01-01", "2020-02-01", "2020-04-01"]
    assert tips.iloc[0] == pytest.approx(7 / 3, rel=1e-15)
    assert tips.iloc[1] == pytest.approx(1.0) and tips.iloc[2] == pytest.approx(-0.25)
    assert prov.rows == 3


def test_fred_quarterly_and_fiscal_year(server: FakeServer, tmp_path: Path) -> None:
    server.fred("GDP", fixture_bytes("GDP.csv"))
    server.fred("FYFSD", fixture_bytes("FYFSD.csv"))
    fetch_series(["GDP", "FYFSD"], tmp_path, fred_url=server.fred_template)
    assert load_series("GDP", tmp_path).index[-1] == pd.Timestamp("2020-04-01")
    deficit = load_series("FYFSD", tmp_path)
    assert list(deficit.index.strftime("%Y-%m-%d")) == ["1975-06-01", "1976-06-01", "1977-09-01"]


def test_cache_reuse_force_and_expiry(server: FakeServer, tmp_path: Path) -> None:
    body = fixture_bytes("GS10.csv")
    server.fred("GS10", body)
    first = fetch_series(["GS10"], tmp_path, fred_url=server.fred_template)[0]
    second = fetch_series(["GS10"], tmp_path, fred_url=server.fred_template)[0]
    assert server.fred_hits("GS10") == 1  # second call made no request
    assert second.from_cache and second.sha256 == first.sha256
    assert second.retrieved_at == first.retrieved_at
    fetch_series(["GS10"], tmp_path, fred_url=server.fred_template, force=True)
    assert server.fred_hits("GS10") == 2
    fetch_series(["GS10"], tmp_path, fred_url=server.fred_template, max_age=dt.timedelta(0))
    assert server.fred_hits("GS10") == 3
    # a different URL for the same id is not served from the cache
    server.routes["/other?id=GS10"] = server.routes["/graph/fredgraph.csv?id=GS10"]
    fetch_series(["GS10"], tmp_path, fred_url=f"{server.base}/other?id={{id}}")
    assert server.hits["/other?id=GS10"] == 1


def test_env_var_overrides_fred_url(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.fred("UNRATE", b"observation_date,UNRATE\n2020-04-01,14.8\n")
    monkeypatch.setenv("REGIMES_FRED_URL", server.fred_template)
    (prov,) = fetch_series(["UNRATE"], tmp_path)
    assert prov.source_url.startswith(server.base)
    assert list(load_series("UNRATE", tmp_path)) == [14.8]


def test_http_404_is_a_clear_error(server: FakeServer, tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        fetch_series(["GS10"], tmp_path, fred_url=server.fred_template)
    message = str(info.value)
    assert "HTTP 404" in message and server.fred_template.format(id="GS10") in message
    assert not (tmp_path / "fetched" / "GS10.csv").exists()
    assert not (tmp_path / "fetched" / "raw" / "fred_GS10.csv").exists()


def test_malformed_content_is_a_clear_error(server: FakeServer, tmp_path: Path) -> None:
    server.fred("GS10", b"<html><body>Service unavailable</body></html>", content_type="text/html")
    with pytest.raises(DataError, match=r"unexpected content .*GS10.*observation_date"):
        fetch_series(["GS10"], tmp_path, fred_url=server.fred_template)
    assert not (tmp_path / "fetched" / "GS10.csv").exists()
    # a malformed download is not cached: the next call asks again
    server.fred("GS10", b"observation_date,GS10\n2020-01-01,abc\n")
    with pytest.raises(DataError, match=r"non-numeric value 'abc' on 2020-01-01"):
        fetch_series(["GS10"], tmp_path, fred_url=server.fred_template)
    assert server.fred_hits("GS10") == 2


def test_wrong_series_in_response_rejected() -> None:
    with pytest.raises(DataError, match="expected a CSV header"):
        parse_fred_csv(b"observation_date,GS1\n2020-01-01,1\n", "GS10")
    with pytest.raises(DataError, match="no observations"):
        parse_fred_csv(b"observation_date,GS10\n2020-01-01,.\n", "GS10")
    with pytest.raises(DataError, match="bad date"):
        parse_fred_csv(b"observation_date,GS10\n01/02/2020,1\n", "GS10")


def test_monthly_series_with_daily_dates_rejected(server: FakeServer, tmp_path: Path) -> None:
    server.fred("GS10", b"observation_date,GS10\n2020-01-02,1\n")
    with pytest.raises(DataError, match="not the start of a monthly period"):
        fetch_series(["GS10"], tmp_path, fred_url=server.fred_template)


def test_failed_download_leaves_no_partial_file(server: FakeServer, tmp_path: Path) -> None:
    good = fixture_bytes("GS10.csv")
    server.fred("GS10", good)
    fetch_series(["GS10"], tmp_path, fred_url=server.fred_template)
    fetched = tmp_path / "fetched"
    before = {p.name: p.read_bytes() for p in fetched.rglob("*") if p.is_file()}
    # the connection drops mid-body (Content-Length larger than what is sent)
    server.fred("GS10", good[:40], truncate=True)
    with pytest.raises(DataError, match="no network"):
        fetch_series(["GS10"], tmp_path, fred_url=server.fred_template, force=True)
    after = {p.name: p.read_bytes() for p in fetched.rglob("*") if p.is_file()}
    assert after == before  # old files intact, no temp files left behind
    # the same in a fresh directory: nothing at all is written
    fresh = tmp_path / "fresh"
    with pytest.raises(DataError):
        fetch_series(["GS10"], fresh, fred_url=server.fred_template)
    assert not any(p.is_file() for p in fresh.rglob("*"))


def test_unreachable_host_suggests_snapshot(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DataError, match=r"no network\? use the snapshot in \.\./shared/data"):
        fetch_series(["GS10"], tmp_path, fred_url=f"http://127.0.0.1:{port}/{{id}}", timeout=5)


def test_only_downloadable_and_known_ids(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"TWEXAFEGSMTHx .*FRED-MD.*shared/data"):
        fetch_series(["GS10", "TWEXAFEGSMTHx"], tmp_path, fred_url="http://127.0.0.1:9/{id}")
    with pytest.raises(UnknownSeriesError, match="GS10"):
        fetch_series(["GS100"], tmp_path)
    assert not (tmp_path / "fetched").exists()


# ----------------------------------------------------------------------------- Pink Sheet


def test_pinksheet_columns_parsed_with_one_request(server: FakeServer, tmp_path: Path) -> None:
    body = pinksheet_bytes()
    server.routes["/pinksheet/CMO-Historical-Data-Monthly.xlsx"] = Route(
        body, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    provs = fetch_series(["GOLD", "SILVER", "OIL", "PLATINUM"], tmp_path,
                         pinksheet_url=server.pinksheet_url)  # fmt: skip
    assert [p.series_id for p in provs] == ["GOLD", "SILVER", "OIL", "PLATINUM"]
    assert server.hits["/pinksheet/CMO-Historical-Data-Monthly.xlsx"] == 1
    assert all(p.sha256 == hashlib.sha256(body).hexdigest() for p in provs)
    gold = load_series("GOLD", tmp_path)
    assert list(gold.index.strftime("%Y-%m")) == ["1960-01", "1960-02", "2026-05"]
    assert list(gold) == [35.27, 35.27, 4587.21]
    assert list(load_series("SILVER", tmp_path)) == [0.91, 0.91, 0.92, 70.0]
    assert list(load_series("PLATINUM", tmp_path)) == [83.5, 83.5, 1900.0]
    assert load_series("OIL", tmp_path).iloc[-1] == 100.43
    assert read_provenance(tmp_path, "GOLD")["rows"] == 3
    fetch_series(["COPPER"], tmp_path, pinksheet_url=server.pinksheet_url)  # cached workbook
    assert server.hits["/pinksheet/CMO-Historical-Data-Monthly.xlsx"] == 1
    assert load_series("COPPER", tmp_path).iloc[1] == 728.19


def test_pinksheet_unit_change_rejected() -> None:
    with pytest.raises(DataError, match=r"'Gold' is now in '\(\$/kg\)'"):
        parse_pinksheet(
            pinksheet_bytes(unit_gold="($/kg)"), [PinkSheetSource("Gold", "($/troy oz)")]
        )


def test_pinksheet_malformed_workbooks_rejected(server: FakeServer, tmp_path: Path) -> None:
    gold = [PinkSheetSource("Gold", "($/troy oz)")]
    with pytest.raises(DataError, match="no sheet 'Monthly Prices'"):
        parse_pinksheet(pinksheet_bytes(sheet="Prices"), gold)
    with pytest.raises(DataError, match="column 'Tin' not found"):
        parse_pinksheet(pinksheet_bytes(), [PinkSheetSource("Tin", "($/mt)")])
    server.routes["/pinksheet/CMO-Historical-Data-Monthly.xlsx"] = Route(b"not a zip file")
    with pytest.raises(DataError, match="not an xlsx workbook"):
        fetch_series(["GOLD"], tmp_path, pinksheet_url=server.pinksheet_url)
    assert not (tmp_path / "fetched" / "GOLD.csv").exists()


def test_pinksheet_env_var(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.routes["/pinksheet/CMO-Historical-Data-Monthly.xlsx"] = Route(pinksheet_bytes())
    monkeypatch.setenv("REGIMES_PINKSHEET_URL", server.pinksheet_url)
    (prov,) = fetch_series(["GOLD"], tmp_path)
    assert prov.source_url == server.pinksheet_url


@pytest.mark.parametrize(
    "url",
    [
        "http://example.org/fred?id={id}",  # plain http to a remote host
        "file:///etc/passwd?{id}",
        "ftp://example.org/{id}.csv",
        "https:///{id}",  # no host
    ],
)
def test_only_https_downloads_are_accepted(tmp_path: Path, url: str) -> None:
    """A URL override may not switch to plain http off this machine or to another scheme: the
    download is refused before any request, naming the URL and the rule."""
    with pytest.raises(DataError, match=r"refusing to download .* only https URLs are accepted"):
        fetch_series(["GS10"], tmp_path, fred_url=url, timeout=1)
    assert not (tmp_path / "fetched" / "GS10.csv").exists()
