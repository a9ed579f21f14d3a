// The dashboard page: reads /api/state once, then follows /api/stream (server-sent events).
// Every text from the server is set with textContent (never as HTML).
"use strict";
(function () {
  const LC = window.LightweightCharts;
  const $ = (id) => document.getElementById(id);
  const fmt = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x)) ? "–" :
    Number(x).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
  const price = (x) => (x === null || x === undefined) ? "–" : (Math.abs(x) >= 1 ? fmt(x, 2) : String(Number(x.toPrecision(6))));
  const when = (ms) => new Date(ms).toISOString().replace("T", " ").slice(0, 16);
  const theme = { layout: { background: { color: "#171e26" }, textColor: "#d8dee6" },
    grid: { vertLines: { color: "#222b35" }, horzLines: { color: "#222b35" } },
    timeScale: { timeVisible: true, borderColor: "#26313d" }, rightPriceScale: { borderColor: "#26313d" } };

  // Percent since the session's first point: the bot and buy-and-hold on one honest scale.
  const pct = { type: "custom", minMove: 0.01, formatter: (v) => (v >= 0 ? "+" : "") + v.toFixed(2) + " %" };
  const eqChart = LC.createChart($("equity-chart"), Object.assign({ autoSize: true }, theme));
  const eqLine = eqChart.addSeries(LC.LineSeries, { color: "#4f8cc9", lineWidth: 2, title: "bot", priceFormat: pct });
  const bhLine = eqChart.addSeries(LC.LineSeries, { color: "#9a8f5a", lineWidth: 1, lineStyle: 2, title: "buy & hold", priceFormat: pct });
  const pxChart = LC.createChart($("price-chart"), Object.assign({ autoSize: true }, theme));
  const candles = pxChart.addSeries(LC.CandlestickSeries, { upColor: "#26a69a", downColor: "#ef5350",
    borderVisible: false, wickUpColor: "#26a69a", wickDownColor: "#ef5350" });
  const markers = LC.createSeriesMarkers(candles, []);
  let priceLines = [];
  let symbol = null;
  let lastChart = 0;

  function row(cells) {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = document.createElement("td");
      if (typeof c === "object" && c !== null) { td.textContent = c.text; if (c.cls) td.className = c.cls; }
      else td.textContent = c;
      tr.appendChild(td);
    }
    return tr;
  }
  const signed = (x) => ({ text: (x >= 0 ? "+" : "") + fmt(x), cls: x >= 0 ? "up" : "down" });
  function fill(id, rows, empty) {
    const body = $(id);
    body.replaceChildren(...rows);
    if (!rows.length) { const tr = row([empty]); tr.firstChild.colSpan = 9; tr.className = "muted"; body.appendChild(tr); }
  }
  function badge(id, text, cls) { const b = $(id); b.textContent = text; b.className = "badge " + (cls || ""); }

  function uniqueByTime(points) {
    const out = [];
    for (const p of points) { if (out.length && out[out.length - 1].time >= p.time) out.pop(); out.push(p); }
    return out;
  }

  function render(s) {
    badge("mode", s.mode, s.mode === "LIVE" ? "live" : "paper");
    badge("status", s.status, s.status === "Running" ? "ok" : "warn");
    badge("source", s.data_source + " data", s.data_source === "REPLAY" ? "replay" : "ok");
    badge("connection", s.connection, "muted");
    $("equity").textContent = fmt(s.equity) + " USDT";
    $("balance").textContent = fmt(s.balance) + " USDT";
    $("candles").textContent = String(s.candles);
    const curve = s.equity_curve || [];
    if (curve.length) {
      const a = curve[0], b = curve[curve.length - 1];
      eqLine.setData(uniqueByTime(curve.map((p) => ({ time: p.time, value: 100 * (p.equity / a.equity - 1) }))));
      bhLine.setData(uniqueByTime(curve.map((p) => ({ time: p.time, value: 100 * (p.buy_hold / a.buy_hold - 1) }))));
      eqChart.timeScale().fitContent();
      const bot = 100 * (b.equity / a.equity - 1), bh = 100 * (b.buy_hold / a.buy_hold - 1);
      const v = $("vsbh");
      v.textContent = (bot >= 0 ? "+" : "") + fmt(bot) + " % vs " + (bh >= 0 ? "+" : "") + fmt(bh) + " %";
      v.className = "big " + (bot >= bh ? "up" : "down");
    }
    fill("positions", (s.positions || []).map((p) => {
      const tr = row([p.unclosed ? "⚠ " + p.symbol : p.symbol, p.side, String(p.size), price(p.entry_price),
        price(p.mark_price), signed(p.unrealised_pnl), price(p.stop_loss), price(p.take_profit)]);
      if (p.unclosed) { tr.className = "unclosed"; tr.title = "the bot could not close it: close it on Bybit by hand"; }
      return tr;
    }), "no open position");
    fill("promotion", (s.promotion || []).map((c) => row([{ text: c.met ? "✔" : "✘", cls: c.met ? "up" : "down" },
      c.name, c.required, c.actual])), "not measured yet");
    if (s.trades) {
      fill("trades", s.trades.map((t) => row([when(t.exit_ms), t.symbol, t.side, String(t.qty), price(t.entry_price),
        price(t.exit_price), signed(t.pnl), fmt(t.fees), t.reason])), "no closed trade yet");
    }
    if (s.events && s.events.length) { $("events").replaceChildren(); s.events.forEach(addEvent); }
    $("controls").hidden = !s.control;
    const sel = $("symbol");
    const pairs = s.active_pairs || [];
    if (sel.options.length !== pairs.length || pairs.some((p, i) => sel.options[i].value !== p)) {
      sel.replaceChildren(...pairs.map((p) => { const o = document.createElement("option"); o.value = p; o.textContent = p; return o; }));
      if (symbol && pairs.includes(symbol)) sel.value = symbol;
    }
    if (!symbol || !pairs.includes(symbol)) symbol = pairs[0] || null;
    if (symbol && Date.now() - lastChart > 900) loadChart();
  }

  function addEvent(e) {
    const li = document.createElement("li");
    li.className = e.level;
    li.textContent = when(e.time) + "  " + e.message;
    const log = $("events");
    log.prepend(li);
    while (log.children.length > 200) log.lastChild.remove();
  }

  async function loadChart() {
    lastChart = Date.now();
    const r = await fetch("/api/chart?symbol=" + encodeURIComponent(symbol) + "&n=300");
    if (!r.ok) { $("chart-note").textContent = "no candles yet"; return; }
    const c = await r.json();
    candles.setData(c.candles);
    markers.setMarkers(c.markers.map((m) => ({ time: m.time, position: m.side === "Buy" ? "belowBar" : "aboveBar",
      color: m.side === "Buy" ? "#26a69a" : "#ef5350", shape: m.side === "Buy" ? "arrowUp" : "arrowDown", text: m.side })));
    priceLines.forEach((l) => candles.removePriceLine(l));
    priceLines = [];
    if (c.stop_loss) priceLines.push(candles.createPriceLine({ price: c.stop_loss, color: "#ef5350", lineStyle: 2, title: "stop" }));
    if (c.take_profit) priceLines.push(candles.createPriceLine({ price: c.take_profit, color: "#26a69a", lineStyle: 2, title: "TP" }));
    $("chart-note").textContent = c.interval + " · " + c.source + " data";
  }
  $("symbol").addEventListener("change", (ev) => { symbol = ev.target.value; loadChart(); });

  async function act(action) {
    if (action === "close-all" && !window.confirm("Market-close every open position?")) return;
    const r = await fetch("/api/control/" + action, { method: "POST", headers: { "X-Requested-By": "dashboard" } });
    const body = await r.json().catch(() => ({}));
    $("control-result").textContent = r.ok ? body.text : (body.detail || ("HTTP " + r.status));
  }
  $("pause").addEventListener("click", () => act("pause"));
  $("resume").addEventListener("click", () => act("resume"));
  $("closeall").addEventListener("click", () => act("close-all"));

  fetch("/api/state").then((r) => r.json()).then((s) => { render(s); window.dashboardReady = true; });
  const es = new EventSource("/api/stream");
  es.addEventListener("open", () => badge("live", "● live", "ok"));
  es.addEventListener("error", () => badge("live", "○ reconnecting", "warn"));
  es.addEventListener("state", (m) => { const s = JSON.parse(m.data); window.lastState = s; render(s); });
  es.addEventListener("event", (m) => addEvent(JSON.parse(m.data)));
})();
