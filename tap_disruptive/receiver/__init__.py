"""A receiver for DT's Data Connector HTTP push: verified, validated, deduplicated and spooled durably.

DT sends server-to-server integrations to Data Connectors: at-least-once delivery, one queue per connector,
each event POSTed as ``{"event": {...}, "labels": {...}, "metadata": {...}}`` and signed in the
``X-Dt-Signature`` header (see `signature`). DT counts a push as delivered on a 2xx answer within 10 s and
re-sends it otherwise, so the receiver answers 200 only once the event is on disk (`spool`), and a
re-sent event (same ``eventId``) is answered 200 without being stored twice.

Layout: `signature` checks the header, `push` the body, `spool` stores and pages events (SQLite or
PostgreSQL), `app` is the HTTP face, `retention` prunes old rows, `cli` is ``disruptive-receiver``.
The receiver shares DT's vocabulary (`tap_disruptive.model`) with the rest of the project and nothing else.
"""
