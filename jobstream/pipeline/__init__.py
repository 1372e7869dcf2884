"""The agents and the crawl loop: they call `source` and `transform` and send to topics."""
