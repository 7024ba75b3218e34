"""Response parameters: defaults from the environment, per-conversation settings, validation."""

from __future__ import annotations

import pytest

from tests.conftest import messages_of, start_chat, text_of
from webapp.config import ConfigError
from webapp.conversations.models import Conversation
from webapp.extensions import db

# What every chat request carries whatever the settings; the rest are the parameters.
ALWAYS_SENT = {"model", "messages", "stream", "stream_options"}
VALID = {"temperature": "0.7", "top_p": "", "max_tokens": "100", "stop": "END\n\n###\n",
         "presence_penalty": "0.5", "frequency_penalty": "-1", "seed": "42"}
VALID_SENT = {"temperature": 0.7, "max_tokens": 100, "stop": ["END", "###"],
              "presence_penalty": 0.5, "frequency_penalty": -1.0, "seed": 42}
BLANK = dict.fromkeys(VALID, "")


def sent_params(upstream, index: int = -1) -> dict:
    """The parameters of a recorded chat request, without what every request carries."""
    body = upstream.chat_requests[index].json
    return {key: value for key, value in body.items() if key not in ALWAYS_SENT}


def stored_params(app, url: str):
    with app.app_context():
        return db.session.scalar(db.select(Conversation.params).where(
            Conversation.public_id == url.rsplit("/", 1)[1]))


def test_without_settings_or_defaults_no_parameter_is_sent(client, upstream):
    url = start_chat(client, "Hi")
    client.post(f"{url}/messages", data={"content": "Again"})
    assert sent_params(upstream, 0) == {} and sent_params(upstream, 1) == {}


def test_defaults_come_from_the_environment(make_app, upstream, monkeypatch):
    monkeypatch.setenv("REGOLO_TEMPERATURE", "0.3")
    monkeypatch.setenv("REGOLO_MAX_TOKENS", "256")
    monkeypatch.setenv("REGOLO_SEED", "-7")
    client = make_app().test_client()
    start_chat(client, "Hi")
    assert sent_params(upstream) == {"temperature": 0.3, "max_tokens": 256, "seed": -7}


