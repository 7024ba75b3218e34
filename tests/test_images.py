"""Images for vision models: upload, scaling, storage, replay as content parts, access, refusals."""

from __future__ import annotations

import base64
import io
from dataclasses import replace

import pytest
from PIL import Image
from sqlalchemy.orm import undefer

from harness.fake_upstream import Reply
from tests.conftest import conversation_url, messages_of, start_chat, text_of
from webapp.conversations.models import Attachment, data_url
from webapp.extensions import db


def image_bytes(width: int = 40, height: int = 30, fmt: str = "PNG", color="teal",
                **save) -> bytes:
    """An image made in memory."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, fmt, **save)
    return out.getvalue()


def noisy_png(width: int, height: int) -> bytes:
    """A PNG that does not compress well."""
    out = io.BytesIO()
    Image.effect_noise((width, height), 64).save(out, "PNG")
    return out.getvalue()


def upload(data: bytes, name: str = "photo.png", mimetype: str = "image/png"):
    """A file field for the test client (read once: make a new one for each request)."""
    return (io.BytesIO(data), name, mimetype)


def image_parts(message: dict) -> list[Image.Image]:
    """The images of a sent message's content parts, decoded from their data URLs."""
    images = []
    for part in message["content"][1:]:
        assert part["type"] == "image_url"
        header, encoded = part["image_url"]["url"].split(",", 1)
        assert header.startswith("data:image/") and header.endswith(";base64")
        image = Image.open(io.BytesIO(base64.b64decode(encoded)))
        image.mime = header[5:-7]
        images.append(image)
    return images


def attachments_of(app) -> list[Attachment]:
    with app.app_context():
        return list(db.session.scalars(db.select(Attachment).order_by(Attachment.id)
                                       .options(undefer(Attachment.data))))


def test_images_are_sent_as_content_parts_on_the_first_turn(client, app, upstream):
    start_chat(client, "What is this?", images=[upload(image_bytes(40, 30)),
                                                upload(image_bytes(20, 10, "JPEG"), "b.jpg")])
    user = upstream.sent_messages(0)[0]
    assert user["role"] == "user"
    assert user["content"][0] == {"type": "text", "text": "What is this?"}
    images = image_parts(user)
    assert [(i.mime, i.size) for i in images] == [("image/png", (40, 30)),
                                                  ("image/jpeg", (20, 10))]
    stored = attachments_of(app)
    assert [(a.content_type, a.width, a.height) for a in stored] == [
        ("image/png", 40, 30), ("image/jpeg", 20, 10)]
    assert all(a.message_id == messages_of(app)[0].id for a in stored)
    assert stored[0].byte_size == len(stored[0].data)


def test_images_are_replayed_the_same_way_on_later_turns(client, upstream):
    url = start_chat(client, "First", images=[upload(image_bytes(40, 30))])
    client.post(f"{url}/messages", data={"content": "Second",
                                         "images": [upload(image_bytes(8, 8, "WEBP"), "c.webp")]})
    client.post(f"{url}/messages", data={"content": "Third"})
    first, _, second, _, third = upstream.sent_messages(-1)
    assert first == upstream.sent_messages(0)[0]
    assert [i.mime for i in image_parts(second)] == ["image/webp"]
    assert third == {"role": "user", "content": "Third"}  # no images: plain text


def test_a_large_image_is_scaled_down_once_at_upload(client, app, upstream):
    start_chat(client, "Big", images=[upload(image_bytes(4000, 1000, "JPEG"), "big.jpg")])
    assert [i.size for i in image_parts(upstream.sent_messages(0)[0])] == [(2048, 512)]
    stored = attachments_of(app)[0]
    assert (stored.width, stored.height, stored.content_type) == (2048, 512, "image/jpeg")


def test_metadata_is_stripped_and_orientation_applied(client, app, upstream):
    exif = Image.Exif()
    exif[0x0110] = "Secret Camera"  # Model
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    start_chat(client, "Photo", images=[upload(image_bytes(60, 20, "JPEG", exif=exif.tobytes()),
                                               "p.jpg")])
    stored = attachments_of(app)[0]
    with Image.open(io.BytesIO(stored.data)) as image:
        assert image.size == (20, 60)
        assert not image.getexif() and "exif" not in image.info
    assert b"Secret Camera" not in stored.data


