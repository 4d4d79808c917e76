"""Reference profiles: the readings of VBrain's thin API reference that the emulator can follow.

The reference leaves some answers open (what ``GET /job/{id}`` carries, which bodies
``POST /repository`` reads, how far scoping goes, what a gateway does to ZIP downloads, how soon a new
object is listed). A suite that only talks to one reading proves our assumptions, not the product, so
each plausible reading is a named *profile*, and the emulator can switch between them at run time.

Profiles fall into groups. Within a group at most one applies (``job-metadata`` is the default of the
status-body group; the other groups default to the reading the emulator has always followed), and
profiles of different groups combine: ``application-scoped,metadata-string``.

Pure values only (no aiohttp), so the pytest plugin can import this module cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeAlias

from vbrain_emulator._values import is_non_negative_number

__all__ = [
    "DEFAULT_LISTING_DELAY",
    "DEFAULT_PROFILE",
    "PROFILES",
    "PROFILE_DESCRIPTIONS",
    "Profile",
    "ProfileError",
    "ProfileLike",
]

# -- the names ---------------------------------------------------------------------------------

JOB_METADATA = "job-metadata"
REPOSITORY_METADATA = "repository-metadata"
METADATA_STRING = "metadata-string"
NO_METADATA = "no-metadata"
FORM_ONLY_REPOSITORY = "form-only-repository"
APPLICATION_SCOPED = "application-scoped"
NON_ZIP_DOWNLOADS = "non-zip-downloads"
HTML_DOWNLOADS = "html-downloads"
BASE64_DOWNLOADS = "base64-downloads"
EVENTUAL_LISTING = "eventual-listing"
IGNORES_RANGE = "ignores-range"

DEFAULT_PROFILE = JOB_METADATA
#: How long ``eventual-listing`` keeps a new repository or job out of the listings, unless
#: ``eventual-listing=SECONDS`` says otherwise.
DEFAULT_LISTING_DELAY = 2.0

_STATUS_BODIES = (JOB_METADATA, REPOSITORY_METADATA, METADATA_STRING, NO_METADATA)
_DOWNLOADS = (NON_ZIP_DOWNLOADS, HTML_DOWNLOADS, BASE64_DOWNLOADS)

#: Every profile, each with what it makes the emulator do; the catalogue order is the order of
#: :data:`PROFILES` and of :attr:`Profile.names`.
PROFILE_DESCRIPTIONS: dict[str, str] = {
    JOB_METADATA: "GET /job/{job_id} carries the job's own metadata as a JSON object (the default)",
    REPOSITORY_METADATA: "GET /job/{job_id} answers the repository's details (name, input, created_on, "
    "created_by, params, jobs) and the repository's metadata, plus job_status: the reference's only "
    "example of that answer",
    METADATA_STRING: "GET /job/{job_id} carries the job's metadata as a JSON string, as a server that "
    "stores multipart fields as text would",
    NO_METADATA: "GET /job/{job_id} carries no metadata field at all",
    FORM_ONLY_REPOSITORY: "POST /repository reads only multipart/form-data fields (file, params, "
    "metadata); a JSON body is accepted with 201 and its params and metadata are silently dropped",
    APPLICATION_SCOPED: "repositories and their jobs are visible only under the organization_id, "
    "application_id and client_id they were created with (older versions of the reference); another "
    "application gets 404 Invalid repository_id and does not list them",
    NON_ZIP_DOWNLOADS: "ZIP downloads (repository input, job output and logs) answer 200 with a JSON "
    'error page, {"message": "Internal server error"}, as a gateway in front of VBrain might',
    HTML_DOWNLOADS: "ZIP downloads answer 200 with an HTML gateway error page",
    BASE64_DOWNLOADS: "ZIP downloads answer 200 with the ZIP encoded as base64 text (text/plain)",
    IGNORES_RANGE: "ZIP downloads ignore Range and always answer the whole file (200), as a server "
    "without range support does; by default they answer Range: bytes=N- with 206 and the rest",
    EVENTUAL_LISTING: "a new repository or job shows up in GET /repository, GET /job and a repository's "
    f"jobs only {DEFAULT_LISTING_DELAY:g} s after it was created (eventual-listing=SECONDS for "
    "another delay); reading it by id works at once",
}

#: Every profile's name, for tests that run "under every profile".
PROFILES: tuple[str, ...] = tuple(PROFILE_DESCRIPTIONS)

_GROUPS: dict[str, str] = {
    **dict.fromkeys(_STATUS_BODIES, "the GET /job/{job_id} body"),
    FORM_ONLY_REPOSITORY: "the POST /repository body",
    APPLICATION_SCOPED: "the scoping",
    **dict.fromkeys(_DOWNLOADS, "the ZIP downloads"),
    IGNORES_RANGE: "range requests",
    EVENTUAL_LISTING: "the listing delay",
}


class ProfileError(ValueError):
    """A profile selection that cannot apply: an unknown name, or two readings of the same thing."""


def _listing_delay(token: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not is_non_negative_number(value):
        raise ProfileError(f"Profile {token!r}: the listing delay must be a non-negative number of seconds")
    return value


def _tokens(value: object) -> Iterator[str]:
    if isinstance(value, str):
        parts: list[object] = [value]
    elif isinstance(value, Iterable) and not isinstance(value, (Mapping, bytes, bytearray)):
        parts = list(value)
    else:
        raise ProfileError(f"A profile is named by a string or a list of strings, got {value!r}")
    for part in parts:
        if not isinstance(part, str):
            raise ProfileError(f"A profile is named by a string, got {part!r}")
        for token in part.split(","):
            if token.strip():
                yield token.strip()


@dataclass(frozen=True)
class Profile:
    """The readings the emulator follows: one value per group, built with :meth:`parse`.

    ``"metadata-string" in profile`` tells whether a profile name applies; ``str(profile)`` is the
    comma-separated selection, which :meth:`parse` reads back.

    :param status_body: what ``GET /job/{job_id}`` carries: ``job-metadata``, ``repository-metadata``,
        ``metadata-string`` or ``no-metadata``.
    :param form_only_repository: ``POST /repository`` reads form fields only.
    :param application_scoped: repositories are scoped by application too.
    :param downloads: what ZIP downloads answer instead of a ZIP (``non-zip-downloads``,
        ``html-downloads``, ``base64-downloads``), or None for the ZIP.
    :param listing_delay: seconds before a new repository or job is listed.
    :param ranges: ZIP downloads answer ``Range`` requests (false: ``ignores-range``).
    """

    status_body: str = JOB_METADATA
    form_only_repository: bool = False
    application_scoped: bool = False
    downloads: str | None = None
    listing_delay: float = 0.0
    ranges: bool = True
    names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.status_body not in _STATUS_BODIES:
            raise ProfileError(f"status_body must be one of {', '.join(_STATUS_BODIES)}")
        if self.downloads is not None and self.downloads not in _DOWNLOADS:
            raise ProfileError(f"downloads must be None or one of {', '.join(_DOWNLOADS)}")
        if not is_non_negative_number(self.listing_delay):
            raise ProfileError(f"listing_delay must be a non-negative number, got {self.listing_delay!r}")
        object.__setattr__(self, "listing_delay", float(self.listing_delay))
        names = [self.status_body]
        if self.form_only_repository:
            names.append(FORM_ONLY_REPOSITORY)
        if self.application_scoped:
            names.append(APPLICATION_SCOPED)
        if self.downloads is not None:
            names.append(self.downloads)
        if not self.ranges:
            names.append(IGNORES_RANGE)
        if self.listing_delay:
            delay = "" if self.listing_delay == DEFAULT_LISTING_DELAY else f"={self.listing_delay:g}"
            names.append(EVENTUAL_LISTING + delay)
        object.__setattr__(self, "names", tuple(names))

    @classmethod
    def parse(cls, value: ProfileLike = None) -> Profile:
        """Read a selection: None or ``""`` (the default), a name, comma-separated names, an iterable
        of those, or a :class:`Profile` (returned as is).

        :param value: the selection.
        :raises ProfileError: for an unknown name, a bad listing delay, or two profiles of one group.
        """
        if isinstance(value, Profile):
            return value
        if value is None:
            return cls()
        chosen: dict[str, str] = {}
        profile = cls()
        for token in _tokens(value):
            name, has_value, argument = token.partition("=")
            name = name.strip()
            if name not in PROFILE_DESCRIPTIONS:
                raise ProfileError(f"Unknown profile {name!r} (known: {', '.join(PROFILES)})")
            if has_value and name != EVENTUAL_LISTING:
                raise ProfileError(f"Profile {name!r} takes no value, got {token!r}")
            group = _GROUPS[name]
            earlier = chosen.get(group)
            if earlier is not None and earlier != token:
                raise ProfileError(f"Profiles {earlier!r} and {token!r} both set {group}; choose one")
            chosen[group] = token
            if name in _STATUS_BODIES:
                profile = replace(profile, status_body=name)
            elif name in _DOWNLOADS:
                profile = replace(profile, downloads=name)
            elif name == FORM_ONLY_REPOSITORY:
                profile = replace(profile, form_only_repository=True)
            elif name == APPLICATION_SCOPED:
                profile = replace(profile, application_scoped=True)
            elif name == IGNORES_RANGE:
                profile = replace(profile, ranges=False)
            else:
                delay = _listing_delay(token, argument) if has_value else DEFAULT_LISTING_DELAY
                profile = replace(profile, listing_delay=delay)
        return profile

    def __contains__(self, name: object) -> bool:
        return any(own == name or own.startswith(f"{name}=") for own in self.names)

    def __str__(self) -> str:
        return ",".join(self.names)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready description: the names that apply and the listing delay."""
        return {"profile": list(self.names), "listing_delay": self.listing_delay}


ProfileLike: TypeAlias = Profile | str | Iterable[str] | None
"""Anything :meth:`Profile.parse` reads."""