@pytest.mark.parametrize("name, value", [
    ("REGOLO_TEMPERATURE", "3"), ("REGOLO_TOP_P", "warm"), ("REGOLO_MAX_TOKENS", "0"),
    ("REGOLO_MAX_TOKENS", "1.5"), ("REGOLO_PRESENCE_PENALTY", "-2.5"),
    ("REGOLO_FREQUENCY_PENALTY", "inf"), ("REGOLO_SEED", "x"),
])
def test_a_bad_default_stops_the_app_at_startup(make_app, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        make_app()


def test_saved_settings_are_sent_exactly_and_blank_ones_not_at_all(app, client, upstream):
    url = start_chat(client, "Hi")
    assert client.post(f"{url}/settings", data=VALID).status_code == 303
    client.post(f"{url}/messages", data={"content": "Again"})
    assert sent_params(upstream) == VALID_SENT
    assert "top_p" not in upstream.chat_requests[-1].json
    assert stored_params(app, url) == VALID_SENT


def test_cleared_settings_override_the_defaults(make_app, upstream, monkeypatch):
    monkeypatch.setenv("REGOLO_TOP_P", "0.9")
    client = make_app().test_client()
    url = start_chat(client, "Hi")
    assert sent_params(upstream) == {"top_p": 0.9}
    client.post(f"{url}/settings", data=BLANK)
    client.post(f"{url}/messages", data={"content": "Again"})
    assert sent_params(upstream) == {}


def test_the_settings_show_the_values_in_use(make_app, upstream, monkeypatch):
    monkeypatch.setenv("REGOLO_TEMPERATURE", "0.2")
    client = make_app().test_client()
    url = start_chat(client, "Hi")
    page = client.get(url).get_data(as_text=True)
    assert 'popovertarget="settings-panel"' in page and 'id="settings-panel" popover' in page
    assert 'name="temperature" type="number"' in page and 'value="0.2"' in page
    client.post(f"{url}/settings", data=VALID)
    page = client.get(url).get_data(as_text=True)
    assert 'value="0.7"' in page and 'value="42"' in page and ">END\n###</textarea>" in page


def test_saving_with_htmx_returns_the_settings_fragment(client, upstream):
    url = start_chat(client, "Hi")
    response = client.post(f"{url}/settings", data=VALID, headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="settings"' in html
    assert "<nav" not in html and "Saved" in html


def test_a_new_chat_can_start_with_settings(app, client, upstream):
    url = start_chat(client, "Hi", **(BLANK | {"temperature": "1.5", "stop": "STOP"}))
    assert sent_params(upstream) == {"temperature": 1.5, "stop": ["STOP"]}
    assert stored_params(app, url) == {"temperature": 1.5, "stop": ["STOP"]}


def test_the_new_chat_page_offers_the_default_settings(make_app, monkeypatch):
    monkeypatch.setenv("REGOLO_MAX_TOKENS", "512")
    page = make_app().test_client().get("/").get_data(as_text=True)
    assert 'id="new-chat-settings"' in page and 'value="512"' in page


BAD_VALUES = [
    ("temperature", "2.5", "Temperature must be a number from 0 to 2."),
    ("temperature", "hot", "Temperature must be a number, not “hot”."),
    ("temperature", "nan", "Temperature must be a number from 0 to 2."),
    ("top_p", "1.01", "Top p must be a number from 0 to 1."),
    ("top_p", "-0.1", "Top p must be a number from 0 to 1."),
    ("max_tokens", "0", "Max tokens must be a whole number from 1 to 1,000,000."),
    ("max_tokens", "1000001", "Max tokens must be a whole number from 1 to 1,000,000."),
    ("max_tokens", "1.5", "Max tokens must be a whole number, not “1.5”."),
    ("presence_penalty", "-2.5", "Presence penalty must be a number from -2 to 2."),
    ("frequency_penalty", "3", "Frequency penalty must be a number from -2 to 2."),
    ("frequency_penalty", "1e400", "Frequency penalty must be a number from -2 to 2."),
    ("seed", "4.2", "Seed must be a whole number, not “4.2”."),
    ("seed", str(2**64), "Seed must be a whole number from"),
    ("stop", "a\nb\nc\nd\ne", "At most 4 stop sequences, one per line (there are 5)."),
    ("stop", "x" * 101, "A stop sequence can be at most 100 characters long."),
]


@pytest.mark.parametrize("field, value, message", BAD_VALUES)
def test_a_bad_setting_is_refused_next_to_its_field_with_htmx(app, client, upstream,
                                                               field, value, message):
    url = start_chat(client, "Hi")
    client.post(f"{url}/settings", data=VALID)
    response = client.post(f"{url}/settings", data=VALID | {field: value},
                           headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<nav" not in html and html.lstrip().startswith('<form class="settings" id="settings"')
    error = html.split(f'id="param-{field}-error">')[1].split("</p>")[0]
    assert message in text_of(error)
    assert f'aria-describedby="param-{field}-error"' in html
    assert stored_params(app, url) == VALID_SENT  # nothing of the refused form is kept
    client.post(f"{url}/messages", data={"content": "Again"})
    assert sent_params(upstream) == VALID_SENT


@pytest.mark.parametrize("field, value, message", BAD_VALUES)
def test_a_bad_setting_is_refused_on_the_page_keeping_what_was_typed(
        app, client, upstream, field, value, message):
    url = start_chat(client, "Hi")
    response = client.post(f"{url}/settings", data=VALID | {field: value})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<nav" in html and message in text_of(html)
    assert 'id="settings-panel" aria-label' in html  # no popover: shown open, with the error
    other = "max_tokens" if field == "seed" else "seed"
    assert f'value="{VALID[other]}"' in html  # the other fields keep what was typed
    assert (f">{value}</textarea>" if field == "stop" else f'value="{value}"') in html
    assert stored_params(app, url) is None
    assert len(upstream.chat_requests) == 1


@pytest.mark.parametrize("field, value, message", BAD_VALUES[:4])
def test_a_new_chat_with_a_bad_setting_sends_nothing(app, client, upstream,
                                                      field, value, message):
    form = {"content": "Kept question", "system_prompt": "Kept prompt"} | BLANK
    response = client.post("/c", data=form | {field: value})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in text_of(html) and "Kept question" in html and "Kept prompt" in html
    assert upstream.chat_requests == [] and messages_of(app) == []

    response = client.post("/c", data=form | {field: value}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#new-chat-settings"
    assert message in text_of(response.get_data(as_text=True))
    assert upstream.chat_requests == []


def test_settings_of_another_owner_are_not_found(make_app, upstream):
    app = make_app()
    url = start_chat(app.test_client(), "Hi")
    stranger = app.test_client()
    assert stranger.post(f"{url}/settings", data=VALID).status_code == 404
    assert stored_params(app, url) is None
