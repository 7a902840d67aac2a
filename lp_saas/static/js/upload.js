/* Direct uploads to storage (DESIGN.md §5): the file's bytes go from the browser straight to the
 * storage server with the presigned POST the app hands out; the web process only sees metadata.
 *
 * Markup contract (any page):
 *   <form data-direct-upload action="/…/new" method="post">   <- the page endpoint that creates the item
 *     <input type="hidden" name="csrf_token" …>                 <- sent as X-CSRFToken
 *     … the item's own fields …
 *     <input type="file" name="file">                           <- optional when a link field is filled
 *     <p data-upload-status role="status"></p>
 *   </form>
 * The endpoint receives the form fields (without the file) plus file_name, file_size, file_type and
 * file_sha256, and answers JSON: {"next_url"} for a link, or {"upload": {method,url,fields,headers},
 * "uploaded_url", "next_url"}; errors as {"error": {"message", "details"}} with a 4xx status.
 */
(function () {
  "use strict";

  function hex(buffer) {
    return Array.from(new Uint8Array(buffer)).map(function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  function say(form, text, isError) {
    var box = form.querySelector("[data-upload-status]");
    if (!box) { return; }
    box.textContent = text;
    box.classList.toggle("error", !!isError);
  }

  function showErrors(form, body) {
    var error = (body && body.error) || {};
    var details = error.details || {};
    form.querySelectorAll("[data-field-error]").forEach(function (el) { el.textContent = ""; });
    Object.keys(details).forEach(function (field) {
      var slot = form.querySelector('[data-field-error="' + field + '"]');
      if (slot) { slot.textContent = details[field]; }
    });
    var extra = Object.keys(details).filter(function (f) { return !form.querySelector('[data-field-error="' + f + '"]'); })
      .map(function (f) { return details[f]; });
    say(form, [error.message || form.dataset.msgFailed || "Error"].concat(extra).join(" "), true);
  }

  async function submit(form, event) {
    event.preventDefault();
    var button = form.querySelector("[type=submit]");
    if (button) { button.disabled = true; }
    try {
      var csrf = (form.querySelector("[name=csrf_token]") || {}).value || "";
      var data = new FormData(form);
      var fileInput = form.querySelector("input[type=file][name=file]");
      var file = fileInput && fileInput.files && fileInput.files[0];
      data.delete("file");
      if (file) {
        say(form, form.dataset.msgHashing || "…");
        var digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
        data.append("file_name", file.name);
        data.append("file_size", String(file.size));
        data.append("file_type", file.type || "application/octet-stream");
        data.append("file_sha256", hex(digest));
      }
      var created = await fetch(form.action, {method: "POST", body: data, credentials: "same-origin",
                                               headers: {"X-CSRFToken": csrf, "Accept": "application/json"}});
      var body = await created.json().catch(function () { return {}; });
      if (!created.ok) { showErrors(form, body); return; }
      if (file && body.upload) {
        say(form, form.dataset.msgUploading || "…");
        var upload = body.upload;
        var sent;
        if (upload.method === "PUT") {
          sent = await fetch(upload.url, {method: "PUT", body: file, headers: upload.headers || {}});
        } else {
          var parts = new FormData();
          Object.keys(upload.fields || {}).forEach(function (k) { parts.append(k, upload.fields[k]); });
          parts.append("file", file, file.name);
          sent = await fetch(upload.url, {method: "POST", body: parts});
        }
        if (!sent.ok) {
          var storageBody = await sent.json().catch(function () { return {}; });
          showErrors(form, storageBody.error ? storageBody : {error: {message: form.dataset.msgFailed}});
          return;
        }
        say(form, form.dataset.msgVerifying || "…");
        var done = await fetch(body.uploaded_url, {method: "POST", credentials: "same-origin",
                                                   headers: {"X-CSRFToken": csrf, "Accept": "application/json"}});
        if (!done.ok) { showErrors(form, await done.json().catch(function () { return {}; })); return; }
      }
      window.location.assign(body.next_url || window.location.href);
    } catch (err) {
      say(form, (form.dataset.msgFailed || "Error") + " " + err, true);
    } finally {
      if (button) { button.disabled = false; }
    }
  }

  document.querySelectorAll("form[data-direct-upload]").forEach(function (form) {
    form.addEventListener("submit", function (event) { submit(form, event); });
  });
})();
