"""The client of DT's API: `protocol`, DT's protocol without I/O, and `drivers`, the only code that
touches sockets (with aiohttp; `sync` runs it for synchronous code)."""
