// Small behaviours on top of htmx: Enter to send, reset after sending, one reply at a time.
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
    // Only a sent message clears the box: a refusal (409, 422, 429) keeps what was typed.
    var sent = event.detail.xhr && event.detail.xhr.status < 300;
    if (form.matches && form.matches("form.composer") && sent) {
      form.querySelector("textarea[name=content]").value = "";
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
    if (composer() && document.querySelector(".msg")) scrollToEnd();
    showCopyButtons(document);
  });

  // Copy buttons (<button data-copy="input-id" hidden>) appear where the clipboard works;
  // without them the link is still in a readonly input.
  function showCopyButtons(root) {
    if (!navigator.clipboard || !root.querySelectorAll) return;
    root.querySelectorAll("button[data-copy]").forEach(function (button) { button.hidden = false; });
  }

  document.addEventListener("htmx:load", function (event) { showCopyButtons(event.detail.elt); });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) return;
    var input = document.getElementById(button.dataset.copy);
    var status = button.parentNode.querySelector("[role=status]");
    function say(text) { if (status) status.textContent = text; }
    navigator.clipboard.writeText(input.value).then(function () { say("Link copied."); },
      function () { input.select(); say("Copy failed; the link is selected, copy it by hand."); });
  });
})();
