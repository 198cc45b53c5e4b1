// The RFM map (a heatmap of members per R x F cell, average spend in the tooltip) and the lifecycle funnel.
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var zh = document.documentElement.lang.indexOf("zh") === 0;
  function chart(id) {
    var el = document.getElementById(id);
    if (!el || typeof echarts === "undefined") { return null; }
    var c = echarts.init(el, null, { locale: zh ? "ZH" : "EN" });
    window.addEventListener("resize", function () { c.resize(); if (c.onResized) { c.onResized(); } });
    return c;
  }
  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (ch) { return "&#" + ch.charCodeAt(0) + ";"; });
  }
  function yuan(fen) { return "¥" + (fen / 100).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 }); }

  var rfm = chart("rfm-chart");
  if (rfm) {
    var cells = JSON.parse(document.getElementById("rfm-chart-data").textContent);
    var labelWidth = function () { return Math.max(40, (rfm.getWidth() - 70) / 5 - 6); };  // a cell, less padding
    var most = Math.max.apply(null, cells.map(function (c) { return c[2]; }).concat([1]));
    var option = function () { return {
      tooltip: {
        formatter: function (p) {
          var c = p.data;
          return "R" + (c[1] + 1) + " F" + (c[0] + 1) + (c[4] ? " · " + esc(c[4]).split("\n").join(" · ") : "") + "<br>" +
            c[2].toLocaleString() + (zh ? " 人" : " members") + "<br>" + (zh ? "平均消费 " : "average spend ") + yuan(c[3]);
        },
      },
      grid: { left: 50, right: 20, top: 10, bottom: 80 },
      xAxis: { type: "category", data: ["F1", "F2", "F3", "F4", "F5"], splitArea: { show: true } },
      yAxis: { type: "category", data: ["R1", "R2", "R3", "R4", "R5"], splitArea: { show: true } },
      visualMap: { min: 0, max: most, calculable: true, orient: "horizontal", left: "center", bottom: 0, inRange: { color: ["#eef3fb", "#206bc4"] } },
      series: [{
        type: "heatmap",
        data: cells,
        // a cell split by M names one segment a line, each cut to the cell's width (the tooltip has them whole)
        label: {
          show: true, width: labelWidth(), overflow: "truncate",
          formatter: function (p) { return p.data[2].toLocaleString() + (p.data[4] ? "\n" + p.data[4] : ""); },
        },
        emphasis: { itemStyle: { shadowBlur: 6, shadowColor: "rgba(0,0,0,.3)" } },
      }],
    }; };
    rfm.setOption(option());
    // the labels' width follows the cells, without playing the opening animation again
    rfm.onResized = function () { var o = option(); o.animation = false; rfm.setOption(o); };
  }

  var life = chart("lifecycle-chart");
  if (life) {
    var stages = JSON.parse(document.getElementById("lifecycle-chart-data").textContent);
    life.setOption({
      tooltip: { trigger: "item", formatter: "{b}: {c}" },
      color: ["#2fb344", "#206bc4", "#f59f00", "#868e96"],
      series: [{ type: "funnel", sort: "none", left: "10%", width: "80%", minSize: "20%", data: stages, label: { formatter: "{b}  {c}" } }],
    });
  }
});
