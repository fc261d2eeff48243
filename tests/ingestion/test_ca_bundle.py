"""The authorities trusted for TLS: ``REQUESTS_CA_BUNDLE``, then ``CURL_CA_BUNDLE``, as requests.

Behind a TLS-inspecting proxy, users point these at their company's authority, and the
official SDK (built on requests) honours them; this client trusted certifi's bundle only, so
every request failed on the certificate. Over real sockets: a local HTTPS server whose
certificate a throwaway authority signed.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import ConfigError
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.settings import MixpanelSettings

from .conftest import FAST, TOKEN, event
from .test_answers_and_tls import HandshakeCutter

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[Path, Path]]:
    """A throwaway authority's certificate (PEM), and a certificate for 127.0.0.1 it signed
    with its key."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    folder = tmp_path_factory.mktemp("authority")
    ca_pem, cert, key = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return ca_pem, (cert, key)


@pytest.fixture
def https_url(authority: tuple[Path, tuple[Path, Path]]) -> Iterator[str]:
    server = HandshakeCutter(authority[1], cuts=0)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def client_for(url: str, verify_tls: bool = True) -> IngestionClient:
    return IngestionClient(MixpanelSettings(api_host=url, token=TOKEN, verify_tls=verify_tls), FAST)


def send_one(client: IngestionClient) -> DeliveryReport:
    try:
        return client.send_batch("track", [event()]).reports[0]
    finally:
        client.close()


def test_requests_ca_bundle_is_trusted_and_without_it_the_certificate_is_refused(
    authority: tuple[Path, tuple[Path, Path]], https_url: str, environment: pytest.MonkeyPatch
) -> None:
    refused = send_one(client_for(https_url))
    assert (refused.status, refused.attempts) == (DeliveryStatus.FAILED, 1)
    assert "CERTIFICATE_VERIFY_FAILED" in (refused.reason or "")

    environment.setenv("REQUESTS_CA_BUNDLE", str(authority[0]))
    accepted = send_one(client_for(https_url))
    assert (accepted.status, accepted.http_status) == (DeliveryStatus.ACCEPTED, 200)


def test_curl_ca_bundle_is_trusted_when_requests_ca_bundle_is_unset_or_empty(
    authority: tuple[Path, tuple[Path, Path]], https_url: str, environment: pytest.MonkeyPatch
) -> None:
    environment.setenv("CURL_CA_BUNDLE", str(authority[0]))
    assert send_one(client_for(https_url)).status is DeliveryStatus.ACCEPTED
    environment.setenv("REQUESTS_CA_BUNDLE", "")  # empty counts as unset, as for requests
    assert send_one(client_for(https_url)).status is DeliveryStatus.ACCEPTED


