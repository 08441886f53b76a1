"""An HTTP/3 client on aioquic, for the HTTP/3 tests: a second client,
independent of the quinn/h3 one in the Rust tests.

    h3_client.py --ca CA.pem --sni NAME HOST:PORT METHOD:PATH:BODY_BYTES[:HEADER_BYTES]...

Sends every request on one QUIC connection, all at once, and prints one
JSON object per request, in order: status, body length, the body's
SHA-256 and its first 200 bytes as text. HEADER_BYTES adds fields
`x-filler-N` of that many bytes in all (to exceed the server's header
limit).
"""

import argparse
import asyncio
import hashlib
import json
import ssl

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.streams = {}

    def quic_event_received(self, event):
        for e in self.h3.handle_event(event):
            s = self.streams.get(getattr(e, "stream_id", None))
            if s is None:
                continue
            if isinstance(e, HeadersReceived):
                if s["status"] is None:
                    s["status"] = int(dict(e.headers)[b":status"])
            elif isinstance(e, DataReceived):
                s["body"].extend(e.data)
            if getattr(e, "stream_ended", False) and not s["done"].done():
                s["done"].set_result(None)

    async def request(self, authority, method, path, size, filler=0):
        sid = self._quic.get_next_available_stream_id()
        body = bytes(i % 251 for i in range(size)) if size else b""
        headers = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", authority.encode()),
            (b":path", path.encode()),
            (b"user-agent", b"aioquic-test"),
        ]
        if size:
            headers.append((b"content-length", str(size).encode()))
        # In fields of at most 16,000 bytes (the QPACK encoder's own limit).
        for i in range(0, filler, 16000):
            headers.append((b"x-filler-%d" % i, b"f" * min(16000, filler - i)))
        done = asyncio.get_running_loop().create_future()
        self.streams[sid] = {"status": None, "body": bytearray(), "done": done}
        self.h3.send_headers(sid, headers, end_stream=not size)
        if size:
            self.h3.send_data(sid, body, end_stream=True)
        self.transmit()
        await asyncio.wait_for(done, 60)
        s = self.streams.pop(sid)
        return {
            "status": s["status"],
            "length": len(s["body"]),
            "sha256": hashlib.sha256(s["body"]).hexdigest(),
            "text": bytes(s["body"][:200]).decode("utf-8", "replace"),
        }


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ca", required=True)
    p.add_argument("--sni", required=True)
    p.add_argument("addr")
    p.add_argument("requests", nargs="+")
    a = p.parse_args()
    host, port = a.addr.rsplit(":", 1)
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=a.sni)
    config.verify_mode = ssl.CERT_REQUIRED
    config.load_verify_locations(a.ca)
    async with connect(host, int(port), configuration=config, create_protocol=Client) as client:
        jobs = []
        for r in a.requests:
            method, path, size, *filler = r.split(":")
            jobs.append(client.request(a.sni, method, path, int(size), int(filler[0]) if filler else 0))
        for result in await asyncio.gather(*jobs):
            print(json.dumps(result))


asyncio.run(main())
