"""A local HTTP server speaking the part of GitHub's REST API that proposals use."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class GitHubServer:
    def __init__(self):
        self.requests: list[dict] = []
        self.refuse_with: tuple[int, dict] | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append(
                    {
                        "method": "POST",
                        "path": self.path,
                        "headers": dict(self.headers),
                        "json": body,
                    }
                )
                parts = self.path.strip("/").split("/")
                if len(parts) != 4 or parts[0] != "repos" or parts[3] != "pulls":
                    return self._reply(404, {"message": "Not Found"})
                if server.refuse_with:
                    return self._reply(*server.refuse_with)
                owner, repo = parts[1], parts[2]
                number = len(server.requests)
                html = f"https://github.example/{owner}/{repo}/pull/{number}"
                self._reply(
                    201,
                    {
                        "id": 1000 + number,
                        "number": number,
                        "state": "open",
                        "title": body.get("title"),
                        "body": body.get("body"),
                        "html_url": html,
                        "url": f"{server.url}/repos/{owner}/{repo}/pulls/{number}",
                        "head": {"ref": body.get("head"), "label": body.get("head")},
                        "base": {"ref": body.get("base"), "label": body.get("base")},
                    },
                )

            def do_GET(self):
                server.requests.append(
                    {
                        "method": "GET",
                        "path": self.path,
                        "headers": dict(self.headers),
                        "json": None,
                    }
                )
                self._reply(404, {"message": "Not Found"})

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()
