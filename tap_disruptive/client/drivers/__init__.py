"""The only code that does I/O: it carries out the protocol's commands.

`aio` talks to DT with aiohttp (for Airflow's triggerer); `sync` runs that same code on an event loop of
its own (for the Singer tap). `spool` reads a Data Connector receiver's spool, async, with a sync face.
"""
