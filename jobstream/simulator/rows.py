"""Deterministic job rows: row i is a pure function of (seed, task id, i, anchor), and for a
repeat (below) of the earlier row it repeats.

The anchor is the simulator clock reading when the row was appended; relative dates ("3天前")
are written relative to it. The generator also knows what each row's dates mean (`truth`), which
never appears in the HTTP response: tests compare the pipeline's parse against it.

A repeat is a posting collected again: row i carries the text of an earlier row (its own task's,
or with `shared_postings` another task's that existed when row i's batch was appended), the same
publish date, a collect date no earlier than the original's, and the same URL spelled another
way (http, upper-case host, tracking parameters) that normalizes to the same. Its truth names
the row it repeats (`repeat_of`); every row's truth names its `posting`, the same for all rows
of one posting, so tests can tell what job_data holds with dedupe by URL.
"""

import dataclasses
import random
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from jobstream.simulator import date_formats, descriptions, hostile, policy, vocab
from jobstream.simulator.seeding import stable_int

# Multiplying by a number coprime to 10**11 permutes 0..10**11-1, so ids are unique per row
# yet do not look sequential.
_ID_SPACE = 10**11
_ID_MULTIPLIER = 48_271


@dataclass(frozen=True)
class RowOptions:
    """What the generator is asked to produce; ratios are shares of rows (0 turns a feature off).

    `hostile_ratio`: the share of rows replaced by a hostile kind (`hostile.KINDS`).
    `description_chars`: when > 0, every normal row's description is a realistic posting of about
    this many characters instead of a short one (the other fields do not change).
    """

    seed: int = 0
    junk_ratio: float = 0.01
    missing_url_ratio: float = 0.0
    duplicate_url_ratio: float = 0.0
    hostile_ratio: float = 0.0
    description_chars: int = 0
    # The share of rows that repeat an earlier posting (see the module); other rows stay as
    # they are without it.
    repeat_ratio: float = 0.0
    # Repeats may be of another task's rows too (those that existed when the batch appeared).
    shared_postings: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.hostile_ratio <= 1:
            raise ValueError(f"hostile_ratio must be between 0 and 1, got {self.hostile_ratio}")
        if not 0 <= self.repeat_ratio <= 1:
            raise ValueError(f"repeat_ratio must be between 0 and 1, got {self.repeat_ratio}")
        if self.description_chars < 0:
            raise ValueError(f"description_chars must be >= 0, got {self.description_chars}")


@dataclass(frozen=True)
class RowRef:
    """A row of a task."""

    task_id: str
    index: int


@dataclass(frozen=True)
class RowTruth:
    """What row `index` really says. A None date is deliberately unparseable junk.

    `hostile` names the row's hostile kind ("" for a normal row). `expect` is what the pipeline
    must do with a hostile row ("published", "filtered", "rejected"); None for a normal row, whose
    fate follows from its dates and the window. `expect_field` is a reject's field at fault
    ("aae397", "Collect_time" or "row"). `expect_text` is the text the pipeline publishes for the
    row under the output names; None for a row that must be rejected.

    `posting` is the same for every row of one posting and differs between postings:
    `url:<the URL as first written>`, or `row:<task id>:<index>` for a row without a URL.
    `repeat_of` is the row a repeat was copied from (None for any other row).
    """

    index: int
    publish_date: date | None
    collect_date: date | None
    url: str | None
    publish_format: str
    collect_format: str
    publish_prefix: str = ""
    hostile: str = ""
    expect: policy.Expect | None = None
    expect_field: str | None = None
    expect_text: dict[str, str] | None = None
    posting: str = ""
    repeat_of: RowRef | None = None


class EarlierRows(Protocol):
    """The rows a repeat may copy, as the generator's batch sees them."""

    def pick(self, rng: random.Random, task_id: str, index: int) -> RowRef | None:
        """An earlier row for row `index` of `task_id` to repeat, or None."""

    def generate(self, ref: RowRef) -> tuple[Any, RowTruth]:
        """The row and its truth."""


# How far back a repeat of the task's own rows reaches.
REPEAT_REACH = 500


def respell(url: str, how: int) -> str:
    """`url` (https://host/path, as the generator writes them) spelled another way that
    `jobstream.transform.ids.normalize_url` turns back into it: 0 as is, 1 over http, 2 with
    the host in capitals, 3 with tracking parameters."""
    rest = url.removeprefix("https://")
    host, _, path = rest.partition("/")
    spellings = (
        url,
        f"http://{rest}",
        f"https://{host.upper()}/{path}",
        f"{url}?utm_source=bazhuayu&utm_medium=crawl",
    )
    return spellings[how]


