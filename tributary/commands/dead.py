"""``tributary dead list|show|retry|purge``: work that failed for good (service/store/dead_letters.py)."""

from __future__ import annotations

import json

import click

from service.store.dead_letters import DeadLetter, DeadLetters, NotRetryable
from tributary.command_context import Context, _run_with_redis, config_option


def register(main: click.Group) -> None:
    @main.group()
    @config_option
    def dead() -> None:
        """Dead letters: failed jobs, ingest entries and feed entries that failed validation, kept with
        payload, error and time."""

    @dead.command("list")
    @config_option
    @click.option("-n", "count", type=click.IntRange(1, 10_000), default=50, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="print JSON")
    @click.pass_obj
    def dead_list(obj: Context, count: int, as_json: bool) -> None:
        """The newest dead letters: id, time, what, error."""
        letters = _run_with_redis(obj.settings(), lambda r: DeadLetters(r).list(count))
        if as_json:
            click.echo(
                json.dumps([letter.model_dump(mode="json", exclude={"payload"}) for letter in letters], indent=1)
            )
            return
        for letter in letters:
            click.echo(f"{letter.id}\t{letter.at:%Y-%m-%d %H:%M:%S}\t{letter.summary}\t{letter.error[:200]}")
        if not letters:
            click.echo("no dead letters")

    @dead.command("show")
    @config_option
    @click.argument("letter_id")
    @click.pass_obj
    def dead_show(obj: Context, letter_id: str) -> None:
        """One dead letter in full, payload included (JSON)."""
        letter: DeadLetter | None = _run_with_redis(obj.settings(), lambda r: DeadLetters(r).get(letter_id))
        if letter is None:
            raise click.ClickException(f"no dead letter {letter_id!r}")
        click.echo(json.dumps(letter.model_dump(mode="json"), indent=1))

    @dead.command("retry")
    @config_option
    @click.argument("letter_id")
    @click.pass_obj
    def dead_retry(obj: Context, letter_id: str) -> None:
        """Queue the work again (the job, or the ingest entry) and forget the letter."""
        try:
            letter = _run_with_redis(obj.settings(), lambda r: DeadLetters(r).retry(letter_id))
        except NotRetryable as exc:
            raise click.ClickException(f"{letter_id}: {exc}") from exc
        if letter is None:
            raise click.ClickException(f"no dead letter {letter_id!r}")
        click.echo(f"queued again: {letter.summary}")

    @dead.command("purge")
    @config_option
    @click.argument("letter_id", required=False)
    @click.option("--all", "everything", is_flag=True, help="forget every dead letter")
    @click.pass_obj
    def dead_purge(obj: Context, letter_id: str | None, everything: bool) -> None:
        """Forget one dead letter, or --all."""
        if (letter_id is None) != everything:
            raise click.ClickException("give a dead letter's id, or --all")
        removed = _run_with_redis(obj.settings(), lambda r: DeadLetters(r).purge(letter_id))
        if letter_id is not None and not removed:
            raise click.ClickException(f"no dead letter {letter_id!r}")
        click.echo(f"purged {removed} dead letter(s)")