def test_requests_ca_bundle_comes_first_and_curl_ca_bundle_is_then_not_read(
    authority: tuple[Path, tuple[Path, Path]],
    https_url: str,
    environment: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    environment.setenv("REQUESTS_CA_BUNDLE", str(authority[0]))
    environment.setenv("CURL_CA_BUNDLE", str(tmp_path / "missing.pem"))
    assert send_one(client_for(https_url)).status is DeliveryStatus.ACCEPTED

    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    environment.setenv("REQUESTS_CA_BUNDLE", str(other))
    environment.setenv("CURL_CA_BUNDLE", str(authority[0]))
    report = send_one(client_for(https_url))
    assert report.status is DeliveryStatus.FAILED
    assert "CERTIFICATE_VERIFY_FAILED" in (report.reason or "")


def _der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _der_items(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The (tag, content) of each DER element in ``data``, in order."""
    at = 0
    while at < len(data):
        tag, length = data[at], data[at + 1]
        at += 2
        if length & 0x80:
            size = length & 0x7F
            length = int.from_bytes(data[at : at + size], "big")
            at += size
        yield tag, data[at : at + length]
        at += length


# ASN.1 string tags OpenSSL canonicalises in a name: UTF8, Printable, T61, IA5, Visible,
# Universal, BMP; with the codec each is read with.
_NAME_STRINGS = {
    0x0C: "utf-8",
    0x13: "ascii",
    0x14: "latin-1",
    0x16: "ascii",
    0x1A: "ascii",
    0x1C: "utf-32-be",
    0x1E: "utf-16-be",
}
_SPACES = " \t\n\v\f\r"  # what OpenSSL counts as white space: ASCII only


def _subject_hash(certificate: Path) -> str:
    """``openssl x509 -hash`` of a PEM certificate: the name OpenSSL looks a CA up by in a
    directory (``X509_NAME_hash``: SHA-1 of the subject's canonical DER, each string value as
    a UTF8String, trimmed, inner whitespace runs made one space, ASCII lowercased; the first 4
    bytes, little-endian). Computed here so the test needs no ``openssl`` program."""
    ((_, whole),) = _der_items(ssl.PEM_cert_to_DER_cert(certificate.read_text()))
    _, tbs = next(_der_items(whole))
    fields = list(_der_items(tbs))
    if fields[0][0] == 0xA0:  # the explicit version
        del fields[0]
    _, subject = fields[4]  # serial, signature, issuer, validity, subject
    canonical = b""
    for _, rdn in _der_items(subject):
        ((_, attribute),) = _der_items(rdn)  # one attribute per RDN in a test CA
        (oid_tag, oid), (value_tag, value) = _der_items(attribute)
        if value_tag in _NAME_STRINGS:
            text = value.decode(_NAME_STRINGS[value_tag])
            text = re.sub(f"[{_SPACES}]+", " ", text.strip(_SPACES))
            text = "".join(c.lower() if c.isascii() else c for c in text)
            value_tag, value = 0x0C, text.encode()
        canonical += _der(0x31, _der(0x30, _der(oid_tag, oid) + _der(value_tag, value)))
    digest = hashlib.sha1(canonical).digest()
    return f"{int.from_bytes(digest[:4], 'little'):08x}"


def test_a_directory_of_hashed_certificates_is_trusted(
    authority: tuple[Path, tuple[Path, Path]],
    https_url: str,
    environment: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    shutil.copy(authority[0], tmp_path / f"{_subject_hash(authority[0])}.0")
    environment.setenv("REQUESTS_CA_BUNDLE", str(tmp_path))
    assert send_one(client_for(https_url)).status is DeliveryStatus.ACCEPTED


def test_the_variable_is_read_once_when_the_client_is_built(
    authority: tuple[Path, tuple[Path, Path]], https_url: str, environment: pytest.MonkeyPatch
) -> None:
    environment.setenv("REQUESTS_CA_BUNDLE", str(authority[0]))
    client = client_for(https_url)
    environment.delenv("REQUESTS_CA_BUNDLE")
    assert send_one(client).status is DeliveryStatus.ACCEPTED


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_a_path_that_does_not_exist_is_a_config_error_naming_the_variable(
    environment: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    """requests fails every request with an OSError; this fails once, when the client is
    built, before anything is sent. Without verification (``verify_tls = false``, as requests
    with ``verify=False``) nothing is trusted and the variables are not read."""
    missing = tmp_path / "corporate-ca.pem"
    environment.setenv(variable, str(missing))
    with pytest.raises(ConfigError) as caught:
        client_for("https://api.mixpanel.example")
    assert str(caught.value).startswith(f"{variable}: '{missing}' does not exist;")
    client_for("https://api.mixpanel.example", verify_tls=False).close()


def test_a_file_without_certificates_is_a_config_error(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    environment.setenv("REQUESTS_CA_BUNDLE", str(not_pem))
    with pytest.raises(ConfigError, match=r"^REQUESTS_CA_BUNDLE: '.*ca\.pem' holds no CA"):
        client_for("https://api.mixpanel.example")


def test_the_ca_bundle_key_is_trusted_before_the_environment(
    authority: tuple[Path, tuple[Path, Path]],
    https_url: str,
    environment: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    environment.setenv("REQUESTS_CA_BUNDLE", str(other))
    settings = MixpanelSettings(api_host=https_url, token=TOKEN, ca_bundle=str(authority[0]))
    assert send_one(IngestionClient(settings, FAST)).status is DeliveryStatus.ACCEPTED
    # And only the key: the environment's authority alone is not the server's.
    assert send_one(client_for(https_url)).status is DeliveryStatus.FAILED


def test_a_ca_bundle_key_that_does_not_exist_or_is_empty_is_refused_naming_it(
    tmp_path: Path, environment: pytest.MonkeyPatch
) -> None:
    missing = str(tmp_path / "missing.pem")
    settings = MixpanelSettings(api_host="https://127.0.0.1:9", token=TOKEN, ca_bundle=missing)
    with pytest.raises(ConfigError, match=r"^mixpanel\.ca_bundle: .*missing\.pem.* does not exist"):
        IngestionClient(settings, FAST)
    with pytest.raises(ValueError, match="ca_bundle: must not be empty or blank"):
        MixpanelSettings(token=TOKEN, ca_bundle=" ")


def test_a_directory_without_hashed_certificates_is_refused_naming_it(
    authority: tuple[Path, tuple[Path, Path]], tmp_path: Path, environment: pytest.MonkeyPatch
) -> None:
    """It was taken, and every request then failed certificate verification, naming no
    setting (review R62 F2): OpenSSL finds a directory's certificates by their hashed names
    only, so one holding the authority under its own name is refused too."""
    name = _subject_hash(authority[0])
    folders = {
        kind: tmp_path / kind
        for kind in ("empty", "unhashed", "second only", "broken link", "empty file", "folder")
    }
    for folder in folders.values():
        folder.mkdir()
    shutil.copy(authority[0], folders["unhashed"] / "ca.pem")
    # OpenSSL looks for .1 only after .0, and finds nothing in these either.
    shutil.copy(authority[0], folders["second only"] / f"{name}.1")
    (folders["broken link"] / f"{name}.0").symlink_to(tmp_path / "gone.pem")
    (folders["empty file"] / f"{name}.0").touch()
    (folders["folder"] / f"{name}.0").mkdir()
    for folder in folders.values():
        settings = MixpanelSettings(
            api_host="https://127.0.0.1:9", token=TOKEN, ca_bundle=str(folder)
        )
        with pytest.raises(ConfigError, match=r"^mixpanel\.ca_bundle: .* holding no hashed CA"):
            IngestionClient(settings, FAST)
        environment.setenv("REQUESTS_CA_BUNDLE", str(folder))
        with pytest.raises(ConfigError, match=r"^REQUESTS_CA_BUNDLE: .* holding no hashed CA"):
            client_for("https://api.mixpanel.example")
