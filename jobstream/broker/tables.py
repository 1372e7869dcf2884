"""Faust's table manager without its start-up pause.

Faust's TableManager sleeps a second before it finalizes the tables, so that tables declared
while the worker starts are still registered. jobstream declares every table at import
(`jobstream.topics`), before the worker starts, so the pause only delayed the group join, and
with it the first message in job_data, by a second.
"""

from __future__ import annotations

from faust.tables import TableManager as FaustTableManager


class TableManager(FaustTableManager):
    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()