class RowGenerator:
    """Rows of one task, all appended at `anchor` (an aware datetime, read in Asia/Shanghai).

    `earlier` is where repeats find the rows they copy; without it no row is a repeat."""

    def __init__(
        self,
        task_id: str,
        anchor: datetime,
        options: RowOptions | None = None,
        earlier: EarlierRows | None = None,
    ) -> None:
        if anchor.tzinfo is None:
            anchor = anchor.replace(tzinfo=date_formats.SHANGHAI)
        self.task_id = task_id
        self.anchor = anchor.astimezone(date_formats.SHANGHAI)
        self.options = options or RowOptions()
        self._task_code = stable_int(self.options.seed, task_id) % 10**9
        self._earlier = earlier

    def row(self, index: int) -> Any:
        """Row `index` as served: a dict, or a `RawRow` (JSON bytes) for a hostile row."""
        return self.generate(index)[0]

    def truth(self, index: int) -> RowTruth:
        return self.generate(index)[1]

    def rows(self, start: int, stop: int) -> list[Any]:
        return [self.row(i) for i in range(start, stop)]

    def generate(self, index: int) -> tuple[Any, RowTruth]:
        if index < 0:
            raise ValueError(f"row index must be >= 0, got {index}")
        opts = self.options
        spot = hostile.spot(opts.hostile_ratio, opts.seed, self.task_id, index)
        if opts.repeat_ratio and spot is None and self._earlier is not None:
            repeat = self._repeat(index, self._earlier)
            if repeat is not None:
                return repeat
        rng = random.Random(stable_int(opts.seed, self.task_id, index))

        fmt = date_formats.pick_publish_format(rng)
        collected, age = date_formats.collect_moment(rng, self.anchor, fmt)
        publish = (
            date_formats.render_publish_junk(rng)
            if rng.random() < opts.junk_ratio
            else date_formats.render_publish(rng, fmt, collected, age)
        )
        collect = (
            date_formats.render_collect_junk(rng)
            if rng.random() < opts.junk_ratio
            else date_formats.render_collect(rng, collected)
        )
        url = self._url(rng, index)

        category = rng.choice(list(vocab.TITLES_BY_CATEGORY))
        fields: dict[str, Any] = {
            "Std_class": category,
            "aca112": rng.choice(vocab.TITLES_BY_CATEGORY[category]),
            "AAB004": rng.choice(vocab.COMPANY_PLACES)
            + rng.choice(vocab.COMPANY_WORDS)
            + rng.choice(vocab.COMPANY_KINDS),
            "acb241": rng.choice(vocab.SALARIES),
            "aab302": rng.choice(vocab.LOCATIONS),
            "aae397": publish.value,
            "Collect_time": collect.value,
            "ACE760": url if url is not None else rng.choice(("", None, date_formats.MISSING)),
            "acb22a": descriptions.short(rng),
            "Experience": rng.choice(vocab.EXPERIENCE),
            "aac011": rng.choice(vocab.EDUCATION),
        }
        if opts.description_chars > 0:
            # Its own generator, so the draws after it (and so every other field) stay the same.
            own = random.Random(stable_int(opts.seed, self.task_id, index, "description"))
            fields["acb22a"] = descriptions.long(own, opts.description_chars)
        _add_noise(rng, fields, index)
        row = {k: v for k, v in fields.items() if v is not date_formats.MISSING}
        if spot is not None:
            return self._hostile(index, spot, row)
        truth = RowTruth(
            index=index,
            publish_date=publish.day,
            collect_date=collect.day,
            url=url,
            publish_format=publish.fmt,
            collect_format=collect.fmt,
            publish_prefix=publish.prefix,
            expect_text=policy.published_text(row),
            posting=self._posting(index, url),
        )
        return row, truth

    def _posting(self, index: int, url: str | None) -> str:
        return f"url:{url}" if url else f"row:{self.task_id}:{index}"

    def _repeat(self, index: int, earlier: EarlierRows) -> tuple[Any, RowTruth] | None:
        """Row `index` as a repeat of an earlier row, or None when it is not one: its own
        draw says no, or the row it drew cannot be repeated (a hostile or junk row)."""
        opts = self.options
        rng = random.Random(stable_int(opts.seed, self.task_id, index, "repeat"))
        if rng.random() >= opts.repeat_ratio:
            return None
        ref = earlier.pick(rng, self.task_id, index)
        if ref is None:
            return None
        original, truth = earlier.generate(ref)
        published, collected_before = truth.publish_date, truth.collect_date
        if truth.hostile or not isinstance(original, dict) or not published or not collected_before:
            return None
        collected = date_formats.collected_again(rng, self.anchor, collected_before)
        age = (collected.date() - published).days
        publish = date_formats.render_publish(
            rng, rng.choice(date_formats.ABSOLUTE_FORMATS), collected, age
        )
        collect = date_formats.render_collect(rng, collected)
        row = {**original, "aae397": publish.value, "Collect_time": collect.value}
        url = truth.posting.removeprefix("url:") if truth.posting.startswith("url:") else None
        if url is not None:
            row["ACE760"] = respell(url, rng.randrange(4))
        return row, RowTruth(
            index=index,
            publish_date=publish.day,
            collect_date=collect.day,
            url=row.get("ACE760") if url is not None else truth.url,
            publish_format=publish.fmt,
            collect_format=collect.fmt,
            publish_prefix=publish.prefix,
            expect_text=policy.published_text(row),
            posting=truth.posting,
            repeat_of=ref,
        )

    def _hostile(self, index: int, spot: hostile.Spot, row: dict[str, Any]) -> tuple[Any, RowTruth]:
        """Row `index` (normal in every other respect) with recent dates, spoiled by its kind."""
        rng = random.Random(stable_int(self.options.seed, self.task_id, index, spot.kind))
        publish, collect, collected = date_formats.render_recent(rng, self.anchor)
        fields = {**row, "aae397": publish.value, "Collect_time": collect.value}
        base = hostile.Base(fields, publish, collect, collected, spot.occurrence, rng)
        spoiled = hostile.spoil(spot.kind, base)
        publish = spoiled.publish or publish
        collect = spoiled.collect or collect
        meaning = spoiled.meaning
        url = meaning.get("ACE760") if meaning is not None else None
        truth = RowTruth(
            index=index,
            publish_date=publish.day,
            collect_date=collect.day,
            url=url if isinstance(url, str) and url else None,
            publish_format=publish.fmt,
            collect_format=collect.fmt,
            hostile=spot.kind,
            expect=spoiled.expect,
            expect_field=spoiled.field,
            expect_text=(
                None
                if spoiled.expect == policy.REJECTED or meaning is None
                else policy.published_text(meaning)
            ),
        )
        return spoiled.row, dataclasses.replace(truth, posting=self._posting(index, truth.url))

    def base_url(self, index: int) -> str:
        """The URL row `index` has unless it is a deliberate duplicate or has none."""
        job_id = (index * _ID_MULTIPLIER + self._task_code) % _ID_SPACE
        host = stable_int(self.task_id, index) % 3
        if host == 0:
            return f"https://www.zhaopin.com/jobdetail/CC{self._task_code:09d}J{job_id:011d}.htm"
        if host == 1:
            return f"https://jobs.51job.com/qingdao/{self._task_code:09d}{job_id:011d}.html"
        return f"https://www.liepin.com/job/{self._task_code:09d}{job_id:011d}.shtml"

    def _url(self, rng: random.Random, index: int) -> str | None:
        opts = self.options
        draw = rng.random()
        if draw < opts.missing_url_ratio:
            return None
        if index > 0 and draw < opts.missing_url_ratio + opts.duplicate_url_ratio:
            # The same posting scraped again: an earlier, nearby row's URL.
            return self.base_url(rng.randrange(max(0, index - 500), index))
        return self.base_url(index)


def _add_noise(rng: random.Random, fields: dict[str, Any], index: int) -> None:
    """Real task rows carry extra keys and lose or blank some: a few percent of rows do here."""
    draw = rng.random()
    optional = ("acb241", "Experience", "aac011", "acb22a")
    if draw < 0.02:
        fields[rng.choice(optional)] = date_formats.MISSING
    elif draw < 0.04:
        fields[rng.choice(optional)] = ""
    elif draw < 0.05:
        fields[rng.choice(optional)] = None
    if rng.random() < 0.05:
        key, template = rng.choice(vocab.EXTRA_KEYS)
        fields[key] = template.format(n=index % 9 + 1)
