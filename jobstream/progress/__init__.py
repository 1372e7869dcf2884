"""Crawl progress: the Faust table, its SQLite mirror, and the rules that change it."""
