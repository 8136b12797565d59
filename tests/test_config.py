import re
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from agent.config import AgentConfig, ConfigError, load_config
from agent.daemon.main import tcp_token
from agent.fiscal.vat_number import is_valid_afm
from agent.secrets import CREDENTIAL_NAME, CredentialError

EXAMPLE = Path(__file__).resolve().parent.parent / "systemd" / "pos-agent.example.toml"
SECTION = re.compile(r"^\[([a-z_.]+)\]$")
SETTING = re.compile(r"^([a-z_]+) = ")
OPTIONAL_SETTING = re.compile(r"^# ([a-z_]+) = (.+)$")  # "# name = value": shown, not set

MINIMAL = """
[issuer]
vat = "EL123456783"
name = "ΔΟΚΙΜΗ"

[provider]
base_url = "http://127.0.0.1:8800"
portal_url = "http://127.0.0.1:8800/"
"""


def _model_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= _model_keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def _example_lines() -> list[tuple[str, str, bool, int]]:
    """(section, name, optional, line index) for every setting in the example, set or shown."""
    found = []
    section = ""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if match := SECTION.match(line):
            section = match.group(1) + "."
        elif match := SETTING.match(line):
            found.append((section, match.group(1), False, index))
        elif match := OPTIONAL_SETTING.match(line):
            found.append((section, match.group(1), True, index))
    return found


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pos-agent.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_loads() -> None:
    config = load_config(EXAMPLE)
    assert is_valid_afm(config.issuer.vat)
    assert config.api.socket_path == Path("/run/pos-agent/agent.sock")
    assert config.api.socket_mode == 0o660
    assert config.api.socket_group == "pos"
    assert config.api.tcp_port is None  # the TCP API is off unless asked for
    assert config.database_path == Path("/var/lib/pos-agent/pos-agent.sqlite3")


def test_example_documents_every_key_and_only_real_ones() -> None:
    documented = [section + name for section, name, _, _ in _example_lines()]
    assert len(documented) == len(set(documented)), "a key is documented twice"
    assert set(documented) == _model_keys(AgentConfig)


def test_every_example_key_has_its_own_comment() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for section, name, _, index in _example_lines():
        above = lines[index - 1]
        assert above.startswith("# ") and not OPTIONAL_SETTING.match(above), (
            f"{section}{name} (line {index + 1}) has no comment of its own"
        )


def test_optional_examples_are_valid_when_uncommented(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    uncommented = "\n".join(
        line[2:] if OPTIONAL_SETTING.match(line) else line for line in text.splitlines()
    )
    config = load_config(_write(tmp_path, uncommented))
    assert config.api.tcp_port == 8755
    assert config.printer.usb_vendor_id == 0x04B8
    assert config.printer.serial_device == "/dev/ttyUSB0"


def test_defaults_are_what_the_example_shows() -> None:
    """The example must not silently differ from what an absent key means, except where it says."""
    example = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    defaults = AgentConfig.model_validate(tomllib.loads(MINIMAL)).model_dump(mode="json")
    shown_on_purpose = {"printer.backend", "printer.preview_dir", "provider.api_key_file"}
    for section, name, optional, _ in _example_lines():
        key = section + name
        if optional or key in shown_on_purpose or key.startswith(("issuer.", "provider.")):
            continue
        node_example, node_default = example, defaults
        for part in key.split(".")[:-1]:
            node_example, node_default = node_example[part], node_default[part]
        assert node_example[name] == node_default[name], key


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL + '\n[printer]\nport = "nine"\n')
    with pytest.raises(ConfigError, match=r"printer\.port: Input should be a valid integer"):
        load_config(path)


def test_out_of_range_names_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL + "\n[api]\ntcp_port = 70000\n")
    with pytest.raises(ConfigError, match=r"api\.tcp_port: "):
        load_config(path)


def test_missing_required_key_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL.replace('vat = "EL123456783"\n', ""))
    with pytest.raises(ConfigError, match=r"issuer\.vat: Field required"):
        load_config(path)


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("\n[printer]\nprot = 9100\n", r"printer\.prot"),
        ("\n[issuer.address]\nzip = '11742'\n", r"issuer\.address\.zip"),
        ("\nstate_directory = '/tmp'\n", r"state_directory"),
        ("\n[printers]\nport = 9100\n", r"printers"),
    ],
)
def test_unknown_keys_rejected_with_their_name(tmp_path: Path, extra: str, key: str) -> None:
    path = _write(tmp_path, MINIMAL + extra)
    with pytest.raises(ConfigError, match=rf"{key}: Extra inputs are not permitted"):
        load_config(path)


