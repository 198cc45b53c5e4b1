// The counter screen, keyboard first: the find field keeps the focus between steps; F1-F4 open a purchase,
// a top-up, a coupon or the points of the member on screen (F1 without one: a guest's purchase); Esc goes
// back to the find field; Enter submits the step in front of the cashier (htmx does the rest); 1-9 pick a
// member from a list of matches.
(function () {
  "use strict";
  const root = document.getElementById("counter");
  if (!root) return;
  const work = document.getElementById("counter-work");
  const find = document.getElementById("counter-q");

  function member() {
    const panel = work.querySelector("[data-member-no]");
    return panel ? { no: panel.dataset.memberNo, code: panel.dataset.scannedCode || "" } : null;
  }

  function open(url) {
    htmx.ajax("GET", url, { target: "#counter-work" });
  }

  function focusStep() {
    const target = work.querySelector("[autofocus]") || work.querySelector("input:not([type=hidden]), select");
    (target || find).focus();
    if (target && target.select && target.tagName === "INPUT") target.select();
  }

  function backToFind() {
    htmx.ajax("GET", root.dataset.welcomeUrl, { target: "#counter-work" }).then(function () {
      find.value = "";
      find.focus();
    });
  }

  document.body.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target === work) focusStep();
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-counter-cancel]")) {
      event.preventDefault();
      backToFind();
    }
  });

  document.addEventListener("keydown", function (event) {
    const m = member();
    const keys = {
      F1: root.dataset.purchaseUrl + (m ? "?member=" + encodeURIComponent(m.no) + "&code=" + encodeURIComponent(m.code) : ""),
      F2: m ? root.dataset.topUpUrl + "?member=" + encodeURIComponent(m.no) : null,
      F3: m ? root.dataset.couponUrl + "?member=" + encodeURIComponent(m.no) : null,
      F4: m ? work.querySelector("[data-member-no]").dataset.pointsUrl : null,
    };
    if (event.key in keys) {
      event.preventDefault();
      if (keys[event.key]) open(keys[event.key]);
      return;
    }
    // Enter on a list (a recharge package, how the rest is paid) submits its step, as it does in a text field
    const active = document.activeElement;
    if (event.key === "Enter" && active && active.tagName === "SELECT" && active.form && work.contains(active)) {
      event.preventDefault();
      active.form.requestSubmit();
      return;
    }
    if (event.key === "Escape") {
      event.preventDefault();
      backToFind();
      return;
    }
    const pick = work.querySelector("#counter-pick");
    if (pick && /^[1-9]$/.test(event.key) && document.activeElement !== find) {
      const item = pick.querySelector('[data-pick="' + event.key + '"]');
      if (item) {
        event.preventDefault();
        item.click();
      }
    }
    if (pick && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      const items = Array.from(pick.querySelectorAll("[data-pick]"));
      const at = items.indexOf(document.activeElement);
      const next = event.key === "ArrowDown" ? Math.min(items.length - 1, at + 1) : Math.max(0, at - 1);
      event.preventDefault();
      items[next].focus();
    }
    if (event.key === "p" && document.activeElement.tagName !== "INPUT") {
      const receipt = work.querySelector("#counter-receipt");
      if (receipt) {
        event.preventDefault();
        receipt.click();
      }
    }
  });
})();
