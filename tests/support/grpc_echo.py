#!/usr/bin/python3
"""A gRPC member and client for banyan-proxy's integration tests.

Generic handlers with bytes in and out: no protoc, no generated code.

  grpc_echo.py serve PORT CERT KEY      serves on 127.0.0.1:PORT over TLS; prints
                                        "ready" once listening. Methods:
    /echo.Echo/Unary    answers the request bytes; a request starting with
                        b"fail" ends with status INVALID_ARGUMENT, message
                        "refused: <rest>".
    /echo.Echo/Stream   bidirectional: answers each message with itself, then
                        sends the trailing metadata x-count: <messages>.
  grpc_echo.py call PORT CA AUTHORITY   runs the client checks against PORT
                                        (the proxy) and prints one line per check.
"""
import sys
from concurrent import futures

import grpc


def ident(b):
    return b


def unary(request, context):
    context.set_trailing_metadata((("x-member", "grpc-echo"),))
    if request.startswith(b"fail"):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "refused: " + request[4:].decode())
    return request


def stream(request_iterator, context):
    n = 0
    for m in request_iterator:
        n += 1
        yield m
    context.set_trailing_metadata((("x-count", str(n)),))


def serve(port, cert, key):
    handler = grpc.method_handlers_generic_handler("echo.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, ident, ident),
        "Stream": grpc.stream_stream_rpc_method_handler(stream, ident, ident),
    })
    opts = [("grpc.max_receive_message_length", 16 << 20), ("grpc.max_send_message_length", 16 << 20)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=opts)
    server.add_generic_rpc_handlers((handler,))
    # PEM bundles (certificate, chain and key in one file) are split by block.
    blocks = []
    for name in (cert, key) if cert != key else (cert,):
        with open(name, "rb") as f:
            text = f.read()
        for part in text.split(b"-----BEGIN ")[1:]:
            blocks.append(b"-----BEGIN " + part.split(b"-----END ")[0] + b"-----END " +
                          part.split(b"-----END ")[1].split(b"\n")[0] + b"\n")
    chain = b"".join(b for b in blocks if b"PRIVATE KEY" not in b.split(b"\n")[0])
    pkey = b"".join(b for b in blocks if b"PRIVATE KEY" in b.split(b"\n")[0])
    creds = grpc.ssl_server_credentials(((pkey, chain),))
    server.add_secure_port("127.0.0.1:%d" % port, creds)
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


def call(port, ca, authority):
    with open(ca, "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    opts = [("grpc.ssl_target_name_override", authority), ("grpc.default_authority", authority),
            ("grpc.max_receive_message_length", 16 << 20), ("grpc.max_send_message_length", 16 << 20)]
    ch = grpc.secure_channel("127.0.0.1:%d" % port, creds, opts)
    uni = ch.unary_unary("/echo.Echo/Unary", request_serializer=ident, response_deserializer=ident)
    bidi = ch.stream_stream("/echo.Echo/Stream", request_serializer=ident, response_deserializer=ident)

    resp, c = uni.with_call(b"hello", timeout=10)
    trailers = dict(c.trailing_metadata())
    print("unary %s %s member=%s" % (resp.decode(), c.code().name, trailers.get("x-member")))

    try:
        uni(b"fail-please", timeout=10)
        print("fail no-error")
    except grpc.RpcError as e:
        print("fail %s %s" % (e.code().name, e.details()))

    big = bytes((i * 7) % 251 for i in range(3 << 20))  # 3 MiB
    resp = uni(big, timeout=30)
    print("large %s" % ("ok" if resp == big else "mismatch len=%d" % len(resp)))

    msgs = [b"m%d" % i * (i + 1) for i in range(20)]
    it = bidi(iter(msgs), timeout=20)
    got = list(it)
    count = dict(it.trailing_metadata()).get("x-count")
    print("stream %s count=%s %s" % ("ok" if got == msgs else "mismatch", count, it.code().name))

    big_msgs = [bytes([i]) * (1 << 20) for i in range(4)]  # 4 x 1 MiB both ways
    got = list(bidi(iter(big_msgs), timeout=30))
    print("stream-large %s" % ("ok" if got == big_msgs else "mismatch"))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        call(int(sys.argv[2]), sys.argv[3], sys.argv[4])
