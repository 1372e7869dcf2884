"""The simulator's aiohttp application: every URL on one screen, faults applied at the edge."""

import asyncio

from aiohttp import web
from aiohttp.typedefs import Handler

from jobstream.simulator import admin, api, replies
from jobstream.simulator.api import STATE
from jobstream.simulator.options import SimulatorConfig
from jobstream.simulator.state import SimulatorState

# Route names of the OpenAPI endpoints; only these are counted, delayed, limited and failed.
API_ENDPOINTS = frozenset({"token", "data"})


def make_app(state: SimulatorState | SimulatorConfig | None = None) -> web.Application:
    if not isinstance(state, SimulatorState):
        state = SimulatorState(state or SimulatorConfig())
    app = web.Application(middlewares=[_faults_middleware])
    app[STATE] = state
    app.router.add_post("/token", api.token, name="token")
    app.router.add_get("/data/all", api.data_all, name="data")
    app.router.add_get("/_sim/stats", admin.stats)
    app.router.add_post("/_sim/stats/reset", admin.reset_stats)
    app.router.add_post("/_sim/grow", admin.grow)
    app.router.add_get("/_sim/faults", admin.get_faults)
    app.router.add_post("/_sim/faults", admin.set_faults)
    app.router.add_post("/_sim/expire-tokens", admin.expire_tokens)
    app.router.add_get("/_sim/tokens", admin.tokens)
    app.router.add_get("/_sim/truth", admin.truth)
    app.router.add_get("/_sim/cursor", admin.get_cursor)
    app.router.add_post("/_sim/cursor", admin.set_cursor)
    app.router.add_post("/_sim/reset", admin.reset_task)
    return app


@web.middleware
async def _faults_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    endpoint = request.match_info.route.name
    if endpoint not in API_ENDPOINTS:
        return await handler(request)
    state = request.app[STATE]
    state.stats.count_request(endpoint)
    account = await api.account_of(request, endpoint)
    state.stats.count_account_request(account)
    if endpoint == "data":
        client = state.tokens.client_of(api.bearer(request))
        state.stats.count_task_request(request.query.get("taskId", ""), client)
    response = await _answer(request, handler, state, endpoint, account)
    state.stats.count_response(endpoint, response.status)
    state.stats.count_account_response(account, response.status)
    return response


async def _answer(
    request: web.Request, handler: Handler, state: SimulatorState, endpoint: str, account: str
) -> web.StreamResponse:
    delay = state.faults.delay(endpoint)
    if delay > 0:
        await asyncio.sleep(delay)
    # Each account has its own limit; a request whose account is unknown counts against the
    # default one's.
    if state.faults.rate_limited(account or None):
        return replies.rate_limited()
    failure = state.faults.take_failure(endpoint)
    if failure is not None:
        return replies.failure(failure)
    return await handler(request)
