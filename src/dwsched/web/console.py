"""The web console at /console/: static pages, sign-in, and one JSON call endpoint.

The pages are static files (no build step): HTML, CSS and JavaScript modules that draw
every value with `textContent`, never as markup. Everything they show or do goes through
`POST /console/api/call`, `{"Action": ..., "Parameters": {...}}`, which runs the RPC API's
own handlers through api.calls (the same authorisation, validation and audit as a signed
request), as the signed-in user. A few console views (web.views) combine what several
actions show; each is authorised as the actions whose data it reads.

Sessions: a random cookie (HttpOnly, SameSite=Lax, Secure over TLS) whose SHA-256 is a row
of the database, so every API process knows it and signing out ends it everywhere. Every
POST but sign-in carries the session's CSRF token in `X-CSRF-Token`; every POST must come
from the console's own origin (Origin header) and be JSON.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Awaitable
from importlib import resources
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from dwsched.api import audit, registry
from dwsched.api.app import PARAMETER_NAME
from dwsched.api.calls import Calls, Who
from dwsched.api.errors import API_VERSION, INTERNAL_ERROR, envelope, error_body
from dwsched.api.throttle import READ, Throttle
from dwsched.clock import Clock
from dwsched.domain.errors import DwschedError, InvalidArgument, Throttled, UnknownAction
from dwsched.domain.sessions import Session
from dwsched.store import Store
from dwsched.web import passwords, views
from dwsched.web.signin import Busy, SignInGuard

log = logging.getLogger("dwsched.web")
COOKIE = "dwsched_session"
IDLE_MS = 8 * 3600 * 1000  # a session not used for this long ends
MAX_MS = 7 * 24 * 3600 * 1000  # and any session this long after its sign-in
TOUCH_MS = 60 * 1000  # how stale last_seen may get before it is written again
MAX_BODY = 256 * 1024
AUDIT_LABEL = "console"  # the audit log's AccessKeyId column for console requests
STATIC = resources.files("dwsched.web") / "static"
PAGE = resources.files("dwsched.web") / "index.html"  # not under static/: served with headers
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


class _Static(StaticFiles):
    """The pages' scripts and styles, with the console's security headers (revalidated
    rather than never stored: they change only with a new release)."""

    async def get_response(self, path: str, scope: Any) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update({**SECURITY_HEADERS, "cache-control": "no-cache"})
        return response


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _json(status: int, body: dict[str, Any], request_id: str | None = None) -> Response:
    headers = dict(SECURITY_HEADERS)
    if request_id:
        headers["x-acs-request-id"] = request_id
    return Response(_encode(body), status, headers, media_type="application/json")


def _refusal(status: int, code: str, message: str) -> Response:
    """A console refusal in the API's error envelope."""
    request_id = str(uuid.uuid4()).upper()
    return _json(status, envelope(request_id, status, code, message), request_id)


def _internal_error(request: Request) -> Response:
    request_id = str(uuid.uuid4()).upper()
    log.exception("console_error request_id=%s path=%s", request_id, request.url.path)
    status, code, message = INTERNAL_ERROR
    return _json(status, envelope(request_id, status, code, message), request_id)


