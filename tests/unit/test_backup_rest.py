"""Listing a rest-server repository's locks from the control node: restic's REST protocol, v2 listing."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from dccli.backup.prepare import rest_lock_ids
from dccli.backup.profile import REST, Repository

LOCK = "f313ee96751bb16a69e8c4f013c287fa5736ba2201cbb751e985777fc39b29b5"


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            expected = "Basic " + base64.b64encode(b"dccli:p/w@rd").decode()
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.end_headers()
                return
            if self.headers.get("Accept") != "application/vnd.x.restic.rest.v2":
                self.send_response(400)  # rclone: "Restic v2 API required"
                self.end_headers()
                return
            body = json.dumps([{"name": LOCK, "size": 439}, {"name": "not-a-lock", "size": 1}]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.x.restic.rest.v2")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_lock_listing_with_decoded_credentials(server) -> None:
    where, seen = server
    repo = Repository("off", REST, f"rest:http://dccli:p%2Fw%40rd@{where}/dccli/main")
    assert rest_lock_ids(repo) == (LOCK,)
    assert seen[-1]["path"] == "/dccli/main/locks/"


def test_refused_or_unreachable_is_unknown_not_empty(server) -> None:
    where, _ = server
    assert rest_lock_ids(Repository("off", REST, f"rest:http://dccli:wrong@{where}/dccli/main")) is None
    assert rest_lock_ids(Repository("off", REST, "rest:http://127.0.0.1:9/dccli/main"), timeout=2) is None
