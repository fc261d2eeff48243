"""Configuration files that used to give a traceback, a vague error, or a silently different
setting: each is now one ``ConfigError`` naming the file or the key and the rule."""

from __future__ import annotations

import codecs
import pickle
import tomllib
from pathlib import Path
from typing import Any

import pytest

from mixpanel_core import ConfigError
from mixpanel_core.cli import main
from mixpanel_core.config import config_from_mapping, load_config
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.options import client_options
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.plugin import PluginContext, instantiate
from mixpanel_core.schema import read
from plugins.super_properties import SuperPropertiesOptions
from transports.buffered_http import BufferedHttpOptions

PASSWORD = "S3CRET-in-test"


def test_a_directory_given_as_the_file_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match=f"'{tmp_path}' cannot be read: Is a directory"):
        load_config(tmp_path)
    assert main(["config", "check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"mixpanel-core: error: configuration file '{tmp_path}' cannot be read")


def test_a_file_that_is_not_utf8_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe[mixpanel]\n")
    with pytest.raises(ConfigError, match=f"{path}: not valid TOML: TOML files are UTF-8 text"):
        load_config(path)
    assert main(["config", "check", str(path)]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_a_file_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Notepad's UTF-8 begins with one; it was refused as "Invalid statement (at line 1,
    column 1)", where nothing shows."""
    path = tmp_path / "bom.toml"
    path.write_bytes(codecs.BOM_UTF8 + b'[mixpanel]\ntoken = "t-\xc3\xa9"\n')
    assert load_config(path).mixpanel.token == "t-\u00e9"


def test_a_byte_order_mark_does_not_move_the_byte_named_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(codecs.BOM_UTF8 + b"[mixpanel]\n\xff")
    with pytest.raises(ConfigError, match="byte 14 is not UTF-8"):
        load_config(path)


def test_an_empty_dead_letter_path_is_refused_not_taken_for_none() -> None:
    """The docs say only a missing key means no dead-letter file; `${DLQ}` set to "" used to
    turn dead-lettering off without a word."""
    config = config_from_mapping(
        {"transports": {"b": {"type": "buffered_http", "dead_letter_path": "${DLQ}"}}},
        {"DLQ": ""},
    )
    with pytest.raises(ConfigError, match=r"transports\.b.dead_letter_path: must not be empty"):
        read(BufferedHttpOptions, config.transports["b"].options, "transports.b")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"transports": {"m": {"type": "memory"}}, "routes": [{"transport": ["m", 5]}]},
            "routes[0].transport[1]: must be a string, not an integer",
        ),
        (
            {
                "transports": {"m": {"type": "memory"}},
                "routes": [{"transport": ["m", ["m"]]}],
            },
            "routes[0].transport[1]: must be a string, not a list",
        ),
    ],
)
def test_a_wrong_item_in_a_list_is_named_with_its_rule(
    document: dict[str, Any], message: str
) -> None:
    """A key taking "string | list of string" used to say only "not a list"."""
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(document)
    assert str(caught.value) == message


def test_a_wrong_scalar_for_a_union_still_names_the_union() -> None:
    with pytest.raises(ConfigError, match=r"must be a string or a list of strings, not an integer"):
        config_from_mapping({"transports": {"m": {"type": "memory"}}, "routes": [{"transport": 5}]})


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("1979-05-27T07:32:00", "a TOML date-time"),
        ("1979-05-27T07:32:00Z", "a TOML date-time"),
        ("1979-05-27", "a TOML date"),
        ("07:32:00", "a TOML time"),
    ],
)
def test_a_toml_date_for_a_string_key_is_a_type_error_naming_the_key_and_the_type(
    value: str, kind: str
) -> None:
    """A date-time used to become the text '1979-05-27T07:32:00' without a word; a date gave
    "a date cannot be carried by JSON", which did not say what the key takes."""
    document = tomllib.loads(
        f'[transports.b]\ntype = "buffered_http"\ndead_letter_path = {value}\n'
    )
    config = config_from_mapping(document)
    with pytest.raises(ConfigError) as caught:
        read(BufferedHttpOptions, config.transports["b"].options, "transports.b")
    assert str(caught.value) == f"transports.b.dead_letter_path: must be a string, not {kind}"


def test_a_toml_date_time_in_a_table_of_properties_is_still_written_as_text() -> None:
    """A key taking any JSON value writes a date-time as the official SDK does."""
    document = tomllib.loads(
        '[plugins]\nenabled = ["super_properties"]\n'
        "[plugins.super_properties.properties]\nlaunched = 1979-05-27T07:32:00\n"
    )
    options = read(
        SuperPropertiesOptions,
        config_from_mapping(document).plugin_options["super_properties"],
        "plugins.super_properties",
    )
    assert options.properties == {"launched": "1979-05-27T07:32:00"}


