// Ledger configuration forms: pickers for many-to-many choices, and only the fields that the current
// choices use (data-show-if="kind:cash_off percent" shows an element while the kind is one of those).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    if (window.TomSelect) {
      document.querySelectorAll("select[multiple]").forEach(function (el) {
        if (!el.disabled) new window.TomSelect(el, { plugins: ["remove_button"] });
      });
    }
    document.querySelectorAll("form[data-show-if-form]").forEach(function (form) {
      function sync() {
        form.querySelectorAll("[data-show-if]").forEach(function (el) {
          var rule = el.dataset.showIf.split(":"), field = form.elements[rule[0]];
          if (field) el.hidden = rule[1].split(" ").indexOf(field.value) < 0;
        });
      }
      form.addEventListener("change", sync);
      sync();
    });
  });
})();