def test_a_gif_is_stored_as_a_png_of_its_first_frame(client, app, upstream):
    frames = [Image.new("P", (16, 16), i) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    start_chat(client, "Anim", images=[upload(out.getvalue(), "a.gif", "image/gif")])
    assert attachments_of(app)[0].content_type == "image/png"


def test_thumbnails_are_shown_and_served_to_the_owner(client, app, upstream):
    url = start_chat(client, "Look", images=[upload(image_bytes(40, 30))])
    attachment = attachments_of(app)[0]
    src = f"{url}/attachments/{attachment.id}"
    page = client.get(url).get_data(as_text=True)
    assert f'<img src="{src}" width="40" height="30"' in page
    assert 'alt="Attached image 1 of 1, 40×30"' in page
    response = client.get(src)
    assert response.status_code == 200
    assert response.mimetype == "image/png" and response.data == attachment.data
    assert response.headers["Content-Disposition"] == "inline"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "max-age=31536000" in response.headers["Cache-Control"]
    assert "private" in response.headers["Cache-Control"]


def test_htmx_send_shows_the_thumbnails_in_the_new_turn(client, app, upstream):
    url = start_chat(client, "Hi")
    response = client.post(f"{url}/messages", headers={"HX-Request": "true"},
                           data={"content": "See", "images": [upload(image_bytes())]})
    assert f'<img src="{url}/attachments/{attachments_of(app)[0].id}"' in response.get_data(
        as_text=True)


def test_attachments_are_not_found_for_another_owner_or_conversation(make_app, upstream):
    app = make_app()
    owner = app.test_client()
    url = start_chat(owner, "Mine", images=[upload(image_bytes())])
    other_url = start_chat(owner, "Other")
    attachment_id = attachments_of(app)[0].id
    stranger = app.test_client()
    assert stranger.get(f"{url}/attachments/{attachment_id}").status_code == 404
    stranger_url = start_chat(stranger, "Theirs")
    assert stranger.get(f"{stranger_url}/attachments/{attachment_id}").status_code == 404
    assert owner.get(f"{other_url}/attachments/{attachment_id}").status_code == 404
    assert owner.get(f"{url}/attachments/99999").status_code == 404


def test_deleting_a_conversation_deletes_its_images(client, app, upstream):
    url = start_chat(client, "Bye", images=[upload(image_bytes())])
    client.post(f"{url}/delete")
    assert attachments_of(app) == []


BAD_UPLOADS = [  # (name, bytes) of each file, and the sentence shown
    ([("notes.png", b"just some text")],
     "“notes.png” is not an image that can be sent: use PNG, JPEG, WebP or GIF."),
    ([("old.bmp", image_bytes(fmt="BMP"))], "“old.bmp” is not an image that can be sent"),
    ([("cut.png", image_bytes()[:50])], "“cut.png” is not an image that can be sent"),
    ([("noise.png", noisy_png(400, 400))],
     "“noise.png” is larger than 64 KB, the limit for one image."),
    ([("photo.png", image_bytes())] * 3,
     "A message can carry at most 2 images; you attached 3."),
    ([("wide.png", image_bytes(2000, 600))],
     "“wide.png” has more than 1 megapixels, the limit for one image. Scale it down"),
]


@pytest.fixture
def small_limits(make_app):
    return make_app(MAX_IMAGES=2, MAX_IMAGE_BYTES=64 * 1024, MAX_IMAGE_PIXELS=1_000_000)


@pytest.mark.parametrize("files, sentence", BAD_UPLOADS)
def test_a_bad_image_is_refused_keeping_the_text(small_limits, upstream, files, sentence):
    client = small_limits.test_client()
    url = start_chat(client, "Hi")
    images = [upload(data, name) for name, data in files]
    response = client.post(f"{url}/messages", data={"content": "My long question",
                                                    "images": images})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert sentence in text_of(html)
    assert ">My long question</textarea>" in html
    assert len(upstream.chat_requests) == 1 and len(messages_of(small_limits)) == 2


@pytest.mark.parametrize("files, sentence", BAD_UPLOADS)
def test_a_bad_image_is_refused_inline_with_htmx(small_limits, upstream, files, sentence):
    client = small_limits.test_client()
    images = [upload(data, name) for name, data in files]
    response = client.post("/c", data={"content": "Hi", "images": images},
                           headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#form-error"
    assert sentence in text_of(response.get_data(as_text=True))
    assert upstream.chat_requests == [] and messages_of(small_limits) == []


def test_a_text_only_model_refusing_images_gets_a_clear_sentence(client, app, upstream):
    upstream.enqueue(Reply(status=400, error_message="litellm.BadRequestError: "
                           "this model does not support image inputs"))
    url = start_chat(client, "Describe this", images=[upload(image_bytes())])
    page = client.get(url).get_data(as_text=True)
    assert ("Model Llama-3.3-70B-Instruct does not accept images; pick a vision model or "
            "remove the images.") in text_of(page)
    assert "Describe this" in text_of(page) and ">Retry</button>" in page
    assert "does not support image inputs" in messages_of(app)[-1].error_detail


def test_the_request_size_limit_fits_the_images(app):
    config = app.config
    assert config["MAX_CONTENT_LENGTH"] > config["MAX_IMAGES"] * config["MAX_IMAGE_BYTES"]
    assert config["MAX_IMAGES"] == 4 and config["MAX_IMAGE_BYTES"] == 10 * 1024 * 1024


def test_the_composer_is_a_multipart_form_with_an_image_picker(client):
    url = conversation_url(client.post("/c", data={"content": "Hi"}))
    for page in (client.get("/"), client.get(url)):
        html = page.get_data(as_text=True)
        assert 'enctype="multipart/form-data"' in html
        assert '<input id="images" name="images" type="file" multiple' in html


def test_a_request_over_the_size_limit_is_refused_inline(make_app, upstream):
    client = make_app(MAX_CONTENT_LENGTH=50_000).test_client()
    url = start_chat(client, "Hi")
    data = {"content": "Kept", "images": [upload(noisy_png(400, 400), "huge.png")]}
    response = client.post(f"{url}/messages", data=data, headers={"HX-Request": "true"})
    assert response.status_code == 413 and response.headers["HX-Retarget"] == "#form-error"
    assert "more than 48.8 KB in all" in text_of(response.get_data(as_text=True))
    data["images"] = [upload(noisy_png(400, 400), "huge.png")]
    response = client.post(f"{url}/messages", data=data)
    assert response.status_code == 413 and "Too large" in response.get_data(as_text=True)
    assert len(upstream.chat_requests) == 1


def test_an_edited_message_keeps_its_images(client, app, upstream):
    url = start_chat(client, "What is this?", images=[upload(image_bytes(40, 30))])
    first = messages_of(app)[0].id
    client.post(f"{url}/messages/{first}/edit", data={"content": "And what colour?"})
    edited = upstream.sent_messages(-1)[0]
    assert edited["content"][0] == {"type": "text", "text": "And what colour?"}
    assert [i.size for i in image_parts(edited)] == [(40, 30)]
    assert [a.message_id for a in attachments_of(app)] == [first, messages_of(app)[2].id]
    versions = client.get(url).get_data(as_text=True)
    assert versions.count('alt="Attached image 1 of 1, 40×30"') == 1  # the shown branch


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_within_the_pixel_limit(make_app, upstream):
    # 6000×3000 is 18 megapixels; decoded at half scale (draft) it is 4.5, under the limit.
    app = make_app(MAX_IMAGE_PIXELS=5_000_000)
    client = app.test_client()
    start_chat(client, "Wide photo", images=[upload(image_bytes(6000, 3000, "JPEG"), "w.jpg")])
    stored = attachments_of(app)[0]
    assert (stored.width, stored.height, stored.content_type) == (2048, 1024, "image/jpeg")
    refused = client.post("/c", data={"content": "Same, as PNG",
                                      "images": [upload(image_bytes(6000, 3000), "w.png")]})
    assert refused.status_code == 422  # a PNG has no reduced decoding
    assert "“w.png” has more than 5 megapixels" in text_of(refused.get_data(as_text=True))
    assert len(attachments_of(app)) == 1


def test_a_large_png_reduced_in_strips_keeps_its_orientation_and_colours(client, app, upstream):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    source = Image.new("RGB", (4200, 1400), "teal")
    source.paste((200, 30, 30), (0, 0, 2100, 1400))  # left half red
    out = io.BytesIO()
    source.save(out, "PNG", exif=exif.tobytes())
    start_chat(client, "Sideways", images=[upload(out.getvalue(), "s.png")])
    stored = attachments_of(app)[0]
    with Image.open(io.BytesIO(stored.data)) as image:
        assert image.size == (stored.width, stored.height) == (683, 2048)
        assert image.getpixel((340, 100)) == (200, 30, 30)  # the left half is now on top
        assert image.getpixel((340, 1900)) == Image.new("RGB", (1, 1), "teal").getpixel((0, 0))


def test_an_image_over_the_stored_size_is_stored_as_a_smaller_jpeg(make_app, upstream):
    limit = 20 * 1024  # under what noise takes even as a JPEG: fewer pixels too
    app = make_app(MAX_STORED_IMAGE_BYTES=limit)
    noise = noisy_png(480, 360)  # under 500 KB: the test client spools larger bodies to a file
    assert len(noise) > 5 * limit
    start_chat(app.test_client(), "Noise", images=[upload(noise, "noise.png")])
    stored = attachments_of(app)[0]
    assert stored.content_type == "image/jpeg" and stored.byte_size <= limit
    assert stored.width < 480 and stored.width / stored.height == pytest.approx(4 / 3, rel=0.01)
    [sent] = image_parts(upstream.sent_messages(0)[0])
    assert (sent.mime, sent.size) == ("image/jpeg", (stored.width, stored.height))


def test_only_the_newest_images_that_fit_are_replayed_with_a_note(client, app, upstream):
    url = start_chat(client, "First", images=[upload(image_bytes(color=c)) for c in ("red", "blue")])
    for text, colours in (("Second", ("green", "gray")), ("Third", ("navy", "olive"))):
        client.post(f"{url}/messages", data={"content": text, "images": [
            upload(image_bytes(color=c)) for c in colours]})
    stored = attachments_of(app)
    urls = [data_url(a.content_type, a.data) for a in stored]
    # Room for the newest three images' data URLs, not a byte more.
    service = app.extensions["generation"]
    service.settings = replace(service.settings, max_upstream_image_bytes=sum(
        len(u) for u in urls[-3:]) + len(urls[2]) - 1)
    client.post(f"{url}/messages", data={"content": "Text only"})
    sent = upstream.chat_requests[-1].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant"] * 3 + ["user"]
    assert sent[0]["content"] == "First"  # both its images left out: plain text again
    assert sent[2]["content"] == [{"type": "text", "text": "Second"},
                                  {"type": "image_url", "image_url": {"url": urls[3]}}]
    assert sent[4]["content"] == [{"type": "text", "text": "Third"},
                                  {"type": "image_url", "image_url": {"url": urls[4]}},
                                  {"type": "image_url", "image_url": {"url": urls[5]}}]
    assert sent[6] == {"role": "user", "content": "Text only"}
    page = text_of(client.get(url).get_data(as_text=True))
    assert page.count("3 earlier images were not sent (size limit of one request).") == 1
    assert messages_of(app)[-1].images_left_out == 3 and messages_of(app)[1].images_left_out == 0


def test_a_message_s_own_images_past_the_bound_are_left_out_and_said(make_app, upstream):
    app = make_app(MAX_UPSTREAM_IMAGE_BYTES=0)
    client = app.test_client()
    url = start_chat(client, "Look", images=[upload(image_bytes())])
    assert upstream.sent_messages(0) == [{"role": "user", "content": "Look"}]
    assert "1 earlier image was not sent" in text_of(client.get(url).get_data(as_text=True))
