"""Remote targets: any server that speaks the Open Inference Protocol (KServe v2), REST or gRPC.

Rooms, top to bottom: `session` (probe a server, measure a cell against it), `generator` (the
asyncio load generator, in one or several processes), `http` and `grpc` (the two wire clients,
each an async sender plus blocking metadata calls), `split` (the server-side statistics diff),
`wire` (pure encoding of requests and decoding of metadata) and `target` (URL parsing).
"""
