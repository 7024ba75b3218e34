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

  function nearEnd() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
  }

  // A streaming reply keeps the page at its end, unless the reader scrolled up.
  var followEnd = false;
  document.addEventListener("htmx:sseBeforeMessage", function () { followEnd = nearEnd(); });
  document.addEventListener("htmx:load", function (event) {
    var elt = event.detail.elt;
    if (followEnd && elt.closest && elt.closest(".msg")) scrollToEnd();
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
    if (form.matches && form.matches("form.composer") && event.detail.successful) {
      form.querySelector("textarea[name=content]").value = "";
      var error = document.getElementById("form-error");
      if (error) error.textContent = "";
      scrollToEnd();
    }
  });

  // Screen readers hear "writing" once when a reply starts and the reply once when it
  // ends, through the page's polite #reply-status region; the chunks in between are quiet.
  var followed = {};

  function announce(text) {
    var region = document.getElementById("reply-status");
    if (region) region.textContent = text;
  }

  function finishedText(article) {
    var body = article.querySelector(".msg-body").cloneNode(true);
    body.querySelectorAll("details, .usage").forEach(function (node) { node.remove(); });
    return "Assistant replied: " + body.textContent.replace(/\s+/g, " ").trim();
  }

  function followReply(article) {
    if (!article.matches || !article.matches("article.msg.assistant")) return;
    if (article.hasAttribute("data-active")) {
      followed[article.id] = true;
      announce("Assistant is writing…");
    } else if (followed[article.id]) {
      delete followed[article.id];
      announce(finishedText(article));
    }
  }

  document.addEventListener("htmx:load", function (event) { followReply(event.detail.elt); });

  ["htmx:afterSettle", "htmx:sseClose", "htmx:load"].forEach(function (name) {
    document.addEventListener(name, syncSendButton);
  });

  document.addEventListener("DOMContentLoaded", function () {
    var history = document.querySelector("details.history");
    if (history && window.matchMedia("(max-width: 700px)").matches) history.open = false;
    syncSendButton();
    document.querySelectorAll("article[data-active]").forEach(followReply);
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
