"""The ``[mixpanel]`` table: which project, which host, which credentials."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from mixpanel_core.schema import setting
from mixpanel_core.secrets import Secret

DEFAULT_API_HOST = "api.mixpanel.com"


@attrs.frozen
class MixpanelSettings:
    """Project, host and credentials; shared by every transport and the forwarder."""

    token: str | None = setting(None, doc="The project token put into every record.")
    api_host: str = setting(
        DEFAULT_API_HOST,
        doc="A host name (`api-eu.mixpanel.com`) or a base URL (`http://127.0.0.1:8080`). "
        "Plain http is allowed only to loopback unless `allow_insecure_http` is true.",
    )
    allow_insecure_http: bool = setting(
        False, doc="Allow an `http://` base URL that is not on loopback."
    )
    urls: Mapping[str, str] = setting(
        factory=dict,
        doc="Per-endpoint URL overrides, keyed by `track`, `import`, `engage`, `groups`.",
    )
    project_id: str | None = setting(
        None, doc="The numeric project id; sent as `?project_id=` with service-account auth."
    )
    service_account_username: str | None = setting(
        None, doc="Service account user name for `/import` (the recommended auth)."
    )
    service_account_secret: Secret | None = setting(
        None, doc="Service account secret. Use `${VAR}` to keep it out of the file."
    )
    api_secret: Secret | None = setting(
        None, doc="Legacy project API secret for `/import` (retiring in March 2027)."
    )
    verify_tls: bool = setting(True, doc="Verify the server's TLS certificate.")

    @urls.validator
    def _known_endpoints(self, attribute: object, value: Mapping[str, str]) -> None:
        for key in value:
            if key not in ("track", "import", "engage", "groups"):
                raise ValueError(
                    f"urls.{key}: unknown endpoint; use track, import, engage or groups"
                )
