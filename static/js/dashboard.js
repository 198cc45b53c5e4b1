document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var el = document.getElementById("members-chart");
  var data = JSON.parse(document.getElementById("members-chart-data").textContent);
  var zh = document.documentElement.lang.indexOf("zh") === 0;
  var chart = echarts.init(el, null, { locale: zh ? "ZH" : "EN" });
  chart.setOption({
    tooltip: { trigger: "axis" },
    legend: { data: data.labels, top: 0 },
    grid: { left: 50, right: 50, top: 40, bottom: 30 },
    xAxis: { type: "category", data: data.dates },
    yAxis: [{ type: "value" }, { type: "value", splitLine: { show: false } }],
    series: [
      { name: data.labels[0], type: "line", smooth: true, data: data.total },
      { name: data.labels[1], type: "bar", yAxisIndex: 1, data: data.new },
    ],
  });
  window.addEventListener("resize", function () { chart.resize(); });
});
