"""Real servers for the import tests, on free ports in their own threads: an S3 endpoint
(moto in server mode, the S3 API over HTTP) and a photo web server whose paths say how
to answer (a photo, a 404, a redirect chain, a slow or an oversized answer)."""

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

import boto3
from moto.server import ThreadedMotoServer

from photosearch_devstack.ports import free_port
from tests.support.http_server import LocalHttpServer, QuietHandler

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-key",
    "AWS_SECRET_ACCESS_KEY": "test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def local_s3() -> Iterator[str]:
    """An S3 endpoint URL; boto3 clients in this process find its credentials in the
    environment (set for as long as it runs)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    saved = {key: os.environ.get(key) for key in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def put_objects(endpoint: str, bucket: str, objects: dict[str, bytes]) -> None:
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=bucket)
    for key, data in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=data)


class PhotoServer(LocalHttpServer):
    """GET /photo/<name> a photo put with `photos[name] = bytes`; /missing 404; /loop
    redirects to itself; /hop/<n>/<name> redirects n times then serves the photo;
    /pace/<name> serves it after 0.3 s; /slow sleeps 3 s; /huge claims and streams more
    bytes than any limit."""

    def __init__(self) -> None:
        self.photos: dict[str, bytes] = {}
        self.requests: list[str] = []
        super().__init__()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                parts = self.path.strip("/").split("/")
                if parts[0] == "photo" and len(parts) == 2 and parts[1] in owner.photos:
                    return self.send(200, owner.photos[parts[1]])
                if parts[0] == "loop":
                    return self._redirect("/loop")
                if parts[0] == "hop" and len(parts) == 3:
                    left = int(parts[1])  # redirects still to make
                    target = f"/hop/{left - 1}/{parts[2]}" if left > 1 else f"/photo/{parts[2]}"
                    return self._redirect(target)
                if parts[0] == "pace" and len(parts) == 2 and parts[1] in owner.photos:
                    time.sleep(0.3)
                    return self.send(200, owner.photos[parts[1]])
                if parts[0] == "slow":
                    time.sleep(3)
                    return self.send(200, b"late")
                if parts[0] == "huge":
                    self.send_response(200)
                    self.send_header("Content-Length", str(1 << 30))
                    self.end_headers()
                    try:
                        for _ in range(1 << 10):
                            self.wfile.write(b"\0" * (1 << 20))
                    except OSError:
                        pass
                    return None
                return self.send(404, b"not here")

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler
