// The tiers section: the members-per-tier chart (data from a json_script tag), and a busy state on the
// preview buttons, since a preview evaluates every member and may take several seconds.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("tier-chart");
    if (el && window.echarts) {
      var data = JSON.parse(document.getElementById("tier-chart-data").textContent);
      var zh = document.documentElement.lang.indexOf("zh") === 0;
      var chart = window.echarts.init(el, null, { locale: zh ? "ZH" : "EN" });
      chart.setOption({
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
        grid: { left: 50, right: 20, top: 20, bottom: 30 },
        xAxis: { type: "category", data: data.names },
        yAxis: { type: "value", minInterval: 1 },
        series: [{
          name: data.label,
          type: "bar",
          barMaxWidth: 48,
          label: { show: true, position: "top" },
          data: data.counts.map(function (n, i) { return { value: n, itemStyle: { color: data.colours[i] } }; }),
        }],
      });
      window.addEventListener("resize", function () { chart.resize(); });
    }
    document.querySelectorAll("[data-busy-label]").forEach(function (button) {
      button.form.addEventListener("submit", function (event) {
        if (event.submitter !== button) return;
        button.classList.add("btn-loading");
        button.setAttribute("aria-busy", "true");
        var note = document.getElementById(button.dataset.busyLabel);
        if (note) note.hidden = false;
      });
    });
  });
})();
