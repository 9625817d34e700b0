"""A stand-in SMS gateway for the tests, run as its own process: Kannel's ``/cgi-bin/sendsms`` interface (username
and password checked, 202 "0: Accepted for delivery", 403 on a bad login, 400 without to or text), each accepted
message appended to a JSON-lines file.

Usage: python -m tests.notify.sms_gateway PORT FILE USERNAME PASSWORD
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from aiohttp import web


def main(argv: list[str]) -> None:
    port, out, username, password = int(argv[0]), Path(argv[1]), argv[2], argv[3]

    async def sendsms(request: web.Request) -> web.Response:
        query = request.query
        if query.get("username") != username or query.get("password") != password:
            return web.Response(status=403, text="Authorization failed for sendsms")
        if not query.get("to") or "text" not in query:
            return web.Response(status=400, text="Missing receiver number, rejected")
        with out.open("a", encoding="utf-8") as f:
            f.write(json.dumps(dict(query), ensure_ascii=False) + "\n")
        return web.Response(status=202, text="0: Accepted for delivery")

    app = web.Application()
    app.router.add_get("/cgi-bin/sendsms", sendsms)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    main(sys.argv[1:])
