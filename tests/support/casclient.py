"""Drive python-cas through the Flask test client (python-cas takes a requests-like ``session``)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

from flask.testing import FlaskClient


class _Response:
    def __init__(self, response) -> None:  # type: ignore[no-untyped-def]
        self.status_code = response.status_code
        self.content: bytes = response.get_data()
        self.text = self.content.decode("utf-8")
        self.headers = response.headers

    def iter_lines(self, chunk_size: int = 512, decode_unicode: bool = False) -> Iterator[str | bytes]:
        for line in self.content.splitlines():
            yield line.decode("utf-8") if decode_unicode else line

    def close(self) -> None:
        pass


class FlaskSession:
    """The subset of ``requests.Session`` python-cas uses, over a Flask test client."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    @staticmethod
    def _path(url: str, params: dict | None) -> str:
        parts = urlsplit(url)
        query = parts.query
        if params:
            query = "&".join(filter(None, [query, urlencode(params)]))
        return parts.path + (f"?{query}" if query else "")

    def get(self, url: str, params: dict | None = None, **_: object) -> _Response:
        return _Response(self.client.get(self._path(url, params)))

    def post(
        self,
        url: str,
        data: bytes | str | None = None,
        params: dict | None = None,
        headers: dict | None = None,
        **_: object,
    ) -> _Response:
        return _Response(self.client.post(self._path(url, params), data=data, headers=headers or {}))
