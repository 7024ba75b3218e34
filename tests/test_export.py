"""Export: a conversation downloaded as Markdown and as JSON (format regolo-chat/2)."""

from __future__ import annotations

import json
from datetime import datetime

from harness.fake_upstream import Reply
from tests.conftest import start_chat

USAGE = {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}


def test_json_export_has_roles_contents_model_timestamps_and_usage(client, upstream):
    upstream.enqueue(Reply("Counted.", usage=USAGE))
    url = start_chat(client, "Count", system_prompt="Be exact", model="Qwen3-8B")
    response = client.get(f"{url}/export.json")

    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Content-Disposition"] == 'attachment; filename="Count.json"'
    data = json.loads(response.get_data(as_text=True))
    assert list(data) == ["format", "id", "title", "model", "params", "created_at",
                          "updated_at", "system_prompt", "shown", "messages"]
    assert data["format"] == "regolo-chat/2" and data["id"] == url.rsplit("/", 1)[1]
    assert (data["title"], data["model"], data["system_prompt"]) == (
        "Count", "Qwen3-8B", "Be exact")
    user, reply = data["messages"]
    assert user == {"number": 1, "parent": None, "role": "user", "content": "Count",
                    "reasoning": None, "model": None, "status": "complete",
                    "finish_reason": None, "error": None, "created_at": user["created_at"],
                    "usage": None, "images": [], "documents": []}
    assert data["shown"] == reply["number"] == 2 and reply["parent"] == 1
    assert reply["role"] == "assistant" and reply["content"] == "Counted."
    assert reply["model"] == "Qwen3-8B" and reply["usage"] == USAGE
    for moment in (data["created_at"], data["updated_at"], user["created_at"]):
        assert datetime.fromisoformat(moment).utcoffset().total_seconds() == 0


def test_json_export_without_a_system_prompt_says_null(client):
    url = start_chat(client, "Hi")
    assert json.loads(client.get(f"{url}/export.json").data)["system_prompt"] is None


def test_markdown_export_reads_as_the_conversation(client):
    url = start_chat(client, "What is **2+2**?", system_prompt="Answer in Italian")
    response = client.get(f"{url}/export.md")
    text = response.get_data(as_text=True)

    assert response.mimetype == "text/markdown"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    assert text.startswith("# What is **2+2**?\n")
    assert "## System prompt\n\nAnswer in Italian" in text
    assert "## You\n\nWhat is **2+2**?" in text
    assert "## Assistant (Llama-3.3-70B-Instruct)\n\nYou said: What is **2+2**?" in text


def test_export_filenames_are_safe(client):
    url = start_chat(client, "Hi")
    client.post(f"{url}/rename", data={"title": '../../etc/passwd "x"; rm'})
    disposition = client.get(f"{url}/export.md").headers["Content-Disposition"]
    assert disposition == 'attachment; filename="etc_passwd_x_rm.md"'
    client.post(f"{url}/rename", data={"title": "日本語"})
    disposition = client.get(f"{url}/export.json").headers["Content-Disposition"]
    assert disposition == 'attachment; filename="conversation.json"'
