/* vitalstream pages: status messages, htmx errors, the panel's live updates (SSE).
   No inline scripts anywhere (the Content-Security-Policy forbids them). */
(function () {
  "use strict";

  /* The page's texts in its language (base.html: #vs-messages); English when absent. */
  var MESSAGES = {
    js_done: "Done.",
    js_failed: "The action failed (HTTP {code}). Reload the page and try again.",
    js_unreachable: "The server could not be reached. Check the connection and try again.",
    js_reload_alerts: "Reload the page for new alerts.",
    js_patients_updated: "The patient list was updated.",
    js_live_stopped: "Live updates stopped; reload the page."
  };
  try {
    var given = document.getElementById("vs-messages");
    if (given) {
      var parsed = JSON.parse(given.textContent);
      Object.keys(parsed).forEach(function (key) { MESSAGES[key] = parsed[key]; });
    }
  } catch (ignored) { /* keep the English texts */ }

  function msg(key, values) {
    var text = MESSAGES[key] || key;
    Object.keys(values || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(String(values[name]));
    });
    return text;
  }
  window.vsMessage = msg;

  function say(text) {
    var status = document.getElementById("status");
    if (status) { status.textContent = text; }
  }

  document.addEventListener("vs-status", function (event) {
    var detail = event.detail || {};
    say(typeof detail.value === "string" ? detail.value : msg("js_done"));
  });

  document.addEventListener("htmx:responseError", function (event) {
    var code = event.detail && event.detail.xhr ? event.detail.xhr.status : "?";
    say(msg("js_failed", { code: code }));
  });

  document.addEventListener("htmx:sendError", function () {
    say(msg("js_unreachable"));
  });

  function livePanel() {
    var table = document.querySelector("[data-live-panel]");
    var note = document.getElementById("live-note");
    if (!table || !window.EventSource || !window.htmx) {
      if (note) { note.textContent = msg("js_reload_alerts"); }
      return;
    }
    var source = new EventSource(table.getAttribute("data-live-panel"));
    source.addEventListener("alerts", function () {
      window.htmx.ajax("GET", "/doctor/panel-rows", { target: "#panel-rows", swap: "outerHTML" });
      say(msg("js_patients_updated"));
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED && note) {
        note.textContent = msg("js_live_stopped");
      }
    };
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", livePanel);
  } else {
    livePanel();
  }
})();
