// Back-office behaviour: toasts for Django messages and for htmx "toast" events.
(function () {
  "use strict";
  function show(el) {
    var T = window.tabler && window.tabler.Toast;
    if (T) { T.getOrCreateInstance(el, { delay: 5000 }).show(); } else { el.classList.add("show"); }
  }
  function toast(message, level) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "toast align-items-center border-0 text-bg-" + (level || "info");
    el.setAttribute("role", "status");
    var body = document.createElement("div");
    body.className = "toast-body";
    body.textContent = message;
    el.appendChild(body);
    box.appendChild(el);
    show(el);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".toast[data-autoshow]").forEach(show);
  });
  // A view sends trigger_client_event(response, "toast", {"message": ..., "level": ...}).
  document.body.addEventListener("toast", function (e) { toast(e.detail.message, e.detail.level); });
  window.huiyuanToast = toast;
})();
