"""Alerts (告警通知, seed §11): webhook messages to WeCom, DingTalk, Feishu robots or any JSON
endpoint when a task fails or stalls, consumer lag grows, or the broker is unreachable.

- `settings`: the `alerts` config section (`AlertSettings`);
- `snapshot`: what the conditions look at (`Snapshot`, `TaskSnapshot`, `SnapshotSource`);
- `conditions`: when to alert, as a pure function (`evaluate`);
- `texts`: what the messages say, in Chinese;
- `signing`, `payloads`: each robot's request body and signature;
- `sender`: delivery with bounded retries, never raising;
- `service`: `AlertService`, the loop that ties them together.
"""

from jobstream.alerts.service import AlertService
from jobstream.alerts.settings import AlertSettings, Webhook
from jobstream.alerts.snapshot import Snapshot, SnapshotSource, TaskSnapshot

__all__ = [
    "AlertService",
    "AlertSettings",
    "Snapshot",
    "SnapshotSource",
    "TaskSnapshot",
    "Webhook",
]
