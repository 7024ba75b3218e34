// Small behaviours on top of htmx: Enter to send, reset after sending, one reply at a time,
// images dropped on or pasted into the composer.
(function () {
  "use strict";

  function composer() { return document.querySelector("form.composer"); }

  function replyActive() { return document.querySelector("[data-active]") !== null; }

  // The send button is off while a reply is being written (the server refuses anyway).
  function syncSendButton() {
    var form = composer();
    if (!form) return;
    var button = form.querySelector("button[type=submit]");
    if (button && !form.classList.contains("htmx-request")) button.disabled = replyActive();
  }

  function scrollToEnd() { window.scrollTo(0, document.body.scrollHeight); }

  function imageInput(form) { return form.querySelector("input[type=file][name=images]"); }

  // Add the image files among `files` to the composer's file input; true if there were any.
  function addImages(form, files) {
    var input = imageInput(form);
    var images = Array.prototype.filter.call(files || [], function (file) {
      return file.type.indexOf("image/") === 0;
    });
    if (!input || !images.length) return false;
    var list = new DataTransfer();
    Array.prototype.slice.call(input.files).concat(images).forEach(function (file) {
      list.items.add(file);
    });
    input.files = list.files;
    return true;
  }

  function composerOf(event) { return event.target.closest && event.target.closest("form.composer"); }

  document.addEventListener("paste", function (event) {
    var form = composerOf(event);
    if (form && event.clipboardData && addImages(form, event.clipboardData.files)) {
      event.preventDefault();
    }
  });

  document.addEventListener("dragover", function (event) {
    if (composerOf(event)) event.preventDefault();
  });

  document.addEventListener("drop", function (event) {
    var form = composerOf(event);
    if (form && addImages(form, event.dataTransfer.files)) event.preventDefault();
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    if (!target.matches || !target.matches("form.composer textarea[name=content]")) return;
    event.preventDefault();
    var button = target.form.querySelector("button[type=submit]");
    if (!button || !button.disabled) target.form.requestSubmit();
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    // A refusal (409, 413, 422) is swapped in as a message, so "successful" is true for
    // it too: only a 2xx means the message was sent.
    var sent = event.detail.xhr && event.detail.xhr.status < 300;
    if (form.matches && form.matches("form.composer") && sent) {
      form.querySelector("textarea[name=content]").value = "";
      var images = imageInput(form);
      if (images) images.value = "";
      var error = document.getElementById("form-error");
      if (error) error.textContent = "";
      scrollToEnd();
    }
  });

  ["htmx:afterSettle", "htmx:sseClose", "htmx:load"].forEach(function (name) {
    document.addEventListener(name, syncSendButton);
  });

  document.addEventListener("DOMContentLoaded", function () {
    var history = document.querySelector("details.history");
    if (history && window.matchMedia("(max-width: 700px)").matches) history.open = false;
    syncSendButton();
    if (document.querySelector(".msg")) scrollToEnd();
  });
})();
