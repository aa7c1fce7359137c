/* vitalstream pages: status messages, htmx errors, the panel's live updates (SSE).
   No inline scripts anywhere (the Content-Security-Policy forbids them). */
(function () {
  "use strict";

  function say(text) {
    var status = document.getElementById("status");
    if (status) { status.textContent = text; }
  }

  document.addEventListener("vs-status", function (event) {
    var detail = event.detail || {};
    say(typeof detail.value === "string" ? detail.value : "Done.");
  });

  document.addEventListener("htmx:responseError", function (event) {
    var code = event.detail && event.detail.xhr ? event.detail.xhr.status : "?";
    say("The action failed (HTTP " + code + "). Reload the page and try again.");
  });

  document.addEventListener("htmx:sendError", function () {
    say("The server could not be reached. Check the connection and try again.");
  });

  function livePanel() {
    var table = document.querySelector("[data-live-panel]");
    var note = document.getElementById("live-note");
    if (!table || !window.EventSource || !window.htmx) {
      if (note) { note.textContent = "Reload the page for new alerts."; }
      return;
    }
    var source = new EventSource(table.getAttribute("data-live-panel"));
    source.addEventListener("alerts", function () {
      window.htmx.ajax("GET", "/doctor/panel-rows", { target: "#panel-rows", swap: "outerHTML" });
      say("The patient list was updated.");
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED && note) {
        note.textContent = "Live updates stopped; reload the page.";
      }
    };
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", livePanel);
  } else {
    livePanel();
  }
})();
