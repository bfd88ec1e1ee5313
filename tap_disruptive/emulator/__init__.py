"""A local stand-in for Disruptive Technologies' REST API, served over real HTTP.

It speaks DT's wire format (auth, devices, event history, the event stream), simulates sensors of every
device type, records every event it produces in a ledger, and injects faults on demand.
"""
