#!/usr/bin/python3
"""A small HTTP server for demo and test member hosts.

Answers every request with one line naming the member and what it saw of the client:

    member=<name> peer=<address the TCP connection came from> xff=<X-Forwarded-For or ->
    proxy=<source address from a PROXY protocol v1/v2 header, or ->

so a curl through a Banyan VIP shows which member answered and whether the client's
address arrived (X-Forwarded-For on HTTP pools, PROXY protocol on PROXY/PROXYV2 pools).
GET /health answers 200 "ok" for health monitors. Standard library only.
"""
import argparse
import ipaddress
import socket
import socketserver
import struct
import sys

PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def read_proxy_header(sock, buffered):
    """Strips a PROXY v1 or v2 header from the start of the stream.

    Returns (source address or None, the bytes after the header)."""
    data = buffered
    while len(data) < 16:
        chunk = sock.recv(4096)
        if not chunk:
            return None, data
        data += chunk
    if data.startswith(PROXY_V2_SIGNATURE):
        length = struct.unpack("!H", data[14:16])[0]
        while len(data) < 16 + length:
            chunk = sock.recv(4096)
            if not chunk:
                return None, data
            data += chunk
        family = data[13] >> 4
        body = data[16:16 + length]
        rest = data[16 + length:]
        if family == 1 and len(body) >= 12:
            return str(ipaddress.IPv4Address(body[0:4])), rest
        if family == 2 and len(body) >= 36:
            return str(ipaddress.IPv6Address(body[0:16])), rest
        return "LOCAL", rest
    if data.startswith(b"PROXY "):
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return None, data
            data += chunk
        line, rest = data.split(b"\r\n", 1)
        parts = line.decode("ascii", "replace").split(" ")
        return (parts[2] if len(parts) >= 3 and parts[1] != "UNKNOWN" else "UNKNOWN"), rest
    return None, data


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(10)
        try:
            proxy_source, data = read_proxy_header(sock, b"")
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, data = data.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path = (lines[0].split(" ") + ["", ""])[:2]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0") or 0)
                while len(data) < length:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                data = data[length:]
                if path == "/health":
                    body = "ok\n"
                else:
                    body = "member=%s peer=%s xff=%s proxy=%s\n" % (
                        self.server.member_name, self.client_address[0],
                        headers.get("x-forwarded-for", "-"), proxy_source or "-")
                payload = body.encode()
                close = headers.get("connection", "").lower() == "close"
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                             + str(len(payload)).encode() + b"\r\n"
                             + (b"Connection: close\r\n" if close else b"") + b"\r\n"
                             + (payload if method != "HEAD" else b""))
                if close:
                    return
        except (OSError, ValueError):
            return


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--name", default=socket.gethostname())
    args = parser.parse_args()
    if ":" in args.bind:
        Server.address_family = socket.AF_INET6
    server = Server((args.bind, args.port), Handler)
    server.member_name = args.name
    print("member %s listening on %s:%d" % (args.name, args.bind, args.port), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
