"""Dedupe by URL: a posting whose job id reached job_data within the window is not sent again.

`sightings` decides which jobs are first sightings and encodes what travels (pure functions),
`published` keeps what was published in the `published_jobs` Faust table; the agent that
forwards first sightings is `jobstream.dedupe.agent`."""
