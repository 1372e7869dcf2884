"""How a crawl run ends before the end of the source."""

from jobstream.errors import JobstreamError


class RunFailed(JobstreamError):
    """A crawl run ended before it reached the end of the source; the message says why."""


class TaskMoved(JobstreamError):
    """This worker no longer owns the task (a rebalance began): the run ends at once, without
    sending what it holds, and the task's owner crawls on from the stored offset."""
