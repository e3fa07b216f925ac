"""A TCP proxy to cut a service off from the platform without stopping the service (tests, fault bench).

The shared PostgreSQL and Redis of the test machines are never stopped: a test puts this proxy
between the platform and one of them, and :meth:`TcpProxy.close` simulates the outage (every
connection through it is dropped, and new ones are refused, as by a stopped server), :meth:`TcpProxy.open`
its end (the same port accepts again).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import TracebackType

from sqlalchemy.engine import make_url


class TcpProxy:
    """Forward connections to 127.0.0.1:``port`` to ``target``, until closed; reopen on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    @classmethod
    def to(cls, url: str, default_port: int) -> TcpProxy:
        """Return a proxy (not yet open) to the host and port of *url* (a database or Redis URL)."""
        parsed = make_url(url)
        return cls(parsed.host or "127.0.0.1", parsed.port or default_port)

    def url(self, url: str) -> str:
        """Return *url* pointed at this proxy instead of its own host and port."""
        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def open(self) -> TcpProxy:
        """Accept connections (on the same port as before, if it was open before)."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        thread = threading.Thread(target=self._accept, args=(listener,), daemon=True, name=f"proxy-{self.port}")
        with self._lock:
            self._threads.append(thread)
        thread.start()
        return self

    def close(self) -> None:
        """Drop every connection and refuse new ones, as a stopped server would."""
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not.
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout=5)
        for sock in sockets:
            sock.close()

    def __enter__(self) -> TcpProxy:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # closed meanwhile
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
                pumps = [
                    threading.Thread(target=self._pump, args=(source, sink), daemon=True)
                    for source, sink in ((client, upstream), (upstream, client))
                ]
                self._threads = [thread for thread in self._threads if thread.is_alive()] + pumps
            for pump in pumps:
                pump.start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        # One side ended: end the other too, so that neither end waits for the other. The sockets
        # are closed by close(), when no pump uses them any more.
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def proxy_to(url: str, default_port: int) -> Iterator[TcpProxy]:
    """Open a proxy to the server of *url*, and close it after."""
    with TcpProxy.to(url, default_port) as proxy:
        yield proxy
