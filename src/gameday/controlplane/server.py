"""The local AWS control plane: moto in server mode + our Global Accelerator and Aurora transitions, one WSGI app.

One ControlPlane per process (moto's state is process-global); several processes (one per
pytest-xdist worker) can each run one on their own loopback port.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from gameday.controlplane import fixes
from gameday.controlplane.aurora import models as aurora_models
from gameday.controlplane.aurora import responses as aurora_responses
from gameday.controlplane.globalaccelerator import responses as ga_responses
from gameday.controlplane.globalaccelerator.models import DEFAULT_ACCOUNT, ga_backends
from gameday.controlplane.hooks import ApiCall, Hooks
from gameday.controlplane.requests import identify
from gameday.errors import ControlPlaneError
from gameday.util.net import LOOPBACK, assert_loopback, free_port, port_open

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]


class FrontApp:
    """WSGI app in front of moto: GA requests to our emulation, the rest to moto; hooks around both."""

    def __init__(self, hooks: Hooks, serialize: bool = True) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        fixes.apply()
        aurora_responses.install()
        self.hooks = hooks
        self.moto = DomainDispatcherApplication(create_backend_app)
        # moto's backends are not thread-safe; calls are short, so one at a time costs little.
        self._moto_lock = threading.RLock() if serialize else None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = _read_body(environ)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        is_ga = target.startswith(ga_responses.TARGET_PREFIX)
        want_info = is_ga or self.hooks.has_any()
        info = identify(environ, body) if want_info else None
        call = ApiCall(info.service, info.action, info.region, info.params) if info else None
        answer = self.hooks.run_override(call) if call is not None else None
        if answer is not None:
            status, headers, payload = _normalize(answer)
        elif is_ga:
            status, headers, payload = ga_responses.dispatch(
                target[len(ga_responses.TARGET_PREFIX) :], body, DEFAULT_ACCOUNT
            )
        else:
            status, headers, payload = self._call_moto(environ)
        if call is not None:
            self.hooks.run_after(ApiCall(call.service, call.action, call.region, call.params, status))
        start_response(_status_line(status), headers)
        return [payload]

    def _call_moto(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        captured: dict[str, Any] = {}

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        if self._moto_lock is not None and not _long_poll(environ):
            with self._moto_lock:
                payload = _drain(self.moto(environ, capture))
        else:
            payload = _drain(self.moto(environ, capture))
        code = int(str(captured.get("status", "500")).split(" ", 1)[0])
        return code, list(captured.get("headers", [])), payload


def _long_poll(environ: dict[str, Any]) -> bool:
    """SQS ReceiveMessage may block for WaitTimeSeconds; under the global lock it would stall every
    other API call (measured: 4 s per call with two consumers). moto's SQS waits on its own condition."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.endswith(".ReceiveMessage"):
        return True
    body = environ.get("gameday.body", b"")
    return b"Action=ReceiveMessage" in body if isinstance(body, bytes) else False


def _drain(it: Iterable[bytes]) -> bytes:
    try:
        return b"".join(it)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the whole body once and put it back so moto can read it again."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            body = stream.read(int(length))
        except ValueError:
            body = b""
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["gameday.body"] = bytes(body)
    return bytes(body)


def _normalize(answer: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    status, headers, body = answer
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers)
    data = body.encode() if isinstance(body, str) else bytes(body)
    hdrs = [(k, v) for k, v in hdrs if k.lower() != "content-length"]
    hdrs.append(("Content-Length", str(len(data))))
    return int(status), hdrs, data


def _status_line(code: int) -> str:
    from http import HTTPStatus

    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Unknown"


class ControlPlane:
    """A threaded werkzeug server on 127.0.0.1 serving moto + Global Accelerator."""

    def __init__(self, port: int | None = None, host: str = LOOPBACK) -> None:
        assert_loopback(host)
        self.host = host
        self._requested_port = port
        self.port: int = port or 0
        self.hooks = Hooks()
        self._server: BaseWSGIServer | None = None
        self.app: FrontApp | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if not self.port:
            raise ControlPlaneError("control plane not started: call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> ControlPlane:
        """Bind and serve in a daemon thread; returns once the port accepts connections."""
        if self.running:
            return self
        from moto.moto_server.werkzeug_app import MotoRequestHandler

        class QuietHandler(MotoRequestHandler):
            """No access log line per request (terraform makes thousands)."""

            def log_request(self, *args: Any, **kwargs: Any) -> None:
                return

        port = self._requested_port or free_port()
        try:
            app = FrontApp(self.hooks)
            self.app = app
            self._server = make_server(self.host, port, app, threaded=True, request_handler=QuietHandler)
        except OSError as exc:
            raise ControlPlaneError(f"cannot bind the control plane on {self.host}:{port}: {exc}") from exc
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"controlplane-{self.port}",
            daemon=True,
        )
        self._thread.start()
        if not port_open(self.port, self.host, timeout=2.0):
            self.stop()
            raise ControlPlaneError(f"control plane on {self.host}:{self.port} does not accept connections")
        log.info("control plane listening on %s", self.url)
        return self

    @contextlib.contextmanager
    def quiesced(self) -> Iterator[None]:
        """No moto call runs meanwhile (a consistent point to snapshot the backends)."""
        lock = self.app._moto_lock if self.app is not None else None
        if lock is None:
            yield
            return
        with lock:
            yield

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def reset(self) -> None:
        """Forget every resource (moto's and Global Accelerator's); hooks stay registered."""
        from moto.moto_api._internal import moto_api_backend

        moto_api_backend.reset()
        ga_backends.reset()
        aurora_models.reset()

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
