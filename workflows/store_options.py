"""Options every workflow uses for its small store activities (load a snapshot, save a report,
offload an output): one timeout and one retry policy, defined once."""

from datetime import timedelta

from temporalio.common import RetryPolicy

STORE_TIMEOUT = timedelta(seconds=30)
"""Start-to-close of a store activity: a database round trip or a file write, never long."""

STORE_RETRY = RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=10))
"""A store activity that fails five times is a real outage; the workflow decides what then."""
