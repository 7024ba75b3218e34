// Small behaviours on top of htmx: Enter to send, reset after sending, one reply at a time,
// images dropped on or pasted into the composer, copy buttons on messages and code blocks.
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

  // htmx requests carry the CSRF token in a header; forms also post it as a field, and
  // this covers the elements that are not forms (the Delete link).
  document.addEventListener("htmx:configRequest", function (event) {
    var token = document.querySelector("input[name=csrf_token]");
    if (token) event.detail.headers["X-CSRFToken"] = token.value;
  });

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
      var images = imageInput(form);
      if (images) images.value = "";
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
    body.querySelectorAll("details, .usage, button").forEach(function (node) { node.remove(); });
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

  // Copy buttons. A share link's button (<button data-copy="input-id" hidden>) is shown
  // where the clipboard works; finished messages and their code blocks get buttons that
  // copy their visible text (data-copy-from="message" | "code").
  function copyButton(source, label) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.dataset.copyFrom = source;
    button.setAttribute("aria-label", label);
    button.textContent = "Copy";
    return button;
  }

  function within(root, selector) {
    var found = Array.prototype.slice.call(root.querySelectorAll(selector));
    return root.matches && root.matches(selector) ? [root].concat(found) : found;
  }

  function enableCopyButtons(root) {
    if (!navigator.clipboard || !root.querySelectorAll) return;
    within(root, "button[data-copy]").forEach(function (button) { button.hidden = false; });
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

  // The visible text of a code block or message, without the copy buttons' own labels.
  function textToCopy(button) {
    if (button.dataset.copyFrom === "code") return button.parentNode.querySelector("pre").innerText;
    var message = button.closest("article.msg");
    message.classList.add("copying");
    var text = message.querySelector(".prose").innerText;
    message.classList.remove("copying");
    return text;
  }

  // Said by the status next to the button, or by one shared live region.
  function say(button, text) {
    var status = button.parentNode.querySelector("[role=status]") ||
      document.getElementById("copy-status");
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
    var button = event.target.closest && event.target.closest("button[data-copy], button[data-copy-from]");
    if (!button) return;
    var input = button.dataset.copy ? document.getElementById(button.dataset.copy) : null;
    navigator.clipboard.writeText(input ? input.value : textToCopy(button)).then(function () {
      say(button, input ? "Link copied." : "Copied to the clipboard.");
      if (!input) {
        button.textContent = "Copied";
        window.setTimeout(function () { button.textContent = "Copy"; }, 1500);
      }
    }, function () {
      if (input) input.select();
      say(button, input ? "Copy failed; the link is selected, copy it by hand."
                        : "Copy failed; select the text and copy it by hand.");
    });
  });

  document.addEventListener("htmx:load", function (event) { enableCopyButtons(event.target); });

  ["htmx:afterSettle", "htmx:sseClose", "htmx:load"].forEach(function (name) {
    document.addEventListener(name, syncIdleButtons);
  });

  document.addEventListener("DOMContentLoaded", function () {
    var history = document.querySelector("details.history");
    if (history && window.matchMedia("(max-width: 700px)").matches) history.open = false;
    syncIdleButtons();
    enableCopyButtons(document.body);
    document.querySelectorAll("article[data-active]").forEach(followReply);
    if (document.querySelector("form.composer") && document.querySelector(".msg")) scrollToEnd();
  });
})();
