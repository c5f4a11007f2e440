"""uvicorn's httptools protocol with a cap on the request head (request line and headers).

uvicorn caps the head only with its h11 parser (``h11_max_incomplete_event_size``); with
httptools (the faster one, which ``housing serve`` uses) a client may send 10 MB of headers and
the server keeps them all. This subclass feeds the parser no more than ``max_head_bytes`` of a
head: a request whose head is not complete by then gets 431 and the connection is closed.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

REFUSED = b"request head larger than the server accepts (HOUSING_MAX_HEADER_BYTES)"


class HeadCappedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` refusing heads over ``config.h11_max_incomplete_event_size``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes: int = self.config.h11_max_incomplete_event_size or 16_384
        self._head_bytes = 0
        self._in_body = False  # between the end of a head and the end of its message

    def data_received(self, data: bytes) -> None:
        if self._in_body:
            super().data_received(data)
            return
        room = self.max_head_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # Feed what the cap allows; the rest only if the head ended within it.
        self._head_bytes += room
        super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if not self._in_body:
            self._refuse()
            return
        self.data_received(data[room:])

    def on_headers_complete(self) -> None:
        self._in_body = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_body = False
        self._head_bytes = 0

    def _refuse(self) -> None:
        """431 and close (as uvicorn answers a head it cannot parse with 400)."""
        self.logger.warning("Request head over %d bytes refused.", self.max_head_bytes)
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            + b"content-length: %d\r\n" % len(REFUSED)
            + b"connection: close\r\n\r\n"
            + REFUSED
        )
        self.transport.close()