def _text_parameter(name: str, value: Any) -> str:
    """A console parameter as the RPC API receives it: arrays and objects as JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | list | dict):
        return _encode(value).decode()
    raise InvalidArgument(name, f"The parameter {name} has a value of an unsupported type.")


class Console:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        calls: Calls,
        throttle: Throttle | None = None,
        body_timeout: float = 30.0,
    ) -> None:
        """`body_timeout`: seconds a request's body may take to arrive."""
        self.store = store
        self.clock = clock
        self.calls = calls
        self.throttle = throttle
        self.body_timeout = body_timeout
        self.guard = SignInGuard(store)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/console", self.home, methods=["GET"]),
            Mount(
                "/console",
                routes=[
                    Route("/api/session", self.session, methods=["GET"]),
                    Route("/api/signin", self.sign_in, methods=["POST"]),
                    Route("/api/signout", self.sign_out, methods=["POST"]),
                    Route("/api/call", self.call, methods=["POST"]),
                    Mount("/static", _Static(directory=str(STATIC)), name="static"),
                    Route("/{page:path}", self.page, methods=["GET"]),
                ],
            ),
        ]

    # Pages -------------------------------------------------------------------------------

    async def home(self, _request: Request) -> Response:
        return RedirectResponse("/console/", 308)

    async def page(self, request: Request) -> Response:
        """Every console address is the one page; its script draws the view the address
        names (so each view can be bookmarked and shared)."""
        if request.path_params.get("page", "").startswith("api/"):
            return _refusal(404, "NotFound", "No such console endpoint.")
        response = FileResponse(str(PAGE), media_type="text/html")
        response.headers.update(SECURITY_HEADERS)
        return response

    # Sessions ----------------------------------------------------------------------------

    async def session(self, request: Request) -> Response:
        return await self._respond(request, self._session_info, check_csrf=False)

    def _session_info(
        self, request: Request, _body: dict[str, Any], found: Session
    ) -> dict[str, Any]:
        """Who is signed in, the CSRF token, and (saving the page a round trip before it
        can draw anything) the workspaces ListProjects shows the user."""
        body = {"Action": "ListProjects", "Parameters": {"PageSize": 100}}
        projects = self._call(request, body, found)["PagingInfo"]
        return {"UserName": found.user_name, "CsrfToken": found.csrf_token, "Projects": projects}

    async def sign_in(self, request: Request) -> Response:
        return await self._guarded(request, self._sign_in(request))

    async def _sign_in(self, request: Request) -> Response:
        self._same_origin(request)
        body = await self._body(request)
        name, password = body.get("UserName"), body.get("Password")
        if not isinstance(name, str) or not name or len(name) > 64:
            raise _Refused(400, "MissingUserName", "Enter your user name (UserName).")
        if not isinstance(password, str) or not password or len(password) > 1024:
            raise _Refused(400, "MissingPassword", "Enter your password (Password).")
        source = request.client.host if request.client else ""
        now = self.clock.now_ms()
        try:
            attempt = await run_in_threadpool(self.guard.admit, name, source, now)
        except Throttled as throttled:
            await run_in_threadpool(self._audit_sign_in, name, "Throttling.User", source)
            raise throttled
        try:
            slot = self.guard.slot()
        except Busy as busy:
            await run_in_threadpool(self.guard.cancel, attempt)
            raise _Refused(503, "ServiceUnavailable", "Too many sign-ins at once; retry.") from busy
        try:
            token, csrf = await run_in_threadpool(self._start_session, name, password)
        finally:
            slot.release()
        if token is None:  # counted as failed already, by admit
            await run_in_threadpool(self._audit_sign_in, name, "SignInFailed", source)
            raise _Refused(401, "SignInFailed", "The user name or the password is wrong.")
        await run_in_threadpool(self.guard.succeeded, attempt, self.clock.now_ms())
        await run_in_threadpool(self._audit_sign_in, name, "OK", source)
        response = _json(200, {"UserName": name, "CsrfToken": csrf})
        response.set_cookie(
            COOKIE,
            token,
            max_age=IDLE_MS // 1000,
            path="/console",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )
        return response

    def _audit_sign_in(self, name: str, result: str, source: str) -> None:
        """Sign-ins, failed ones too, are in the audit log (`dwsched audit --action
        ConsoleSignIn`)."""
        try:
            with self.store.write() as tx:
                tx.audit.record(
                    audit.entry(
                        now_ms=self.clock.now_ms(),
                        user=name,
                        access_key_id=AUDIT_LABEL,
                        action="ConsoleSignIn",
                        params={},
                        result=result,
                        request_id=str(uuid.uuid4()).upper(),
                        source=source,
                    )
                )
        except Exception:
            log.exception("audit_failed action=ConsoleSignIn")

    def _start_session(self, name: str, password: str) -> tuple[str | None, str]:
        with self.store.read() as tx:
            found = tx.users.password_of(name)
        if not passwords.verify(found[1] if found else None, password) or found is None:
            return None, ""
        user_id, stored = found
        if passwords.needs_rehash(stored):
            with self.store.write() as tx:
                tx.users.set_password(name, passwords.hash_password(password))
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock.now_ms()
        with self.store.write() as tx:
            tx.sessions.create(_digest(token), user_id, csrf, now, now + IDLE_MS)
        return token, csrf

    async def sign_out(self, request: Request) -> Response:
        response = await self._respond(request, self._end_session)
        if response.status_code == 200:
            response.delete_cookie(COOKIE, path="/console")
        return response

    def _end_session(
        self, request: Request, _body: dict[str, Any], _found: Session
    ) -> dict[str, Any]:
        with self.store.write() as tx:
            tx.sessions.end(_digest(request.cookies[COOKIE]))
        return {"Success": True}

    # Calls -------------------------------------------------------------------------------

    async def call(self, request: Request) -> Response:
        return await self._respond(request, self._call)

    def _call(self, request: Request, body: dict[str, Any], found: Session) -> dict[str, Any]:
        action = body.get("Action")
        raw = body.get("Parameters", {})
        if not isinstance(raw, dict):
            raise InvalidArgument("Parameters", "The parameter Parameters must be an object.")
        params: dict[str, str] = {}
        for name, value in raw.items():
            if not PARAMETER_NAME.fullmatch(name):
                raise InvalidArgument(name[:64], f"The parameter name {name[:64]!r} is not valid.")
            if value is not None:
                params[name] = _text_parameter(name, value)
        request_id = str(uuid.uuid4()).upper()
        now_ms = self.clock.now_ms()
        who = Who(AUDIT_LABEL, found.user_id)
        source = request.client.host if request.client else ""
        secure = request.url.scheme == "https"
        # The RPC actions the console may call (api.registry's CONSOLE) and its views; anything
        # else is refused before authorisation, and recorded unless it is known only to read.
        if not isinstance(action, str) or not (action in registry.CONSOLE or action in views.VIEWS):
            refused = _Refused(
                400, "InvalidAction.NotFound", f"The console does not serve the action {action!r}."
            )
            known = registry.ACTIONS.get(action) if isinstance(action, str) else None
            if isinstance(action, str) and action and (known is None or known.audited):
                error = UnknownAction(refused.message)
                name = action[:64]
                self.calls.record(
                    None, AUDIT_LABEL, name, params, error, request_id, source, found.user_name
                )
            raise refused
        view = views.VIEWS.get(action)
        if view is not None:  # a view only reads: throttled as a read, not audited
            handler, authorised_as, cls, audited = view.handler, view.authorised_as, READ, False
        else:
            spec = registry.lookup(action, API_VERSION)
            handler, authorised_as, cls, audited = spec.handler, (), spec.throttle, spec.audited
        if self.throttle is not None:
            self.throttle.admit(f"console:{found.user_id}", cls, now_ms)
        result = self.calls.run(
            handler, action, params, who, source, secure, request_id, now_ms, authorised_as, audited
        )
        result["RequestId"] = request_id
        return result

    # Plumbing ----------------------------------------------------------------------------

    def _signed_in(self, request: Request) -> Session:
        token = request.cookies.get(COOKIE)
        now = self.clock.now_ms()
        with self.store.read() as tx:
            found = tx.sessions.find(_digest(token), now) if token else None
        if found is not None and now - found.create_time > MAX_MS:
            with self.store.write() as tx:
                tx.sessions.end(_digest(str(token)))
            found = None
        if found is None:
            raise _Refused(401, "NotSignedIn", "Sign in to use the console.")
        if now - found.last_seen > TOUCH_MS:
            with self.store.write() as tx:
                tx.sessions.touch(_digest(str(token)), now, now + IDLE_MS)
        return found

    @staticmethod
    def _same_origin(request: Request) -> None:
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        if origin is not None and origin != own:
            raise _Refused(403, "Forbidden.Origin", "The request does not come from the console.")
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise _Refused(415, "UnsupportedMediaType", "The console sends JSON.")

    async def _body(self, request: Request) -> dict[str, Any]:
        body = b""
        try:
            async with asyncio.timeout(self.body_timeout):
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > MAX_BODY:
                        raise _Refused(413, "RequestTooLarge", "The request body is too large.")
        except TimeoutError as exc:
            raise _Refused(408, "RequestTimeout", "The request body came too slowly.") from exc
        try:
            return _decode(body or b"{}")
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise _Refused(400, "InvalidJson", "The request body is not a JSON object.") from exc

    async def _respond(self, request: Request, work: Any, check_csrf: bool = True) -> Response:
        """Run `work(request, body, session)` on a worker thread after the checks every
        console request passes (origin, JSON, session, CSRF token)."""

        async def respond() -> Response:
            body: dict[str, Any] = {}
            if request.method == "POST":
                self._same_origin(request)
                body = await self._body(request)
            result = await run_in_threadpool(self._serve, request, body, work, check_csrf)
            return _json(200, result, result.get("RequestId"))

        return await self._guarded(request, respond())

    async def _guarded(self, request: Request, answer: Awaitable[Response]) -> Response:
        """The answer; a refusal or an error becomes the RPC API's error envelope, and no
        traceback reaches the client."""
        try:
            return await answer
        except _Refused as refused:
            return _refusal(refused.status, refused.code, refused.message)
        except DwschedError as error:
            return self._error(error)
        except ClientDisconnect:  # the client's doing, not an error of ours; nobody to answer
            client = request.client.host if request.client else ""
            log.info("client_disconnected path=%s client=%s", request.url.path, client)
            return Response(status_code=400)
        except Exception:
            return _internal_error(request)

    def _serve(
        self, request: Request, body: dict[str, Any], work: Any, check_csrf: bool
    ) -> dict[str, Any]:
        found = self._signed_in(request)
        if check_csrf:
            sent = request.headers.get("x-csrf-token", "")
            if not hmac.compare_digest(sent.encode(), found.csrf_token.encode()):
                raise _Refused(403, "Forbidden.Csrf", "The request lacks the session's CSRF token.")
        result: dict[str, Any] = work(request, body, found)
        return result

    @staticmethod
    def _error(error: DwschedError) -> Response:
        request_id = str(uuid.uuid4()).upper()
        status, body, extra = error_body(request_id, error)
        response = _json(status, body, request_id)
        response.headers.update(extra)
        return response
