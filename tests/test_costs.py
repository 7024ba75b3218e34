"""Model info, prices and costs, the model that answered, and the reply parameters that go
with them (reasoning effort, no substitute model), against the fake upstream."""

from __future__ import annotations

import pytest

from harness.fake_upstream import Reply
from tests.conftest import messages_of, start_chat, text_of
from webapp.config import ConfigError, load
from webapp.conversations.pricing import parse_prices

MODEL = "Llama-3.3-70B-Instruct"


def usage(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def info(window: int | None = None, input_price: float | None = None,
         output_price: float | None = None) -> dict:
    """A model's LiteLLM model_info with only the fields given."""
    fields = {"max_input_tokens": window, "input_cost_per_token": input_price,
              "output_cost_per_token": output_price, "mode": "chat"}
    return {name: value for name, value in fields.items() if value is not None}


def meter_text(page: str) -> str:
    return text_of(page.split('id="context-meter"')[1].split("</div>")[0])


@pytest.mark.parametrize("paths", [("/model/info",), ("/v1/model/info",)])
def test_the_window_comes_from_model_info_at_the_root_or_under_v1(client, upstream, paths):
    upstream.model_info_paths = paths
    upstream.model_info = {MODEL: info(window=1000)}
    upstream.enqueue(Reply("Hi.", usage=usage(100, 20)))
    url = start_chat(client, "Hello")
    page = client.get(url).get_data(as_text=True)
    assert "Context: 120 of 1,000 tokens (12 %)" in meter_text(page)
    assert any(request.path in paths for request in upstream.requests)


def test_without_model_info_or_a_setting_the_window_is_unknown_and_nothing_else_is_lost(
        client, upstream):
    upstream.enqueue(Reply("Hi.", usage=usage(100, 20)))
    url = start_chat(client, "Hello")
    page = client.get(url).get_data(as_text=True)
    assert "Context: 120 tokens; this model's window is unknown" in meter_text(page)
    assert '<option value="Qwen3-8B"' in page  # the model list still came
    assert "This chat" not in page and "This month" not in page  # no price, no cost


def test_the_window_setting_stands_in_and_text_added_since_is_about(make_app, upstream):
    client = make_app(MODEL_CONTEXT_WINDOWS={MODEL: 2000}).test_client()
    upstream.enqueue(Reply("Hi.", usage=usage(100, 20)), Reply("", status=400))
    url = start_chat(client, "Hello")
    client.post(f"{url}/messages", data={"content": "x" * 400})  # fails: no usage since
    assert "Context: about 220 of 2,000 tokens (11 %)" in meter_text(
        client.get(url).get_data(as_text=True))


def test_settings_for_windows_and_prices_are_checked_at_startup(monkeypatch, tmp_path):
    monkeypatch.setenv("MODEL_PRICES", "A=0.6/2.4 EUR, B=1/2 usd")
    monkeypatch.setenv("MODEL_CONTEXT_WINDOWS", "A=128000")
    settings = load(str(tmp_path), testing=True)
    assert settings["MODEL_PRICES"]["B"].currency == "USD"
    assert settings["MODEL_PRICES"]["A"].output_per_token == pytest.approx(2.4e-6)
    assert settings["MODEL_CONTEXT_WINDOWS"] == {"A": 128000}
    monkeypatch.setenv("MODEL_PRICES", "A=0.6 EUR")
    with pytest.raises(ConfigError, match="MODEL_PRICES: the price of A must look like"):
        load(str(tmp_path), testing=True)
    monkeypatch.setenv("MODEL_PRICES", "")
    monkeypatch.setenv("MODEL_CONTEXT_WINDOWS", "A=lots")
    with pytest.raises(ConfigError, match="MODEL_CONTEXT_WINDOWS: the window of A"):
        load(str(tmp_path), testing=True)


def test_costs_come_from_published_prices_and_keep_the_price_of_their_time(client, app,
                                                                          upstream):
    upstream.model_info = {MODEL: info(100_000, input_price=1e-6, output_price=2e-6)}
    upstream.enqueue(Reply("Hi.", usage=usage(1000, 500)))
    url = start_chat(client, "Hello")
    reply = messages_of(app)[-1]
    assert (reply.input_price, reply.output_price, reply.price_currency) == (1e-6, 2e-6, "USD")
    page = client.get(url).get_data(as_text=True)
    assert "1000 prompt + 500 reply tokens · 0.0020 USD" in text_of(page)
    assert "This chat: 0.0020 USD · This month: 0.0020 USD" in meter_text(page)

    upstream.model_info = {MODEL: info(100_000, input_price=1e-3, output_price=1e-3)}
    upstream.enqueue(Reply("Again.", usage=usage(10, 10)))
    client.post(f"{url}/messages", data={"content": "More"})
    page = client.get(url).get_data(as_text=True)
    assert "1000 prompt + 500 reply tokens · 0.0020 USD" in text_of(page)  # unchanged
    assert "10 prompt + 10 reply tokens · 0.0200 USD" in text_of(page)
    assert "This chat: 0.0220 USD · This month: 0.0220 USD" in meter_text(page)


def test_the_month_counts_every_conversation_of_this_browser_only(make_app, upstream):
    app = make_app(MODEL_PRICES=parse_prices(f"{MODEL}=0.6/2.4 EUR"))
    client, stranger = app.test_client(), app.test_client()
    upstream.enqueue(Reply("A.", usage=usage(1_000_000, 0)), Reply("B.", usage=usage(0, 1_000_000)),
                     Reply("C.", usage=usage(1_000_000, 1_000_000)))
    start_chat(client, "One")
    url = start_chat(client, "Two")
    start_chat(stranger, "Elsewhere")
    page = client.get(url).get_data(as_text=True)
    assert "This chat: 2.40 EUR · This month: 3.00 EUR" in meter_text(page)


def test_no_price_known_means_no_cost_shown(client, upstream):
    upstream.model_info = {MODEL: info(1000, input_price=1e-6)}  # half a price is none
    upstream.enqueue(Reply("Hi.", usage=usage(1000, 500)))
    page = client.get(start_chat(client, "Hello")).get_data(as_text=True)
    assert "USD" not in page and "This chat" not in page


def test_the_model_that_answered_is_stored_and_shown_when_it_differs(client, app, upstream):
    upstream.model_info = {MODEL: info(None, 1e-6, 1e-6), "Qwen3-8B": info(None, 5e-6, 5e-6)}
    upstream.enqueue(Reply("Same.", usage=usage(10, 10)))
    url = start_chat(client, "Hello")
    assert messages_of(app)[-1].answered_model == MODEL
    assert "answered by" not in client.get(url).get_data(as_text=True)

    upstream.enqueue(Reply("Fallback.", model="Qwen3-8B", usage=usage(1000, 1000)))
    client.post(f"{url}/messages", data={"content": "Again"})
    reply = messages_of(app)[-1]
    assert (reply.model, reply.answered_model, reply.input_price) == (MODEL, "Qwen3-8B", 5e-6)
    page = text_of(client.get(url).get_data(as_text=True))
    assert f"Assistant · {MODEL} · answered by Qwen3-8B" in page
    assert "1000 prompt + 1000 reply tokens · 0.0100 USD" in page
    exported = client.get(f"{url}/export.json").get_json()["messages"]
    assert [m["model"] for m in exported] == [None, MODEL, None, "Qwen3-8B"]
    assert "## Assistant (Qwen3-8B)" in client.get(f"{url}/export.md").get_data(as_text=True)


SETTINGS = {"temperature": "", "top_p": "", "max_tokens": "", "presence_penalty": "",
            "frequency_penalty": "", "seed": "", "stop": ""}


def test_no_substitute_and_reasoning_effort_are_sent_only_when_set(client, upstream):
    url = start_chat(client, "Hello")
    assert not {"disable_fallbacks", "reasoning_effort"} & set(upstream.chat_requests[-1].json)
    assert client.post(f"{url}/settings", data=SETTINGS | {
        "disable_fallbacks": "1", "reasoning_effort": "high"}).status_code == 303
    client.post(f"{url}/messages", data={"content": "Again"})
    body = upstream.chat_requests[-1].json
    assert body["disable_fallbacks"] is True and body["reasoning_effort"] == "high"
    page = client.get(url).get_data(as_text=True)
    assert 'name="disable_fallbacks" value="1" checked' in page
    assert '<option value="high" selected>' in page
    client.post(f"{url}/settings", data=SETTINGS)
    client.post(f"{url}/messages", data={"content": "Third"})
    assert not {"disable_fallbacks", "reasoning_effort"} & set(upstream.chat_requests[-1].json)


def test_an_unknown_reasoning_effort_is_refused_with_a_sentence(client, upstream):
    url = start_chat(client, "Hello")
    response = client.post(f"{url}/settings", data=SETTINGS | {"reasoning_effort": "max"})
    assert response.status_code == 422
    assert "Reasoning effort must be low, medium or high." in response.get_data(as_text=True)


@pytest.mark.parametrize("reply, sentence", [
    (Reply(status=429, retry_after="600"),
     f"Model {MODEL} did not answer, and this conversation does not let the server "
     "substitute another model"),
    (Reply(status=400, error_message="disable_fallbacks: extra inputs are not permitted"),
     "This server does not accept “don't substitute another model”; turn it off in Settings."),
])
def test_a_refusal_without_a_substitute_says_so(client, app, upstream, reply, sentence):
    url = start_chat(client, "Hello")
    client.post(f"{url}/settings", data=SETTINGS | {"disable_fallbacks": "1"})
    upstream.enqueue(reply)
    client.post(f"{url}/messages", data={"content": "Again"})
    assert messages_of(app)[-1].error.startswith(sentence)
    assert sentence in text_of(client.get(url).get_data(as_text=True))


def test_thinking_time_runs_from_the_first_reasoning_to_the_first_content(client, app,
                                                                         upstream):
    # Four gaps of 0.05 s from the first reasoning token to the content, after a second
    # before the answer starts that is not thinking. Bounds with room for a busy machine.
    upstream.enqueue(Reply("Answer.", reasoning="one two three four", token_delay=0.05,
                           delay=1.0))
    start_chat(client, "Think")
    thought = messages_of(app)[-1].thinking_seconds
    assert 0.15 <= thought < 1.0
    upstream.enqueue(Reply("Plain."))
    start_chat(client, "Don't")
    assert messages_of(app)[-1].thinking_seconds is None


def test_model_info_is_cached_like_the_model_list_and_nonsense_in_it_is_ignored(
        make_app, upstream):
    upstream.model_info = {MODEL: {"max_input_tokens": "lots", "input_cost_per_token": -1,
                                   "output_cost_per_token": True}}
    client = make_app(MODELS_CACHE_SECONDS=300).test_client()
    url = start_chat(client, "Hello")
    client.get(url)
    page = client.get(url).get_data(as_text=True)
    assert "this model's window is unknown" in meter_text(page) and "This chat" not in page
    asked = [r for r in upstream.requests if r.path.endswith("/model/info")]
    assert len(asked) == 1


def test_continuing_a_substituted_reply_keeps_its_model_price_and_thinking_time(
        client, app, upstream):
    upstream.model_info = {MODEL: info(None, 1e-6, 1e-6), "Qwen3-8B": info(None, 5e-6, 5e-6)}
    upstream.enqueue(Reply("Cut", reasoning="hmm", model="Qwen3-8B", finish_reason="length",
                           usage=usage(10, 10), token_delay=0.02))
    url = start_chat(client, "Hello")
    cut = messages_of(app)[-1]
    assert cut.thinking_seconds is not None
    upstream.enqueue(Reply(" off.", model="Qwen3-8B", usage=usage(20, 2)))
    client.post(f"{url}/messages/{cut.id}/continue")
    reply = messages_of(app)[-1]
    assert reply.content == "Cut off." and reply.answered_model == "Qwen3-8B"
    assert reply.thinking_seconds == cut.thinking_seconds
    assert (reply.input_price, reply.total_tokens) == (5e-6, 42)
