/* The payment code's countdown: shows the seconds left and, when they run out (or when the phone wakes up with a
   stale code), asks htmx for a fresh code. Without JavaScript the page reloads itself instead (a meta refresh). */
(function () {
  "use strict";
  var box = null;
  var deadline = 0;

  function watch(root) {
    var found = root.id === "payment-code" ? root : root.querySelector && root.querySelector("#payment-code[data-seconds]");
    if (!found || !found.dataset.seconds) return;
    box = found;
    deadline = Date.now() + Number(found.dataset.seconds) * 1000;
    tick();
  }

  function tick() {
    if (!box || !box.isConnected) return;
    var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    var shown = box.querySelector("[data-countdown]");
    if (shown) shown.textContent = String(left);
    if (left > 0) return;
    deadline = Date.now() + 5000; // no fresh code within 5 s (offline?): ask again then
    if (window.htmx) window.htmx.trigger(box, "refresh");
    else window.location.reload();
  }

  if (window.htmx) window.htmx.onLoad(watch);
  else document.addEventListener("DOMContentLoaded", function () { watch(document); });
  window.setInterval(tick, 1000);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) tick(); });
})();
