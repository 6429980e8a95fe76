"""The viewer's web app (Starlette): GET-only routes for the leaderboard, run pages, sample browser, paired diff,
plots, the viewer's static files and the runs' raw files; strict security headers on every response (no inline
script runs, nothing loads from elsewhere); a Host check against DNS rebinding."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness.core.errors import UserError, first_error, first_line
from harness.view import pages
from harness.view.diff import DiffQuery
from harness.view.filters import SampleQuery
from harness.view.leaderboard import BoardQuery
from harness.view.render import STATIC, Links, environment
from harness.view.runs import inside
from harness.view.viewer import Viewer

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
RAW_CSP = "default-src 'none'; sandbox"
TEXT_TYPES = {".json", ".jsonl", ".txt", ".md", ".yaml", ".yml", ".log", ".csv", ".lock"}


class SecurityHeaders:
    """Adds the content security policy (the raw files' stricter one), nosniff and no-referrer to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = RAW_CSP if scope["path"].startswith("/raw/") else CSP

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"content-security-policy", policy.encode()), (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def _parsed(model: type[BaseModel], request: Request, lists: tuple[str, ...] = ()) -> Any:
    data: dict[str, Any] = dict(request.query_params)
    for name in lists:
        data[name] = request.query_params.getlist(name)
    return model.model_validate(data)


class Handlers:
    """The routes' handlers over one viewer."""

    def __init__(self, viewer: Viewer) -> None:
        self.viewer = viewer
        self.env = environment()
        self.links = Links()

    def page(self, template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
        """A rendered page."""
        text = self.env.get_template(template).render(links=self.links, **context)
        return HTMLResponse(text, status_code=status)

    def failure(self, status: int, message: str, hint: dict[str, str] | None = None) -> HTMLResponse:
        """An error page: the one-line reason (and a link that may help)."""
        return self.page("error.html", {"status": status, "message": message, "hint": hint}, status)

    def guarded(self, build: Callable[[Request], Response]) -> Callable[[Request], Any]:
        """A handler whose unknown names are 404, bad parameters 400 and user errors 400 with their line."""
        async def handle(request: Request) -> Response:
            try:
                return build(request)
            except KeyError as exc:
                return self.failure(404, f"not found: {first_line(exc)}")
            except ValidationError as exc:
                return self.failure(400, f"bad parameter: {first_error(exc)}")
            except UserError as exc:
                return self.failure(400, first_line(exc), self._hint(request, exc))
        return handle

    @staticmethod
    def _hint(request: Request, exc: UserError) -> dict[str, str] | None:
        if "--allow-config-change" in str(exc) and request.url.path.startswith("/diff/"):
            return {"text": "compare anyway (the differences are listed)",
                    "href": str(request.url.include_query_params(allow_config_change="1"))}
        return None

    def leaderboard(self, request: Request) -> Response:
        """/ : every run."""
        return self.page("leaderboard.html", pages.leaderboard(self.viewer, _parsed(BoardQuery, request)))

    def run(self, request: Request) -> Response:
        """/run/<id>: a run's tasks."""
        return self.page("run.html", pages.run_page(self.viewer, request.path_params["run"]))

    def samples(self, request: Request) -> Response:
        """/run/<id>/<task>: the sample browser."""
        query = _parsed(SampleQuery, request)
        context = pages.samples_page(self.viewer, request.path_params["run"], request.path_params["task"], query)
        return self.page("samples.html", context)

    def diff(self, request: Request) -> Response:
        """/diff/<a>/<b>/<task>: the paired diff."""
        p = request.path_params
        context = pages.diff_page(self.viewer, p["base"], p["cand"], p["task"], _parsed(DiffQuery, request))
        return self.page("diff.html", context)

    def compare(self, request: Request) -> Response:
        """/compare?run=A&run=B: to the diff of two ticked runs (the older one the baseline) on their first shared
        task."""
        ids = request.query_params.getlist("run")
        if len(ids) != 2:
            return self.failure(400, f"tick exactly two runs to compare ({len(ids)} ticked)")
        (base, a), (cand, b) = sorted((self.viewer.run(i) for i in ids), key=lambda p: p[1].created_at)
        shared = [t for t in a.tasks if t in b.tasks]
        if not shared:
            return self.failure(400, "the runs share no task")
        return RedirectResponse(self.links.diff(base.id, cand.id, shared[0]) or "/", status_code=303)

    def plots(self, request: Request) -> Response:
        """/plots?run=...: the charts."""
        ids = request.query_params.getlist("run")
        return self.page("plots.html", pages.plots_page(self.viewer, ids, self.links))

    async def raw(self, request: Request) -> Response:
        """/raw/<id>/<path>: a file inside a run directory as it is; anything outside (`..`, a link out) is 404."""
        try:
            run = self.viewer.catalog.get(request.path_params["run"])
        except KeyError:
            return self.failure(404, "no such run")
        path = inside(run, request.path_params["path"])
        if path is None:
            return self.failure(404, "no such file in the run directory")
        kind = "text/plain; charset=utf-8" if path.suffix in TEXT_TYPES else (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream")
        if kind.startswith("text/html") or kind.startswith("image/svg"):
            kind = "text/plain; charset=utf-8"
        return FileResponse(path, media_type=kind)


def create_app(roots: list[Path], allowed_hosts: list[str] | None = None, viewer: Viewer | None = None) -> Starlette:
    """The viewer app over the run directories under the roots; requests are accepted only for the allowed Host
    names (default: loopback names)."""
    handlers = Handlers(viewer or Viewer(roots))
    g = handlers.guarded
    routes = [
        Route("/", g(handlers.leaderboard)),
        Route("/run/{run}", g(handlers.run)),
        Route("/run/{run}/{task}", g(handlers.samples)),
        Route("/diff/{base}/{cand}/{task}", g(handlers.diff)),
        Route("/compare", g(handlers.compare)),
        Route("/plots", g(handlers.plots)),
        Route("/raw/{run}/{path:path}", handlers.raw),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    hosts = allowed_hosts or ["127.0.0.1", "localhost", "::1", "[::1]"]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders),
                                                Middleware(TrustedHostMiddleware, allowed_hosts=hosts)])
