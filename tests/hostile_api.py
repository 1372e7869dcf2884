"""An API host that answers the way a careless or hostile one does, for the security tests:
its refusal of a wrong password repeats what it was sent in every shape a gateway produces
(the end of the password, a piece from its middle, `base64(user:password)`, URL-encoded,
HTML-escaped, JSON cut short) and then pads the message to `pad` characters; its data pages
can be of any size.

In-process: `hostile_app(...)` under aiohttp's test server. For a worker:
`python -m tests.hostile_api --username U --password P --pad 300000` prints its URL, then
serves until it is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import html
import json
import sys
from urllib.parse import quote

from aiohttp import web

ECHO_HEAD = "The user name or password is incorrect."


def echo_of(username: str, password: str) -> str:
    """What the refusal repeats of a password grant: no piece of it whole."""
    basic = base64.b64encode(f"{username}:{password}".encode()).decode()
    sent = json.dumps({"grant_type": "password", "username": username, "password": password})
    return (
        f"{ECHO_HEAD} ends with '{password[-11:]}'; near '{password[3:12]}'; "
        f"Authorization: Basic {basic}; form password={quote(password, safe='')}; "
        f"html <b>{html.escape(password)}</b>; request {sent[:60]}"
    )


def hostile_app(
    username: str, password: str, *, pad: int = 0, page_bytes: int = 0
) -> web.Application:
    """`pad`: the refusal's message is padded to that many characters. `page_bytes`: every
    data page is that many bytes of a JSON string, sent without a Content-Length."""

    async def token(request: web.Request) -> web.Response:
        body = await request.json()
        if page_bytes:
            # Hosts that send huge pages take the password: the pages are the point.
            fields = {"access_token": "t" * 32, "token_type": "Bearer", "expires_in": "86400"}
            return web.json_response({"code": 200, "data": fields})
        message = echo_of(str(body.get("username")), str(body.get("password")))
        message += " " + "x" * max(0, pad - len(message) - 1)
        error = {"error": {"code": "Invalid.Grant", "message": message}}
        return web.json_response(error, status=400)

    async def data_all(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b"y" * (1 << 20)
        await response.write(b'"')
        try:
            for _ in range(page_bytes // len(chunk)):
                await response.write(chunk)
            await response.write(b'"')
        except (ConnectionError, RuntimeError):
            pass  # the client stopped reading: the point
        return response

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_get("/data/all", data_all)
    return app


async def _serve(args: argparse.Namespace) -> None:
    runner = web.AppRunner(hostile_app(args.username, args.password, pad=args.pad))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--pad", type=int, default=0)
    args = parser.parse_args()
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
