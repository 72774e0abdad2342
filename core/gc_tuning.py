"""The garbage collector in the long-running processes (the API and the worker).

Measured under bench/api_load.py (one API process, one worker, 100 clients): full collections
(generation 2) took 500-670 ms in the API and 670-760 ms in the worker, and every request or
workflow task in flight waited for each one: the tail of every latency figure. Most of what such
a pass scans is the start-up heap (every imported module, pydantic schema, protobuf descriptor),
which never becomes garbage. `gc.freeze()` moves it out of the collector's reach, as CPython's
documentation advises for long-running processes; later passes scan only what the process made
since it started serving.
"""

import gc

_frozen = False


def freeze_startup_heap() -> None:
    """Collect once, then exempt every object alive now from all later collections. Once per
    process: a process that builds several apps (the tests) pays for the collection only once."""
    global _frozen
    if _frozen:
        return
    _frozen = True
    gc.collect()
    gc.freeze()