def test_api_key_is_not_a_config_key(tmp_path: Path) -> None:
    text = MINIMAL.replace("[provider]\n", '[provider]\napi_key = "secret-in-toml"\n')
    with pytest.raises(ConfigError, match=r"provider\.api_key: Extra inputs") as caught:
        load_config(_write(tmp_path, text))
    assert "secret-in-toml" not in str(caught.value)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(_write(tmp_path, "[issuer\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml")


def _config_with_key_file(tmp_path: Path, key_file: Path) -> AgentConfig:
    text = MINIMAL.replace("[provider]\n", f'[provider]\napi_key_file = "{key_file}"\n')
    return load_config(_write(tmp_path, text))


def test_readable_key_file_refused_with_chmod_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    key_file = tmp_path / "provider-api-key"
    key_file.write_text("k-123\n")
    key_file.chmod(0o644)
    config = _config_with_key_file(tmp_path, key_file)
    with pytest.raises(CredentialError, match=rf"mode 644.*chmod 600 {re.escape(str(key_file))}"):
        config.api_key()
    key_file.chmod(0o600)
    assert config.api_key().reveal() == "k-123"


@pytest.mark.parametrize("content", ["KEY\nsecond line\n", "KEY WITH SPACE", "KEY\x00"])
def test_key_that_cannot_go_into_a_header_is_refused_without_showing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    key_file = tmp_path / "provider-api-key"
    key_file.write_text(content)
    key_file.chmod(0o600)
    with pytest.raises(CredentialError, match="line breaks or control") as refused:
        _config_with_key_file(tmp_path, key_file).api_key()
    assert "KEY" not in str(refused.value)


def test_key_from_credentials_directory_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / CREDENTIAL_NAME).write_text("from-systemd\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    key_file = tmp_path / "provider-api-key"
    key_file.write_text("from-file")
    key_file.chmod(0o600)
    assert _config_with_key_file(tmp_path, key_file).api_key().reveal() == "from-systemd"
    assert load_config(_write(tmp_path, MINIMAL)).api_key().reveal() == "from-systemd"


def test_no_key_anywhere_says_how_to_provide_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))  # set, but no credential in it
    with pytest.raises(CredentialError, match=r"provider\.api_key_file.*LoadCredential="):
        load_config(_write(tmp_path, MINIMAL)).api_key()


def test_missing_key_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    missing = tmp_path / "nope"
    with pytest.raises(CredentialError, match=rf"{re.escape(str(missing))} does not exist"):
        _config_with_key_file(tmp_path, missing).api_key()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("660", "write it in octal"),  # decimal 660 is 0o1224: sticky, owner -w-, group -w-, ...
        ("0o666", "others"),
        ("0o662", "others"),
    ],
)
def test_socket_mode_must_be_octal_and_closed_to_others(
    tmp_path: Path, value: str, reason: str
) -> None:
    path = _write(tmp_path, MINIMAL + f"\n[api]\nsocket_mode = {value}\n")
    with pytest.raises(ConfigError, match=rf"api\.socket_mode: .*{reason}"):
        load_config(path)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('profile = "cp851"', r"printer\.profile: .*unknown code page 'cp851'"),
        ("width_chars = 40", r"printer\.width_chars: .*40 is not one of 32, 42, 48"),
    ],
)
def test_printer_profile_and_width_are_checked_at_load(
    tmp_path: Path, setting: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, MINIMAL + f"\n[printer]\n{setting}\n"))


def test_socket_mode_owner_only_is_fine(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL + "\n[api]\nsocket_mode = 0o600\nsocket_group = 'pos'\n")
    assert load_config(path).api.socket_mode == 0o600


def _config_with_tcp_token(tmp_path: Path, token: str, mode: int) -> AgentConfig:
    token_file = tmp_path / "tcp-token"
    token_file.write_text(token)
    token_file.chmod(mode)
    extra = f'\n[api]\ntcp_port = 8755\ntcp_token_file = "{token_file}"\n'
    return load_config(_write(tmp_path, MINIMAL + extra))


def test_tcp_token_is_read_from_a_private_file(tmp_path: Path) -> None:
    assert tcp_token(_config_with_tcp_token(tmp_path, "t0ken\n", 0o600)) == b"t0ken"
    assert tcp_token(load_config(_write(tmp_path, MINIMAL))) is None  # no TCP port, no token
    with pytest.raises(CredentialError, match=r"api\.tcp_token_file .* has mode 644"):
        tcp_token(_config_with_tcp_token(tmp_path, "t0ken", 0o644))


def test_empty_tcp_token_is_refused(tmp_path: Path) -> None:
    """An empty token equals the empty string a caller without Authorization header sends."""
    with pytest.raises(ConfigError, match=r"api\.tcp_token_file .* is empty"):
        tcp_token(_config_with_tcp_token(tmp_path, " \n", 0o600))


def test_the_example_footer_is_placeholders_that_fail_until_filled() -> None:
    footer = load_config(EXAMPLE).provider.footer
    assert [p.split(" ")[0] for p in footer.problems()] == [
        "provider.footer.legal_name",
        "provider.footer.web_address",
        "provider.footer.licence",
    ]
    filled = footer.model_copy(
        update={
            "legal_name": "SOFTONE ΤΕΧΝΟΛΟΓΙΑ Α.Ε.",
            "web_address": "https://www.s1ecos.gr",
            "licence": "2024_01_001",
        }
    )
    assert filled.problems() == []
    assert filled.lines() == ("SOFTONE ΤΕΧΝΟΛΟΓΙΑ Α.Ε.", "https://www.s1ecos.gr", "2024_01_001")
    assert "not a web address" in filled.model_copy(update={"web_address": "Elise"}).problems()[0]


def test_the_older_footer_list_is_read_in_print_order(tmp_path: Path) -> None:
    text = MINIMAL.replace("[provider]\n", '[provider]\nfooter = ["Elise (sandbox)"]\n')
    footer = load_config(_write(tmp_path, text)).provider.footer
    assert footer.legal_name == "Elise (sandbox)"
    assert [p.split(" ")[0] for p in footer.problems()] == [
        "provider.footer.web_address",
        "provider.footer.licence",
    ]
