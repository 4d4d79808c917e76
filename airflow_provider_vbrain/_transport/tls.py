"""The one trust store both transports check VBrain's certificate against."""

from __future__ import annotations

import os

__all__ = ["CA_BUNDLE_VARIABLES", "trust_store"]

#: The variables that name a CA bundle for requests (and so for most Airflow HTTP hooks), in the
#: order requests reads them: how a corporate CA is usually added to a deployment.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def trust_store(verify: bool | str) -> bool | str:
    """What a connection's ``verify`` extra means for both hooks: ``False`` (no check) or the CA
    file or folder to check against.

    ``True`` means what it means to requests: the bundle a variable of :data:`CA_BUNDLE_VARIABLES`
    names, else certifi's (requests' own default). aiohttp alone would use the system's store
    instead, so a certificate (a TLS-inspecting proxy's, say) could pass in the operator's hook and
    fail in the trigger's.
    """
    if isinstance(verify, str) or verify is False:
        return verify
    for name in CA_BUNDLE_VARIABLES:
        named = os.environ.get(name)
        if named:
            return named
    from requests.utils import DEFAULT_CA_BUNDLE_PATH  # certifi's bundle, as requests finds it

    return DEFAULT_CA_BUNDLE_PATH
