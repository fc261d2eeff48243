"""The ``[mixpanel]`` table: which project, which host, which credentials."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from mixpanel_core.schema import setting
from mixpanel_core.secrets import Secret

DEFAULT_API_HOST = "api.mixpanel.com"


def shown_url(url: str) -> str:
    """``url`` as a message may show it: its query or fragment, which may hold a credential,
    cut to ``?...`` or ``#...``, and a ``user:password@`` written in it as ``***@``."""
    url = _as_read(url)
    start, end = _authority(url)
    at = url.rfind("@", start, end)
    if at >= 0:
        url = f"{url[:start]}***{url[at:]}"
    cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=-1)
    return url if cut < 0 else f"{url[: cut + 1]}..."


_IGNORED_IN_URLS = str.maketrans("", "", "\t\r\n")
"""What ``urlsplit`` removes from a URL wherever it stands (``https:\t//host`` is
``https://host`` to it); leading and trailing spaces and control characters it strips."""


def _as_read(url: str) -> str:
    """``url`` as the client will read it (see ``_IGNORED_IN_URLS``)."""
    return url.translate(_IGNORED_IN_URLS).strip("".join(map(chr, range(33))))


def _authority(url: str) -> tuple[int, int]:
    """Where the authority (``user:password@host:port``) of ``url`` (read as the client will
    read it, ``_as_read``) is: after the scheme and every slash after it (``//host`` and
    ``/host`` are taken for ``https://host``), up to its path, query or fragment."""
    scheme_end = url.find("://")
    start = 0 if scheme_end < 0 else scheme_end + 3
    while url.startswith("/", start):
        start += 1
    ends = (url.find(mark, start) for mark in "/?#")
    return start, min((end for end in ends if end >= 0), default=len(url))


def _shown_urls(urls: Mapping[str, str]) -> str:
    # A configuration is shown in logs and tracebacks; the query of a URL is not.
    return repr({name: shown_url(url) for name, url in urls.items()})


@attrs.frozen
class MixpanelSettings:
    """Project, host and credentials; shared by every transport and the forwarder."""

    token: str | None = setting(None, doc="The project token put into every record.")
    api_host: str = setting(
        DEFAULT_API_HOST,
        doc="A host name (`api-eu.mixpanel.com`) or a base URL (`http://127.0.0.1:8080`). "
        "Plain http is allowed only to loopback unless `allow_insecure_http` is true. A port "
        "must be 1 to 65535. No `user:password@`, query (`?...`) or fragment (`#...`) in it: "
        "credentials go in the keys below, and a query in `urls`.",
    )
    allow_insecure_http: bool = setting(
        False, doc="Allow an `http://` base URL that is not on loopback."
    )
    urls: Mapping[str, str] = setting(
        factory=dict,
        doc="Per-endpoint URL overrides, keyed by `track`, `import`, `engage`, `groups` "
        "(no `user:password@` or fragment either). A query (`?ip=1`) is sent as written, the "
        "client's own parameters after it; no credential in it (see ingestion). A `repr` of "
        "the settings shows each query as `?...`.",
        shown=_shown_urls,
    )
    project_id: str | None = setting(
        None, doc="The numeric project id; sent as `?project_id=` with service-account auth."
    )
    service_account_username: str | None = setting(
        None,
        doc="Service account user name for `/import` (the recommended auth); needs "
        "`service_account_secret` and `project_id`.",
    )
    service_account_secret: Secret | None = setting(
        None, doc="Service account secret. Use `${VAR}` to keep it out of the file."
    )
    api_secret: Secret | None = setting(
        None, doc="Legacy project API secret for `/import` (retiring in March 2027)."
    )
    verify_tls: bool = setting(True, doc="Verify the server's TLS certificate.")
    ca_bundle: str | None = setting(
        None,
        doc="A file of CA certificates (PEM), or a directory of hashed ones (`c_rehash`), to "
        "trust instead of certifi's bundle and of what `REQUESTS_CA_BUNDLE` names; read when the "
        "transport is built. Not read with `verify_tls = false`.",
    )

    @api_host.validator
    def _no_credentials_in_host(self, attribute: object, value: str) -> None:
        _refuse_userinfo("api_host", value)

    @urls.validator
    def _known_endpoints(self, attribute: object, value: Mapping[str, str]) -> None:
        for key, url in value.items():
            if key not in ("track", "import", "engage", "groups"):
                raise ValueError(
                    f"urls.{key}: unknown endpoint; use track, import, engage or groups"
                )
            _refuse_userinfo(f"urls.{key}", url)

    @token.validator
    @project_id.validator
    @service_account_username.validator
    @service_account_secret.validator
    @api_secret.validator
    @ca_bundle.validator
    def _not_empty(self, attribute: attrs.Attribute[object], value: str | Secret | None) -> None:
        # An empty credential (a ${VAR} set to "" in a deployment) would be taken for none,
        # and /import would quietly use the next kind instead (an empty ca_bundle, certifi's
        # authorities): only a missing key means none.
        text = value.reveal() if isinstance(value, Secret) else value
        if text is not None and not text.strip():
            raise ValueError(
                f"{attribute.name}: must not be empty or blank; leave the key out to give none"
            )

    @service_account_secret.validator
    def _whole_service_account(self, attribute: object, value: Secret | None) -> None:
        # Half an account would quietly fall back to another credential, or fail at the
        # first /import: say so when the configuration is read.
        if (self.service_account_username is None) != (value is None):
            given = "username" if value is None else "secret"
            missing = "secret" if value is None else "username"
            raise ValueError(f"service_account_{missing}: required with service_account_{given}")
        if value is not None and not self.project_id:
            raise ValueError("project_id: required with a service account (sent as ?project_id=)")


CREDENTIAL_KEYS = "use service_account_username/secret or api_secret"
"""Where credentials are given instead of in a URL (the drop-in consumers say their own)."""


def _refuse_userinfo(key: str, url: str) -> None:
    """Refuse ``user:password@`` in a URL: it would be shown wherever the URL is (errors,
    logs, dead letters). The URL itself is not quoted, since it holds the password.

    Any ``@`` is refused, not only one in the authority: a password holding an unencoded
    ``/``, ``?`` or ``#`` ends the authority early (``https://svc:2024/S3CR3T@host`` is host
    ``svc``, port 2024, and the password in the path), and no ingestion URL needs an ``@``
    of its own (``%40`` writes one)."""
    if not isinstance(url, str):
        raise TypeError(f"{key}: must be a string, not {type(url).__name__}")
    if "@" in _as_read(url):
        raise ValueError(
            f"{key}: credentials in the URL are not supported (the URL is not shown here, "
            f"as it may hold them; write an @ that belongs to it as %40); {CREDENTIAL_KEYS}"
        )
