"""The console's HTTP application: sign-in, pages, their JSON, and the markdown decision."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jinja2
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from console.alerts import feed_view
from console.figures import Figures, TokenRefused
from console.gateway_client import GatewayClient, GatewayUnreachable, SignInRefused
from console.i18n import DEFAULT_LANGUAGE, LANGUAGE_COOKIE, LANGUAGES, label, labels
from console.sessions import COOKIE, PRE_SESSION_COOKIE, Session, SessionStore
from console.settings import ConsoleSettings

HERE = Path(__file__).parent
CONSOLE_ROLES = frozenset({"headquarters", "store_manager"})
STORE_PAGES = ("overview", "stock", "prices", "members", "alerts")
CHAIN_PAGES = frozenset({"overview", "members", "alerts"})  # pages that have a whole-chain view
STORE = re.compile(r"^(all|[A-Za-z0-9][A-Za-z0-9_-]{0,31})$")
MARKDOWN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ALERT_ID = MARKDOWN_ID
ALERT_ACTIONS = frozenset({"acknowledge", "resolve"})
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def create_app(settings: ConsoleSettings, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    gateway = GatewayClient(settings.gateway_url, settings.gateway_timeout_seconds, transport)
    sessions = SessionStore(settings.console_session_key.get_secret_value().encode(), settings.idle_timeout_seconds)
    templates = Jinja2Templates(
        env=jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    )

    serving = {"ready": False}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        serving["ready"] = True
        yield
        serving["ready"] = False  # shutting down: out of the load balancer's rotation
        await gateway.close()

    app = FastAPI(title="Retail operations console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.state.sessions = sessions

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        # A used session's idle clock restarts: seal its cookie again, unless this answer ended it.
        session = getattr(request.state, "session", None)
        if (
            isinstance(session, Session)
            and session.reseal
            and not any(
                value.startswith(f"{COOKIE}=".encode()) for name, value in response.raw_headers if name == b"set-cookie"
            )
        ):
            set_cookie(response, COOKIE, sessions.cookie_value(session))
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    def language(request: Request) -> str:
        chosen = request.cookies.get(LANGUAGE_COOKIE)
        return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE

    def set_cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(
            name, value, max_age=max_age, httponly=True, samesite="strict", secure=settings.cookies_secure, path="/"
        )

    def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        lang = language(request)
        response: HTMLResponse = templates.TemplateResponse(
            request, template, {"t": labels(lang), "lang": lang, **context}, status_code=status
        )
        return response

    def error_page(request: Request, session: Session | None, key: str, status: int) -> HTMLResponse:
        return render(request, "error.html", status, session=session, message=label(key, language(request)))

    def current(request: Request) -> Session | None:
        session = sessions.find(request.cookies.get(COOKIE))
        request.state.session = session
        return session

    def ended_json(detail: str) -> JSONResponse:
        response = JSONResponse({"detail": detail}, status_code=401)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=settings.cookies_secure)
        return response

    def to_sign_in(ended: bool) -> RedirectResponse:
        response = RedirectResponse("/sign-in?ended=1" if ended else "/sign-in", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=settings.cookies_secure)
        return response

    def home_of(session: Session) -> str:
        principal = session.principal
        return "/stores/all/overview" if principal.is_headquarters else f"/stores/{principal.store_id}/overview"

    async def form_of(request: Request) -> dict[str, str]:
        raw = (await request.body()).decode(errors="replace")
        return {name: values[-1] for name, values in parse_qs(raw, keep_blank_values=True).items()}

    def csrf_ok(session: Session, form: dict[str, str]) -> bool:
        return hmac.compare_digest(form.get("csrf_token", ""), session.csrf_token)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        """Ready once started and until shutdown begins; the gateway's state is the pages' to show."""
        if serving["ready"]:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "stopping"}, status_code=503)

    @app.get("/")
    async def root(request: Request) -> Response:
        session = current(request)
        return RedirectResponse(home_of(session) if session else "/sign-in", status_code=303)

    @app.get("/language/{code}")
    async def choose_language(code: str, request: Request, next: str = "/") -> Response:
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        response = RedirectResponse(target, status_code=303)
        if code in LANGUAGES:
            set_cookie(response, LANGUAGE_COOKIE, code, max_age=365 * 86_400)
        return response

    @app.get("/sign-in")
    async def sign_in_page(request: Request, ended: int = 0) -> Response:
        if (session := current(request)) is not None:
            return RedirectResponse(home_of(session), status_code=303)
        nonce = secrets.token_urlsafe(32)
        response = render(
            request,
            "sign_in.html",
            csrf_token=sessions.pre_session_token(nonce),
            error=label("session_ended", language(request)) if ended else None,
        )
        set_cookie(response, PRE_SESSION_COOKIE, nonce)
        return response

    @app.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        form = await form_of(request)
        lang = language(request)
        if not sessions.pre_session_token_ok(request.cookies.get(PRE_SESSION_COOKIE), form.get("csrf_token")):
            return error_page(request, None, "csrf_refused", 403)
        nonce = secrets.token_urlsafe(32)

        def refused(key: str, status: int) -> HTMLResponse:
            response = render(
                request, "sign_in.html", status, csrf_token=sessions.pre_session_token(nonce), error=label(key, lang)
            )
            set_cookie(response, PRE_SESSION_COOKIE, nonce)
            return response

        try:
            issued = await gateway.issue_token(form.get("client_id", "").strip(), form.get("client_secret", ""))
        except SignInRefused:
            return refused("sign_in_refused", 401)
        except GatewayUnreachable:
            return refused("gateway_down", 503)
        session = sessions.start(issued.access_token, issued.expires_in)
        if session.principal.staff_role not in CONSOLE_ROLES or (
            not session.principal.is_headquarters and not session.principal.store_id
        ):
            return refused("not_staff", 403)
        response = RedirectResponse(home_of(session), status_code=303)
        set_cookie(response, COOKIE, sessions.cookie_value(session))
        response.delete_cookie(
            PRE_SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=settings.cookies_secure
        )
        return response

    @app.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        session = current(request)
        if session is None:
            return to_sign_in(ended=False)
        if not csrf_ok(session, await form_of(request)):
            return error_page(request, session, "csrf_refused", 403)
        # The gateway refuses the token from now on, so a copy of the cookie opens nothing either.
        await gateway.revoke(session.token)
        return to_sign_in(ended=False)

    async def stores_for(session: Session, lang: str) -> list[dict[str, str]]:
        return await Figures(gateway, session, lang).stores() if session.principal.is_headquarters else []

    def page_allowed(session: Session, store: str, page: str) -> bool:
        if not STORE.match(store) or not session.principal.may_see(store):
            return False
        return store != "all" or page in CHAIN_PAGES

    @app.get("/stores/{store}/{page}")
    async def store_page(store: str, page: str, request: Request) -> Response:
        session = current(request)
        if session is None:
            return to_sign_in(ended=COOKIE in request.cookies)
        if page not in STORE_PAGES:
            return error_page(request, session, "not_found", 404)
        if not page_allowed(session, store, page):
            return error_page(request, session, "forbidden", 403)
        lang = language(request)
        context: dict[str, Any] = {}
        try:
            if page == "prices":
                context["markdowns"] = await Figures(gateway, session, lang).open_markdowns(store)
                context["decision"] = request.query_params.get("decision")
            if page == "alerts":
                feed = await Figures(gateway, session, lang).alert_feed(store)
                context["feed"] = feed
                context["alerts"] = feed_view(feed, lang)
                context["decision"] = request.query_params.get("decision")
            stores = await stores_for(session, lang)
        except TokenRefused:
            return to_sign_in(ended=True)
        return render(
            request,
            "page.html",
            session=session,
            page=page,
            store=store,
            stores=stores,
            data_src=f"/api/stores/{store}/{page}",
            **context,
        )

    @app.get("/suppliers")
    async def suppliers_page(request: Request) -> Response:
        session = current(request)
        if session is None:
            return to_sign_in(ended=COOKIE in request.cookies)
        if not session.principal.is_headquarters:
            return error_page(request, session, "forbidden", 403)
        return render(
            request, "page.html", session=session, page="suppliers", store="all", stores=[], data_src="/api/suppliers"
        )

    @app.get("/api/stores/{store}/{page}")
    async def store_figures(store: str, page: str, request: Request) -> Response:
        session = current(request)
        if session is None:
            return JSONResponse({"detail": "not signed in"}, status_code=401)
        if page not in STORE_PAGES:
            return JSONResponse({"detail": "no such page"}, status_code=404)
        if not page_allowed(session, store, page):
            return JSONResponse({"detail": "forbidden"}, status_code=403)
        figures = Figures(gateway, session, language(request))
        try:
            blocks = await getattr(figures, page)(store)
        except TokenRefused:
            return ended_json("the session has ended")
        return JSONResponse({"blocks": blocks})

    @app.get("/api/suppliers")
    async def supplier_figures(request: Request) -> Response:
        session = current(request)
        if session is None:
            return JSONResponse({"detail": "not signed in"}, status_code=401)
        if not session.principal.is_headquarters:
            return JSONResponse({"detail": "forbidden"}, status_code=403)
        try:
            blocks = await Figures(gateway, session, language(request)).suppliers()
        except TokenRefused:
            return ended_json("the session has ended")
        return JSONResponse({"blocks": blocks})

    @app.post("/stores/{store}/markdowns/{markdown_id}/approve")
    async def approve_markdown(store: str, markdown_id: str, request: Request) -> Response:
        session = current(request)
        if session is None:
            return to_sign_in(ended=COOKIE in request.cookies)
        if not csrf_ok(session, await form_of(request)):
            return error_page(request, session, "csrf_refused", 403)
        if store == "all" or not page_allowed(session, store, "prices") or not MARKDOWN_ID.match(markdown_id):
            return error_page(request, session, "forbidden", 403)
        # One key per client and suggestion: a second click replays the first answer.
        key = "console-md-" + hashlib.sha256(f"{session.principal.client_id}:{markdown_id}".encode()).hexdigest()[:40]
        answer = await gateway.post(
            session.token, f"/v1/markdown-suggestions/{markdown_id}:decide", {"approve": True}, key
        )
        if answer.status == 401:  # the gateway no longer accepts the token: the session is over
            return to_sign_in(ended=True)
        outcome = "approved" if answer.ok else f"failed-{answer.status}"
        return RedirectResponse(f"/stores/{store}/prices?decision={outcome}", status_code=303)

    @app.post("/stores/{store}/alerts/{alert_id}/{action}")
    async def act_on_alert(store: str, alert_id: str, action: str, request: Request) -> Response:
        session = current(request)
        if session is None:
            return to_sign_in(ended=COOKIE in request.cookies)
        form = await form_of(request)
        if not csrf_ok(session, form):
            return error_page(request, session, "csrf_refused", 403)
        if action not in ALERT_ACTIONS or not ALERT_ID.match(alert_id) or not page_allowed(session, store, "alerts"):
            return error_page(request, session, "forbidden", 403)
        body: dict[str, Any] = {"note": form.get("note", "").strip()[:500]} if action == "resolve" else {}
        # One key per client, alert and action: a second click replays the first answer.
        seed = f"{session.principal.client_id}:{alert_id}:{action}"
        key = "console-al-" + hashlib.sha256(seed.encode()).hexdigest()[:40]
        answer = await gateway.post(session.token, f"/v1/alerts/{alert_id}/{action}", body, key)
        if answer.status == 401:  # the gateway no longer accepts the token: the session is over
            return to_sign_in(ended=True)
        done = "acknowledged" if action == "acknowledge" else "resolved"
        outcome = done if answer.ok else f"failed-{answer.status}"
        return RedirectResponse(f"/stores/{store}/alerts?decision={outcome}#alert-{alert_id}", status_code=303)

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(("/api/", "/static/")):
            return JSONResponse({"detail": "not found"}, status_code=404)
        return error_page(request, current(request), "not_found", 404)

    return app
