"""DT's protocol, written once and free of I/O: auth tokens, wire decoding, filters, retry policy,
gap filling and dedupe. The drivers in `tap_disruptive.client.drivers` are the only code that touches sockets.

The follower (`follower.Follower`) is a generator of commands (`commands`): a driver carries each one
out (an HTTP request, a stream read, a sleep) and sends the result back in, so the sync driver
(requests) and the async driver (aiohttp) share every decision.
"""
