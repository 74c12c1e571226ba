// Live pages without a build step: one EventSource; a notice means "refresh your partial".
(function () {
  "use strict";
  var live = document.body.dataset.live;
  var status = document.getElementById("live");
  if (!window.EventSource) { if (status) status.textContent = "no live updates"; return; }
  var busy = {};
  function refresh(id) {
    var box = document.getElementById(id);
    if (!box || busy[id]) return;
    busy[id] = true;
    fetch(box.dataset.partial, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var open = {};
        box.querySelectorAll("details[open]").forEach(function (d) { open[d.closest("[data-path]") ? d.closest("[data-path]").dataset.path : ""] = true; });
        box.innerHTML = html;
        box.querySelectorAll("details").forEach(function (d) {
          var owner = d.closest("[data-path]");
          if (owner && open[owner.dataset.path]) d.open = true;
        });
        box.dataset.version = String(Number(box.dataset.version || "0") + 1);
      })
      .catch(function () {})
      .then(function () { busy[id] = false; });
  }
  var source = new EventSource("/events");
  source.addEventListener("hello", function () { if (status) status.textContent = "live"; });
  source.addEventListener("tree", function () { if (live === "tree") refresh("tree"); });
  source.addEventListener("jobs", function () { if (live === "jobs") refresh("jobs"); if (live === "job") refresh("progress"); });
  // A job page follows the progress of a running job: its reports are written every progress_interval.
  source.addEventListener("tick", function () {
    if (live === "tree") refresh("tree");
    if (live === "jobs") refresh("jobs");
    if (live === "job") refresh("progress");
  });
  source.addEventListener("shutdown", function () { if (status) status.textContent = "host stopping"; source.close(); });
  source.onerror = function () { if (status) status.textContent = "reconnecting…"; };
})();
