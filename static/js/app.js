// Small behaviours on top of htmx: Enter to send, reset after sending, one reply at a time,
// copy buttons on messages and code blocks.
(function () {
  "use strict";

  function replyActive() { return document.querySelector("[data-active]") !== null; }

  // Sending, editing, regenerating and switching versions are off while a reply is being
  // written (the server refuses them anyway).
  function syncIdleButtons() {
    var busy = replyActive();
    document.querySelectorAll("form.composer, form[data-needs-idle]").forEach(function (form) {
      var button = form.querySelector("button[type=submit]");
      if (button && !form.classList.contains("htmx-request")) button.disabled = busy;
    });
  }

  function scrollToEnd() { window.scrollTo(0, document.body.scrollHeight); }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    if (!target.matches || !target.matches(
      "form.composer textarea[name=content], form[data-enter-sends] textarea")) return;
    event.preventDefault();
    var button = target.form.querySelector("button[type=submit]");
    if (!button || !button.disabled) target.form.requestSubmit();
  });

  // The composer is emptied only when the message was accepted: a refused send (409, 422,
  // 413 are swapped as inline errors, so htmx counts them as successful) keeps the text.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    var accepted = event.detail.successful && event.detail.xhr.status < 300;
    if (form.matches && form.matches("form.composer") && accepted) {
      form.querySelector("textarea[name=content]").value = "";
      var error = document.getElementById("form-error");
      if (error) error.textContent = "";
      scrollToEnd();
    }
  });

  // Copy buttons: added to finished messages and their code blocks when content arrives.
  function copyButton(kind, label) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.dataset.copy = kind;
    button.setAttribute("aria-label", label);
    button.textContent = "Copy";
    return button;
  }

  function within(root, selector) {
    var found = Array.prototype.slice.call(root.querySelectorAll(selector));
    return root.matches(selector) ? [root].concat(found) : found;
  }

  function addCopyButtons(root) {
    if (!navigator.clipboard || !root.querySelectorAll) return;
    within(root, "article.msg").forEach(function (message) {
      if (message.hasAttribute("data-active") || message.querySelector(":scope > .copy")) return;
      message.querySelectorAll(".prose pre").forEach(function (pre) {
        var block = document.createElement("div");
        block.className = "code-block";
        pre.parentNode.insertBefore(block, pre);
        block.appendChild(pre);
        block.appendChild(copyButton("code", "Copy code"));
      });
      message.appendChild(copyButton("message", "Copy message"));
    });
  }

  // The visible text of a message or code block, without the copy buttons' own labels.
  function textToCopy(button) {
    if (button.dataset.copy === "code") {
      return button.parentNode.querySelector("pre").innerText;
    }
    var message = button.closest("article.msg");
    message.classList.add("copying");
    var text = message.querySelector(".prose").innerText;
    message.classList.remove("copying");
    return text;
  }

  function announce(text) {
    var status = document.getElementById("copy-status");
    if (!status) {
      status = document.createElement("p");
      status.id = "copy-status";
      status.className = "visually-hidden";
      status.setAttribute("role", "status");
      document.body.appendChild(status);
    }
    status.textContent = text;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button.copy");
    if (!button) return;
    navigator.clipboard.writeText(textToCopy(button)).then(function () {
      button.textContent = "Copied";
      announce("Copied to the clipboard.");
      window.setTimeout(function () { button.textContent = "Copy"; }, 1500);
    }, function () {
      announce("Copying failed; select the text and copy it instead.");
    });
  });

  document.addEventListener("htmx:load", function (event) { addCopyButtons(event.target); });

  ["htmx:afterSettle", "htmx:sseClose", "htmx:load"].forEach(function (name) {
    document.addEventListener(name, syncIdleButtons);
  });

  document.addEventListener("DOMContentLoaded", function () {
    var history = document.querySelector("details.history");
    if (history && window.matchMedia("(max-width: 700px)").matches) history.open = false;
    syncIdleButtons();
    addCopyButtons(document.body);
    if (document.querySelector(".msg")) scrollToEnd();
  });
})();
