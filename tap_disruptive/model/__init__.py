"""DT's event and device model, shared by the client core and the emulator.

Only vocabulary and formats live here (event types, device types, ids, timestamps): no I/O and no policy.
"""
