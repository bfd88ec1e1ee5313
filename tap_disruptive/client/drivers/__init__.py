"""The only code that touches sockets: it carries out the protocol's commands.

`sync` runs them with requests (for the Singer tap), `aio` with aiohttp (for Airflow's triggerer).
"""
