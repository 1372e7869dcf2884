"""GET /consume/stream: job_data as server-sent events (the view, the open streams, the shared
tail, the wire format and the positions that event ids carry)."""
