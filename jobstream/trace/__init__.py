"""What became of each source row: the decisions the pipeline makes (published, duplicate,
filtered, rejected, skipped), kept for the trace retention so that GET /trace can tell them by
URL, job id or task and offset, and POST /replay can apply the rules again to job_raw's pages
(README: 追溯与重放).

    page agent  --trace.pages-->   trace_pages[task|resets|first|origin]   (task's partition)
                --job_trace-->     trace agent --> trace_sightings["t"p:offset] (id's partition)
    dedupe agent --trace.dedupe--> trace_sightings["d"p:offset]             (id's partition)
"""
