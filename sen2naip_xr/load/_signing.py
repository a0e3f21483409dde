"""Signers: turn an asset href into a readable URL, inside the read task (never at graph build).

A signer is any callable ``signer(href, refresh=False) -> str``. ``refresh=True`` asks for a new
token (the read got HTTP 403, e.g. because the old one expired during a long job).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from sen2naip_xr._safe import redact
from sen2naip_xr.errors import SigningError

__all__ = ["Signer", "PlanetaryComputerSigner", "NoSigner", "strip_sas"]

_BLOB = ".blob.core.windows.net"


@runtime_checkable
class Signer(Protocol):
    """The seam through which the loaders sign asset hrefs before reading them.

    The default is :class:`PlanetaryComputerSigner` (SAS tokens for Azure blob hrefs); :class:`NoSigner`
    leaves hrefs as they are. Pass any picklable callable with this signature as ``signer=`` to the
    loaders or the builders. Raise :class:`~sen2naip_xr.errors.SigningError` when an href cannot be
    signed.

    Parameters
    ----------
    href
        The asset href from the STAC item (a stale SAS query string may be present; see :func:`strip_sas`).
    refresh
        True when a read with the previously signed href failed: get a fresh token instead of a cached one.

    Returns
    -------
    str
        The href to read.
    """

    def __call__(self, href: str, *, refresh: bool = False) -> str: ...


def strip_sas(href: str) -> str:
    """Drop a SAS token (the query string) from an Azure blob href, so it can be signed afresh."""
    parts = urlsplit(href)
    if parts.netloc.endswith(_BLOB) and parts.query:
        return urlunsplit(parts._replace(query=""))
    return href


@dataclass(frozen=True)
class NoSigner:
    """Leave hrefs as they are (local files, public buckets, plain HTTP)."""

    def __call__(self, href: str, *, refresh: bool = False) -> str:
        return href


@dataclass(frozen=True)
class PlanetaryComputerSigner:
    """Sign Azure blob hrefs with a Planetary Computer SAS token (``planetary_computer.sas``).

    Tokens come from the SDK's cache (refreshed when less than a minute is left) or from the token
    service at ``PC_SDK_SAS_URL`` (Planetary Computer's by default). Hrefs outside
    ``*.blob.core.windows.net`` are returned unchanged without any network call. A token already in
    the href (signed at search time) is dropped and replaced, so stale tokens never reach a read.
    """

    retries: int = 3
    """Retries of the token service call (the SDK's ``retry_total``)."""

    backoff: float = 0.5
    """The SDK's ``retry_backoff_factor``."""

    def __call__(self, href: str, *, refresh: bool = False) -> str:
        parts = urlsplit(href)
        if not parts.netloc.endswith(_BLOB) or parts.netloc.startswith("ai4edatasetspublicassets."):
            return href
        from planetary_computer import sas
        from planetary_computer.settings import Settings
        from planetary_computer.utils import parse_blob_url

        bare = strip_sas(href)
        account, container = parse_blob_url(urlsplit(bare))
        if refresh:
            sas.TOKEN_CACHE.pop(f"{Settings.get().sas_url}/{account}/{container}", None)
        try:
            token = sas.get_token(account, container, retry_total=self.retries, retry_backoff_factor=self.backoff)
        except Exception as exc:
            raise SigningError(  # the token service's answer may quote a token or a subscription key
                redact(f"could not get a SAS token for {account}/{container} from {Settings.get().sas_url}: {exc}")
            ) from None
        return token.sign(bare).href