def test_a_toml_date_in_a_table_of_properties_is_a_config_error_naming_the_key() -> None:
    document = tomllib.loads(
        '[plugins]\nenabled = ["super_properties"]\n'
        "[plugins.super_properties.properties]\nlaunched = 1979-05-27\n"
    )
    with pytest.raises(ConfigError, match=r"properties\.launched: a TOML date cannot"):
        read(
            SuperPropertiesOptions,
            config_from_mapping(document).plugin_options["super_properties"],
            "plugins.super_properties",
        )


def test_a_toml_date_in_a_kafka_python_table_is_refused_naming_the_option() -> None:
    """Kept as a date, it would reach kafka-python as an object (for `partitioner`, one it
    calls at every send): refused, as a date-time made into text used to be."""
    document = tomllib.loads(
        '[transports.bus]\ntype = "kafka"\nbootstrap_servers = "k:9092"\ntopic = "e"\n'
        "producer = { partitioner = 1979-05-27, client_id = 07:32:00 }\n"
    )
    table = config_from_mapping(document).transports["bus"].options["producer"]
    known = kafka_python().KafkaProducer.DEFAULT_CONFIG
    with pytest.raises(ConfigError) as caught:
        client_options(table, known, "transports.bus.producer")
    assert str(caught.value) == (
        "transports.bus.producer.partitioner: takes no TOML date or time; quote the value to "
        "give a string"
    )


SECRET_FILE = {
    "plugins": {"enabled": ["redaction"], "redaction": {"hash": ["email"], "salt": PASSWORD}},
    "transports": {
        "bus": {
            "type": "kafka",
            "bootstrap_servers": "k:9092",
            "topic": "events",
            "producer": {"sasl_plain_password": PASSWORD, "sasl_plain_username": "u"},
        }
    },
    "forwarder": {
        "source": "bus",
        "dead_letter_topic": "dlq",
        "consumer": {"sasl_plain_password": PASSWORD},
    },
}


def test_raw_tables_printed_on_their_own_show_only_their_keys() -> None:
    """docs/configuration.md says so; only the objects holding them used to."""
    from mixpanel_core.config import RawTable

    config = config_from_mapping(SECRET_FILE)
    shown = [
        config.forwarder,
        config.forwarder["consumer"] if config.forwarder else None,
        config.plugin_options,
        config.plugin_options["redaction"],
        PluginContext("redaction", config.plugin_options["redaction"], config).options,
        config.transports["bus"].options,
        config.transports["bus"].options["producer"],
    ]
    for table in shown:
        assert isinstance(table, RawTable)
        for text in (repr(table), str(table), f"{table}", repr([table])):
            assert PASSWORD not in text
    assert repr(config.plugin_options["redaction"]) == "{'hash': ..., 'salt': ...}"
    assert config.plugin_options["redaction"]["salt"] == PASSWORD  # the value is still there


def test_raw_tables_keep_hiding_their_values_across_pickle() -> None:
    """Configuration crosses into sender processes by pickle."""
    from mixpanel_core.config import RawTable

    config = config_from_mapping(SECRET_FILE)
    copy = pickle.loads(pickle.dumps(config.forwarder))
    assert isinstance(copy, RawTable)
    assert copy == config.forwarder
    assert PASSWORD not in repr(copy["consumer"])


class NoOptions:
    """A plugin class without ``from_config``: it takes no options."""


@pytest.mark.parametrize("table", [{}, {"colour": "blue"}])
def test_a_table_for_a_plugin_that_takes_no_options_is_refused_even_empty(
    table: dict[str, object],
) -> None:
    # An empty [plugins.NAME] table was taken in silence: most likely options meant for it
    # were written under the wrong name.
    config = config_from_mapping({"plugins": {"enabled": ["no_options"], "no_options": table}})
    context = PluginContext("no_options", config.plugin_options["no_options"], config)
    with pytest.raises(ConfigError, match=r"plugins\.no_options: plugin 'no_options' takes no"):
        instantiate(NoOptions, context)


def test_a_plugin_that_takes_no_options_is_built_without_a_table() -> None:
    config = config_from_mapping({})
    assert isinstance(instantiate(NoOptions, PluginContext("no_options", config=config)), NoOptions)


@pytest.mark.parametrize("size", [0, 1001, 10**9])
def test_a_pool_size_outside_1_to_1000_is_refused(size: int) -> None:
    # urllib3 fills a queue of pool_size slots when it makes the pool: 10**9 froze the send.
    with pytest.raises(ConfigError, match=f"pool_size: must be between 1 and 1000, not {size}"):
        Pipeline.from_config(
            config_from_mapping({"transports": {"t": {"type": "http", "pool_size": size}}})
        ).build_all()
