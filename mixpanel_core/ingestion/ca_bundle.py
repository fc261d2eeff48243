"""The certificate authorities a session trusts, chosen from the environment as requests
chooses them."""

from __future__ import annotations

import functools
import os
import re
import ssl
from collections.abc import Mapping

import certifi

from mixpanel_core.errors import ConfigError

CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
"""Where requests (and so the official SDK) looks for the authorities to trust, in order."""


def ca_bundle(environ: Mapping[str, str], configured: str | None = None) -> dict[str, str]:
    """urllib3's options for the authorities to trust when certificates are verified.

    ``configured`` (``[mixpanel] ca_bundle``) if given; else as requests chooses them:
    ``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE`` (an empty value counts as unset), a PEM
    file or a directory of hashed certificates (``c_rehash``); else certifi's bundle. Unlike
    requests, which fails each request with an ``OSError``, a path that does not exist, a
    file that holds no certificate, or a directory with no hashed name in it, is a
    ``ConfigError`` naming the key or the variable, raised when the session is built.
    """
    if configured is not None:
        variable, path = "mixpanel.ca_bundle", configured
    else:
        for variable in CA_BUNDLE_VARIABLES:
            path = environ.get(variable, "")
            if path:
                break
        else:
            return {"ca_certs": certifi.where()}
    path = os.path.abspath(path)  # a later chdir() must not change what is trusted
    if os.path.isdir(path):
        if not _holds_hashed_certificates(path):
            # OpenSSL looks a directory's certificates up by these names only: without one,
            # every request failed certificate verification, naming no setting.
            raise ConfigError(
                f"{variable}: {path!r} is a directory holding no hashed CA certificate that "
                "can be read (a file named as `openssl rehash` names them: 8 lower-case hex "
                "digits and .0, such as 1a2b3c4d.0); run `openssl rehash` on it, or point at "
                "a PEM file"
            )
        return {"ca_cert_dir": path}
    if not os.path.exists(path):
        raise ConfigError(
            f"{variable}: {path!r} does not exist; point it at a file of CA certificates "
            "(PEM) or a directory of hashed ones, or unset it to trust certifi's bundle"
        )
    try:
        stat = os.stat(path)
        _check_ca_file(path, (stat.st_ino, stat.st_size, stat.st_mtime_ns))
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"{variable}: {path!r} holds no CA certificate that can be read ({exc}); it must "
            "be a file of PEM certificates or a directory of hashed ones"
        ) from exc
    return {"ca_certs": path}


@functools.lru_cache(maxsize=8)
def _check_ca_file(path: str, version: tuple[int, int, int]) -> None:
    """Load ``path`` as CA certificates once per version of the file (raises if it cannot).

    Loading the system's bundle takes about 20 ms, thirty times what building a client
    costs otherwise; clients built per web request must not pay it each time.
    """
    ssl.create_default_context(cafile=path)


_FIRST_HASHED_NAME = re.compile(r"[0-9a-f]{8}\.0")
"""The name OpenSSL looks a certificate up by in a hashed directory (``openssl rehash``): the
subject's hash, in lower case, and ``.0``; ``.1`` and on only after it (a CRL's is ``.r0``)."""


def _holds_hashed_certificates(path: str) -> bool:
    """Whether OpenSSL would find a certificate in the directory ``path``: a first hashed
    name that loads as one (not a broken link, an empty file or a folder; review R63 F5)."""
    try:
        names = os.listdir(path)
    except OSError:
        return True  # not this check's to say: OpenSSL says why it cannot read it
    for name in names:
        if not _FIRST_HASHED_NAME.fullmatch(name):
            continue
        found = os.path.join(path, name)
        try:
            stat = os.stat(found)
            _check_ca_file(found, (stat.st_ino, stat.st_size, stat.st_mtime_ns))
        except (ssl.SSLError, OSError):
            continue
        return True
    return False
