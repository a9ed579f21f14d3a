"""config.py: defaults, overrides from environment and .env, validation with clear errors."""

from __future__ import annotations

import pytest

from config import ConfigError, Settings, load_settings


def test_defaults_are_the_documented_ones():
    s = load_settings(None, environ={})
    assert s.PAPER_START_BALANCE == 1000.0
    assert s.EXCHANGE_CATEGORY == "linear"
    assert s.FEE_RATE == pytest.approx(0.00055)
    assert s.POSITION_SIZE_PCT == 0.05 and s.MIN_ORDER_USDT == 10.0
    assert s.AUTO_LIVE is False
    assert s.BYBIT_BASE_URL == ""
    assert s.has_bybit_keys is False


def test_every_setting_has_a_one_line_doc():
    for name, _value, doc in Settings().describe():
        assert doc and "\n" not in doc, name


def test_environment_overrides_dotenv_which_overrides_defaults(tmp_path):
    env = tmp_path / ".env"
    env.write_text("FEE_RATE=0.001\nFALLBACK_SYMBOLS=ETHUSDT, SOLUSDT\nUSE_TESTNET=yes\nLOG_LEVEL=DEBUG\n")
    s = load_settings(env, environ={"LOG_LEVEL": "WARNING"})
    assert s.FEE_RATE == 0.001
    assert s.FALLBACK_SYMBOLS == ("ETHUSDT", "SOLUSDT")
    assert s.USE_TESTNET is True
    assert s.LOG_LEVEL == "WARNING"  # the process environment wins over .env


def test_keyword_overrides_win(tmp_path):
    s = load_settings(None, environ={"MAX_OPEN_POSITIONS": "5"}, MAX_OPEN_POSITIONS=2)
    assert s.MAX_OPEN_POSITIONS == 2


@pytest.mark.parametrize("name,value,fragment", [
    ("EXCHANGE_CATEGORY", "futures", "allowed: linear, spot"),
    ("LEVERAGE", "abc", "expected a number"),
    ("FEE_RATE", "-0.1", "allowed: >= 0"),
    ("MAX_OPEN_POSITIONS", "2.5", "expected an integer"),
    ("CANDLE_INTERVAL", "7", "allowed: 1, 3, 5"),
    ("USE_TESTNET", "maybe", "expected true/false"),
    ("BYBIT_BASE_URL", "127.0.0.1:8080", "http(s)://"),
    ("BYBIT_WS_URL", "http://127.0.0.1:8080", "ws(s)://"),
    ("BYBIT_WS_STALL_SECONDS", "10", "above BYBIT_WS_PING_SECONDS"),
    ("FALLBACK_SYMBOLS", "btcusdt", "upper-case"),
    ("LOG_LEVEL", "LOUD", "allowed: DEBUG"),
])
def test_bad_values_name_the_setting_the_value_and_what_is_allowed(name, value, fragment):
    with pytest.raises(ConfigError) as err:
        load_settings(None, environ={name: value})
    text = str(err.value)
    assert name in text and fragment in text
    assert repr(value.strip()) in text or value.lower() in text.lower()


def test_unknown_setting_gets_did_you_mean(tmp_path):
    with pytest.raises(ConfigError, match="did you mean FEE_RATE"):
        load_settings(None, environ={}, FEE_RAT=0.1)
    env = tmp_path / ".env"
    env.write_text("MAX_OPEN_POSITION=4\n")
    with pytest.raises(ConfigError, match="did you mean MAX_OPEN_POSITIONS"):
        load_settings(env, environ={})


def test_inconsistent_stop_and_take_profit_is_refused():
    with pytest.raises(ConfigError, match="TAKE_PROFIT_ATR_MULT"):
        load_settings(None, environ={"TAKE_PROFIT_ATR_MULT": "2", "STOP_ATR_MULT": "2.5"})


def test_secrets_come_only_from_environment_and_never_show_in_repr(tmp_path):
    with pytest.raises(ConfigError, match="secret"):
        load_settings(None, environ={}, BYBIT_API_SECRET="from-code")
    env = tmp_path / ".env"
    env.write_text("BYBIT_API_KEY=KEY-SENTINEL-123\nBYBIT_API_SECRET=SECRET-SENTINEL-456\n")
    s = load_settings(env, environ={})
    assert s.has_bybit_keys
    assert "SENTINEL" not in repr(s)
    assert "SENTINEL" not in str(s.describe())
    assert set(s.secret_values()) == {"KEY-SENTINEL-123", "SECRET-SENTINEL-456"}


def test_a_bad_secret_value_is_not_echoed():
    with pytest.raises(ConfigError) as err:
        load_settings(None, environ={"LEVERAGE": "x", "BYBIT_API_KEY": "k" * 20})
    assert "k" * 20 not in str(err.value)


def test_env_example_lists_every_setting():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    for name, _v, _d in Settings().describe():
        assert f"# {name}=" in text, name
