"""One record per person: an entry's authors with the same person merged. Pure.

Feeds often name one person twice: RSS ``<author>carol@example.net (Carol Nguyen)</author>``
beside ``<dc:creator>Carol Nguyen</dc:creator>``, or an Atom ``<author>`` repeated with and
without an ``<email>``. Readers then show "Carol Nguyen, Carol Nguyen". Records that give the
same name (case- and whitespace-insensitively) are one person; so is a nameless record whose
e-mail or URL a named one has. Of each person the richest record is kept (most of name, email,
url; the first on a tie), its gaps filled from the others, at the place the person first appears.
"""

from __future__ import annotations

from collections.abc import Iterable

from service.models import Author

__all__ = ["merge_authors"]


def merge_authors(authors: Iterable[Author]) -> tuple[Author, ...]:
    """``authors`` with every person once (see the module docstring); names whitespace-folded."""
    records = list(authors)
    if len(records) == 1:  # one record is one person (what the grouping below comes to)
        only = _merge(records)
        return (only,) if only.name or only.email or only.url else ()
    people: dict[str, list[int]] = {}  # a person's key -> indexes of their records
    for index, author in enumerate(records):
        if author.name:
            people.setdefault(_name_key(author.name), []).append(index)
    for index, author in enumerate(records):
        if not author.name:
            known = (key for key, found in people.items() if any(_same_contact(author, records[i]) for i in found))
            people.setdefault(next(known, f"#{index}"), []).append(index)
    ordered = sorted(people.values(), key=min)
    merged = (_merge([records[i] for i in sorted(found)]) for found in ordered)
    return tuple(dict.fromkeys(author for author in merged if author.name or author.email or author.url))


def _name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _same_contact(nameless: Author, named: Author) -> bool:
    email = nameless.email and named.email and nameless.email.casefold() == named.email.casefold()
    return bool(email or (nameless.url and nameless.url == named.url))


def _merge(records: list[Author]) -> Author:
    if len(records) == 1 and _as_merged(records[0]):
        return records[0]
    richest = max(records, key=lambda a: sum(v is not None for v in (a.name, a.email, a.url)))
    name = richest.name or next((a.name for a in records if a.name), None)
    return Author(
        name=" ".join(name.split()) if name else None,
        email=richest.email or next((a.email for a in records if a.email), None),
        url=richest.url or next((a.url for a in records if a.url), None),
    )


def _as_merged(author: Author) -> bool:
    """Whether merging ``author`` alone gives it back: no empty field, its name already folded."""
    name = author.name
    return "" not in (name, author.email, author.url) and (name is None or " ".join(name.split()) == name)
