// Small behaviours on top of htmx: Enter to send (a new line on touch screens), a composer
// that grows, Stop in Send's place, one reply at a time, images and documents attached,
// dropped or pasted, with thumbnails and chips, copy buttons on messages and code blocks, focus in menus and the drawer.
(function () {
  "use strict";

  // Sending, editing, regenerating and switching versions are off while a reply is being
  // written (the server refuses them anyway), and the composer's Stop button, in Send's
  // place, submits that reply's stop form (a comparison's stops every column).
  function syncIdleButtons() {
    var active = document.querySelector("[data-active]");
    document.querySelectorAll("form.composer, form[data-needs-idle]").forEach(function (form) {
      var button = form.querySelector("button[type=submit]:not([form])");
      if (button && !form.classList.contains("htmx-request")) button.disabled = active !== null;
    });
    var stop = document.querySelector("form.composer button.stop");
    var stopForm = active && (document.querySelector("form.stop-all") ||
                              active.querySelector("form.stop-form"));
    if (!stop) return;
    if (stopForm) stop.setAttribute("form", stopForm.id);
    stop.hidden = !stopForm;
    stop.disabled = false;
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

  function documentInput(form) { return form.querySelector("input[type=file][name=documents]"); }

  // Add `files` to one of the composer's file inputs: images to the images', the others
  // to the documents'; true if any were added.
  function addToInput(input, files) {
    if (!input || !files.length) return false;
    var list = new DataTransfer();
    Array.prototype.slice.call(input.files).concat(files).forEach(function (file) {
      list.items.add(file);
    });
    input.files = list.files;
    return true;
  }

  function addFiles(form, files) {
    var all = Array.prototype.slice.call(files || []);
    var isImage = function (file) { return file.type.indexOf("image/") === 0 && imageInput(form); };
    var images = addToInput(imageInput(form), all.filter(isImage));
    var documents = addToInput(documentInput(form), all.filter(function (file) { return !isImage(file); }));
    if (images) showPreviews(form);
    if (documents) showDocuments(form);
    return images || documents;
  }

  // Thumbnails of the chosen images, each with a button that takes it out.
  function showPreviews(form) {
    var input = imageInput(form);
    var previews = form.querySelector(".previews");
    if (!input || !previews) return;
    previews.textContent = "";
    Array.prototype.forEach.call(input.files, function (file, index) {
      var item = document.createElement("li");
      var img = document.createElement("img");
      var reader = new FileReader();  // a data: URL, which the page's CSP allows for images
      reader.onload = function () { img.src = reader.result; };
      reader.readAsDataURL(file);
      img.alt = file.name;
      var remove = iconButton("x", "Remove " + file.name);
      remove.addEventListener("click", function () { removeImage(form, index); });
      item.appendChild(img);
      item.appendChild(remove);
      previews.appendChild(item);
    });
    previews.hidden = input.files.length === 0;
  }

  function removeFile(form, input, index) {
    var list = new DataTransfer();
    Array.prototype.forEach.call(input.files, function (file, i) {
      if (i !== index) list.items.add(file);
    });
    input.files = list.files;
    if (input === imageInput(form)) showPreviews(form); else showDocuments(form);
    form.querySelector("textarea[name=content]").focus();
  }

  function removeImage(form, index) { removeFile(form, imageInput(form), index); }

  // Chips of the chosen documents: name, size, and the tokens the server estimates once it
  // has read the file (or the sentence that refuses it), each with a button that takes it
  // out. A file is read once however often the chips are drawn again.
  var checked = new WeakMap();

  function sizeText(size) {
    if (size >= 1048576) return (size / 1048576).toFixed(1) + " MB";
    if (size >= 10240) return Math.round(size / 1024) + " KB";
    if (size >= 1024) return (size / 1024).toFixed(1) + " KB";
    return size + " bytes";
  }

  function checkDocument(input, file) {
    if (!checked.has(file)) {
      var body = new FormData();
      body.append("document", file);
      var token = document.querySelector("input[name=csrf_token]");
      checked.set(file, fetch(input.dataset.checkUrl, {
        method: "POST", body: body, credentials: "same-origin",
        headers: token ? { "X-CSRFToken": token.value } : {}
      }).then(function (response) { return response.json(); })
        .catch(function () { return {}; }));
    }
    return checked.get(file);
  }

  function showDocuments(form) {
    var input = documentInput(form);
    var chips = form.querySelector(".doc-previews");
    if (!input || !chips) return;
    chips.textContent = "";
    Array.prototype.forEach.call(input.files, function (file, index) {
      var item = document.createElement("li");
      var chip = document.createElement("span");
      chip.className = "doc-chip";
      var name = document.createElement("span");
      name.className = "doc-name";
      name.textContent = file.name;
      var meta = document.createElement("span");
      meta.className = "doc-meta";
      meta.textContent = sizeText(file.size) + " · reading…";
      chip.appendChild(iconOf("file-text"));
      chip.appendChild(name);
      chip.appendChild(meta);
      var remove = iconButton("x", "Remove " + file.name);
      remove.addEventListener("click", function () { removeFile(form, input, index); });
      item.appendChild(chip);
      item.appendChild(remove);
      chips.appendChild(item);
      checkDocument(input, file).then(function (result) {
        if (result.error) {
          item.classList.add("refused");
          meta.textContent = result.error;
        } else if (result.tokens !== undefined) {
          meta.textContent = sizeText(file.size) + " · about " +
            result.tokens.toLocaleString("en") + " tokens";
        } else {
          meta.textContent = sizeText(file.size);
        }
      });
    });
    chips.hidden = input.files.length === 0;
  }

  document.addEventListener("change", function (event) {
    var form = composerOf(event);
    if (form && event.target === imageInput(form)) showPreviews(form);
    if (form && event.target === documentInput(form)) showDocuments(form);
  });

  function composerOf(event) { return event.target.closest && event.target.closest("form.composer"); }

  document.addEventListener("paste", function (event) {
    var form = composerOf(event);
    if (form && event.clipboardData && addFiles(form, event.clipboardData.files)) {
      event.preventDefault();
    }
  });

  document.addEventListener("dragover", function (event) {
    if (composerOf(event)) event.preventDefault();
  });

  document.addEventListener("drop", function (event) {
    var form = composerOf(event);
    if (form && addFiles(form, event.dataTransfer.files)) event.preventDefault();
  });

  // htmx requests carry the CSRF token in a header; forms also post it as a field, and
  // this covers the elements that are not forms (the Delete link).
  document.addEventListener("htmx:configRequest", function (event) {
    var token = document.querySelector("input[name=csrf_token]");
    if (token) event.detail.headers["X-CSRFToken"] = token.value;
  });

  // Enter sends and Shift+Enter makes a new line; on touch screens, where there is no
  // Shift, Enter makes a new line and the Send button sends. A blank box sends nothing.
  var touch = window.matchMedia("(hover: none) and (pointer: coarse)");

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || touch.matches) return;
    if (!target.matches || !target.matches(
      "form.composer textarea[name=content], form[data-enter-sends] textarea")) return;
    event.preventDefault();
    var button = target.form.querySelector("button[type=submit]:not([form])");
    if (target.value.trim() && (!button || !button.disabled)) target.form.requestSubmit(button);
  });

  // A blank message is not sent (the server would only answer that it is blank).
  document.addEventListener("submit", function (event) {
    var box = event.target.querySelector && event.target.querySelector("textarea[name=content]");
    if (box && event.target.matches("form.composer, form[data-enter-sends]") && !box.value.trim()) {
      event.preventDefault();
      event.stopPropagation();
      box.focus();
    }
  }, true);

  // Where the browser cannot size a text box to its content (field-sizing), grow it here;
  // the stylesheet caps it at about 8 lines.
  function grow(box) {
    box.style.height = "auto";
    box.style.height = box.scrollHeight + 2 + "px";
  }

  var sizesItself = window.CSS && CSS.supports("field-sizing", "content");
  document.addEventListener("input", function (event) {
    if (!sizesItself && event.target.matches("form.composer textarea")) grow(event.target);
  });

  // The composer is emptied only when the message was accepted: a refused send (409, 422,
  // 413 are swapped as inline errors, so htmx counts them as successful) keeps the text.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    var accepted = event.detail.successful && event.detail.xhr.status < 300;
    if (form.matches && form.matches("form.composer") && accepted) {
      form.querySelector("textarea[name=content]").value = "";
      var images = imageInput(form);
      if (images) { images.value = ""; showPreviews(form); }
      var documents = documentInput(form);
      if (documents) { documents.value = ""; showDocuments(form); }
      if (!sizesItself) grow(form.querySelector("textarea[name=content]"));
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

  // A button that shows one icon from the sprite and is named by `label`.
  function iconButton(name, label) {
    var button = document.createElement("button");
    button.type = "button";
    button.setAttribute("aria-label", label);
    button.appendChild(iconOf(name));
    return button;
  }

  function iconOf(name) {
    var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    var use = document.createElementNS("http://www.w3.org/2000/svg", "use");
    svg.setAttribute("class", "icon");
    svg.setAttribute("aria-hidden", "true");
    use.setAttribute("href", document.body.dataset.icons + "#" + name);
    svg.appendChild(use);
    return svg;
  }

  // Copy buttons. A share link's (data-copy="input-id") and a message's
  // (data-copy-from="message": its Markdown source, from its <template class="md-source">)
  // are in the page, hidden until the clipboard works; code blocks get a header here with
  // their language and a Copy button (data-copy-from="code").
  function within(root, selector) {
    var found = Array.prototype.slice.call(root.querySelectorAll(selector));
    return root.matches && root.matches(selector) ? [root].concat(found) : found;
  }

  function codeHeader(pre) {
    var code = pre.querySelector("code");
    var language = code && /(?:^|\s)language-(\S+)/.exec(code.className);
    var head = document.createElement("div");
    head.className = "code-head";
    var name = document.createElement("span");
    name.textContent = language ? language[1] : "text";
    var button = iconButton("copy", "Copy code");
    button.dataset.copyFrom = "code";
    button.appendChild(document.createTextNode("Copy"));
    head.appendChild(name);
    head.appendChild(button);
    return head;
  }

  function enableCopyButtons(root) {
    if (!navigator.clipboard || !root.querySelectorAll) return;
    within(root, "button[data-copy], button[data-copy-from]").forEach(function (button) {
      button.hidden = false;
    });
    within(root, "article.msg").forEach(function (message) {
      if (message.hasAttribute("data-active")) return;
      message.querySelectorAll(".prose pre").forEach(function (pre) {
        if (pre.parentNode.classList.contains("code-block")) return;
        var block = document.createElement("div");
        block.className = "code-block";
        pre.parentNode.insertBefore(block, pre);
        block.appendChild(codeHeader(pre));
        block.appendChild(pre);
      });
    });
  }

  function textToCopy(button) {
    if (button.dataset.copyFrom === "code") {
      return button.closest(".code-block").querySelector("pre").textContent;
    }
    return button.closest("article.msg").querySelector("template.md-source").content.textContent;
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
      var use = input ? null : button.querySelector("use");
      if (use) {
        var href = use.getAttribute("href");
        use.setAttribute("href", href.replace(/#.*/, "#check"));
        window.setTimeout(function () { use.setAttribute("href", href); }, 1500);
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

  // Menus and panels (popovers): focus moves to their first field or item when they open;
  // the browser returns it to the button when they close.
  document.addEventListener("toggle", function (event) {
    var panel = event.target;
    if (event.newState !== "open" || !panel.matches("[popover]")) return;
    var first = panel.querySelector("input:not([type=hidden]), textarea, select, a[href], button");
    if (first) first.focus();
  }, true);

  // An edit's Cancel puts the text back and closes the editor; opening it focuses the text.
  document.addEventListener("click", function (event) {
    var cancel = event.target.closest && event.target.closest("[data-cancel-edit]");
    if (!cancel) return;
    event.preventDefault();
    var edit = cancel.closest(".msg-edit");
    edit.querySelector("form").reset();
    edit.open = false;
    edit.querySelector("summary").focus();
  });
  document.addEventListener("toggle", function (event) {
    var edit = event.target;
    if (edit.matches && edit.matches(".msg-edit") && edit.open) edit.querySelector("textarea").focus();
  }, true);

  // The phone drawer closes on Escape and once a search is sent from it.
  var navToggle = document.getElementById("nav-toggle");
  function closeDrawer() {
    if (navToggle && navToggle.checked && window.matchMedia("(max-width: 760px)").matches) {
      navToggle.checked = false;
      navToggle.focus();
    }
  }
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closeDrawer();
  });

  // A collapsed sidebar on a wide screen stays collapsed on the next pages.
  var wide = window.matchMedia("(min-width: 761px)");
  if (navToggle) {
    navToggle.addEventListener("change", function () {
      if (wide.matches) localStorage.setItem("sidebarCollapsed", navToggle.checked ? "1" : "");
    });
    if (wide.matches && localStorage.getItem("sidebarCollapsed")) navToggle.checked = true;
  }
  document.addEventListener("submit", function (event) {
    if (event.target.matches(".search-form")) closeDrawer();
  });

  // A new title (written after the first reply, or renamed) reaches the tab and the
  // Rename field.
  document.addEventListener("htmx:afterSettle", function () {
    var heading = document.getElementById("conv-title");
    if (!heading) return;
    document.title = heading.textContent + " · Regolo Chat";
    var field = document.getElementById("title-input");
    if (field && document.activeElement !== field) field.value = heading.textContent;
  });

  document.addEventListener("DOMContentLoaded", function () {
    syncIdleButtons();
    enableCopyButtons(document.body);
    document.querySelectorAll("article[data-active]").forEach(followReply);
    if (document.querySelector("form.composer") && document.querySelector(".msg")) scrollToEnd();
  });
})();
