/* Vigil web UI: theme switch and charts. A chart is a <div data-chart="ID"> next to a
 * <script type="application/json" id="ID"> holding its spec, built by the server:
 *   {"intraday": false, "panes": [{"height": 1, "series": [{"type": "line"|"candles"|"histogram",
 *     "name": "...", "title": "...", "color": "#...", "data": [[t, v] | [t, o, h, l, c] ...],
 *     "markers": [[t, "BUY"|"SELL"], ...]}]}]}
 * with t in seconds since the epoch, strictly increasing within a series ("intraday": true
 * shows hours on the time axis). Long series that share their times may be sent compactly:
 * the spec's "times": [t, ...] once, and per series "values": [v, ...] with "start": the
 * index in "times" of its first value (a warm-up left out). A histogram is coloured by sign (up/down) unless its
 * series has a "color". Charts are redrawn after every HTMX swap and keep the
 * range the user zoomed to. window.vigil.charts[id] exposes each chart and its series (the
 * browser tests count their points).
 * An element with data-elapsed-since="<ISO 8601 instant>" shows the time since then as
 * H:MM:SS, ticking every second (a running timer: the instant comes from the server, so a
 * reload or another device shows the same count); the server renders its first value. */
(function () {
  "use strict";
  var vigil = (window.vigil = window.vigil || { charts: {} });
  var savedRanges = {};

  function applyTheme(theme) {
    document.documentElement.dataset.theme = theme;
    try { localStorage.setItem("vigil-theme", theme); } catch (e) { /* private mode */ }
  }

  function currentTheme() {
    var set = document.documentElement.dataset.theme;
    if (set) return set;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.body).getPropertyValue(name).trim();
    return value || fallback;
  }

  function toSeriesData(type, rows, color) {
    var out = new Array(rows.length);
    var up = color || cssVar("--vigil-up", "#1b7f3b"), down = color || cssVar("--vigil-down", "#b3261e");
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      if (type === "candles") out[i] = { time: r[0], open: r[1], high: r[2], low: r[3], close: r[4] };
      else if (type === "histogram") out[i] = { time: r[0], value: r[1], color: r[1] >= 0 ? up : down };
      else out[i] = { time: r[0], value: r[1] };
    }
    return out;
  }

  function rowsOf(spec, s) {
    if (!s.values) return s.data;
    var start = s.start || 0, out = new Array(s.values.length);
    for (var i = 0; i < s.values.length; i++) out[i] = [spec.times[start + i], s.values[i]];
    return out;
  }

  function seriesKind(LC, type) {
    if (type === "candles") return LC.CandlestickSeries;
    if (type === "histogram") return LC.HistogramSeries;
    return LC.LineSeries;
  }

  function markersOf(rows) {
    var up = cssVar("--vigil-up", "#1b7f3b"), down = cssVar("--vigil-down", "#b3261e");
    return rows.map(function (m) {
      var buy = m[1] === "BUY";
      return { time: m[0], position: buy ? "belowBar" : "aboveBar", shape: buy ? "arrowUp" : "arrowDown",
               color: buy ? up : down, text: m[1] };
    });
  }

  function drawChart(el) {
    var LC = window.LightweightCharts;
    var specEl = document.getElementById(el.dataset.chart);
    if (!LC || !specEl) return;
    var spec = JSON.parse(specEl.textContent);
    var old = vigil.charts[el.id];
    if (old) old.chart.remove();
    el.textContent = "";
    var text = cssVar("--pico-color", "#333"), grid = cssVar("--pico-muted-border-color", "#ddd");
    var chart = LC.createChart(el, {
      autoSize: true,
      layout: { background: { color: "transparent" }, textColor: text, attributionLogo: false },
      grid: { vertLines: { color: grid }, horzLines: { color: grid } },
      timeScale: { timeVisible: !!spec.intraday, borderColor: grid },
      rightPriceScale: { borderColor: grid },
    });
    var series = {};
    spec.panes.forEach(function (pane, index) {
      pane.series.forEach(function (s) {
        var options = { title: s.title || "", priceLineVisible: false, lastValueVisible: !!s.lastValue };
        if (s.color) options.color = s.color;
        if (s.lineWidth) options.lineWidth = s.lineWidth;
        if (s.dashed) options.lineStyle = LC.LineStyle.Dashed;
        var api = chart.addSeries(seriesKind(LC, s.type), options, index);
        api.setData(toSeriesData(s.type, rowsOf(spec, s), s.type === "histogram" ? s.color : null));
        if (s.markers && s.markers.length) LC.createSeriesMarkers(api, markersOf(s.markers));
        series[s.name || s.title] = api;
      });
    });
    var panes = chart.panes();
    spec.panes.forEach(function (pane, index) {
      if (pane.height && panes[index]) panes[index].setStretchFactor(pane.height);
    });
    var range = savedRanges[el.id];
    if (range) chart.timeScale().setVisibleRange(range);
    else chart.timeScale().fitContent();
    vigil.charts[el.id] = { chart: chart, series: series };
    performance.mark("vigil:chart-ready:" + el.id);
  }

  function drawAll(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(drawChart);
  }

  // Keep the user's zoom across auto-refresh swaps; forget it when the selection changes.
  function rememberRanges(root) {
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var c = vigil.charts[el.id];
      if (c) savedRanges[el.id] = c.chart.timeScale().getVisibleRange();
    });
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function tickElapsed() {
    document.querySelectorAll("[data-elapsed-since]").forEach(function (el) {
      var since = Date.parse(el.dataset.elapsedSince);
      if (isNaN(since)) return;
      var s = Math.max(0, Math.floor((Date.now() - since) / 1000));
      el.textContent = Math.floor(s / 3600) + ":" + pad(Math.floor(s / 60) % 60) + ":" + pad(s % 60);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    tickElapsed();
    setInterval(tickElapsed, 1000);
    var toggle = document.getElementById("theme-toggle");
    if (toggle) toggle.addEventListener("click", function () {
      applyTheme(currentTheme() === "dark" ? "light" : "dark");
      drawAll(document);  // chart colours follow the theme
    });
    drawAll(document);
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    var trigger = event.detail.requestConfig && event.detail.requestConfig.triggeringEvent;
    var auto = event.detail.requestConfig && event.detail.requestConfig.elt &&
      event.detail.requestConfig.elt.hasAttribute("data-auto-refresh");
    savedRanges = {};
    if (auto && !(trigger && trigger.type === "submit")) rememberRanges(event.detail.target);
  });
  document.addEventListener("htmx:afterSettle", function (event) { drawAll(event.detail.elt); });
  vigil.drawAll = drawAll;
})();
