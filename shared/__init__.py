"""SignalsLoop's event library: the code every agent function vendors.

Nothing here builds a client or reads the environment at import time; the
edges (a function's ``main.py``, the CLI) read :class:`shared.settings.Settings`
once and pass what they built down.
"""
