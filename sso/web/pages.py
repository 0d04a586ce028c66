"""Small page helpers shared by the views."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from flask import Response, make_response, render_template


def message_page(title: str, text: str, status: int, link: tuple[str, str] | None = None) -> Response:
    """A page that tells one thing (an error, a confirmation), with an optional link ``(url, label)``."""
    body = render_template("message.html", title=title, text=text, link=link, status=status)
    return make_response(body, status)


class PageCache:
    """A small least-recently-used cache of rendered pages (thread-safe, bounded: keys may come
    from the client)."""

    def __init__(self, size: int = 256) -> None:
        self._pages: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def get(self, key: Hashable) -> str | None:
        """The page kept under ``key``, if any."""
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
            return page

    def put(self, key: Hashable, page: str) -> None:
        """Keep ``page``, forgetting the least recently used one beyond the size."""
        with self._lock:
            self._pages[key] = page
            self._pages.move_to_end(key)
            if len(self._pages) > self.size:
                self._pages.popitem(last=False)
