/* Tablero: fetches each chart's JSON (same filters as the page) and draws it with Chart.js.
 * UI texts come from the JSON blob #ui-texts that base.html renders from services/texts.py. */
(function () {
  "use strict";
  const script = document.currentScript;
  const texts = (() => {
    const blob = document.getElementById("ui-texts");
    try { return blob ? JSON.parse(blob.textContent) : {}; } catch (_) { return {}; }
  })();
  /* A text of services/texts.py with its {name} placeholders filled in; a missing key shows as the key. */
  function T(key, values) {
    let text = Object.prototype.hasOwnProperty.call(texts, key) ? texts[key] : key;
    if (values) text = text.replace(/\{(\w+)\}/g, (all, name) => (name in values ? String(values[name]) : all));
    return text;
  }
  const locale = T("locale");
  const api = script.dataset.api;
  const query = new URLSearchParams(new FormData(document.getElementById("filtros")));
  for (const [key, value] of [...query.entries()]) if (!value) query.delete(key);
  const palette = ["#008069", "#25d366", "#34b7f1", "#f5a623", "#e85d75", "#7c5cbf", "#8d99ae", "#2a9d8f", "#e76f51", "#264653"];
  const sentimentColors = { positivo: "#25d366", neutral: "#8d99ae", negativo: "#e85d75" };
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#3b4a54";
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;

  function canvas(name) {
    const element = document.querySelector(`canvas[data-chart="${name}"]`);
    if (!element.parentElement.classList.contains("chart-box")) {
      const box = document.createElement("div");
      box.className = "chart-box";
      element.replaceWith(box);
      box.appendChild(element);
    }
    return element;
  }

  function draw(name, config) {
    const element = canvas(name);
    new Chart(element, config);
    element.dataset.ready = "1";
  }

  function showError(message) {
    const banner = document.getElementById("tablero-error");
    banner.textContent = message;
    banner.hidden = false;
  }

  function fetchChart(name) {
    return fetch(`${api}${name}?${query}`, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(async (response) => {
        const data = await response.json().catch(() => ({}));
        if (!response.ok) throw new Error(data.error || T("tab_load_error", { status: response.status, name }));
        return data;
      });
  }

  const minutes = (seconds) => (seconds == null ? null : Math.round((seconds / 60) * 10) / 10);
  const duration = (seconds) => {
    if (seconds == null) return T("tab_no_data");
    if (seconds < 60) return T("tab_seconds", { n: Math.round(seconds) });
    if (seconds < 3600) return T("tab_minutes", { n: Math.round(seconds / 6) / 10 });
    return T("tab_hours", { n: Math.round(seconds / 360) / 10 });
  };
  const bar = (labels, label, values, extra = {}) => ({
    type: "bar", data: { labels, datasets: [{ label, data: values, backgroundColor: extra.colors || palette[0], borderRadius: 4 }] },
    options: { indexAxis: extra.horizontal ? "y" : "x", plugins: { legend: { display: false } },
      scales: { x: { beginAtZero: true }, y: { beginAtZero: true, ticks: { autoSkip: !extra.horizontal } } } },
  });
  const doughnut = (labels, values, colors) => ({
    type: "doughnut", data: { labels, datasets: [{ data: values, backgroundColor: colors || palette }] },
    options: { cutout: "55%", plugins: { legend: { position: "bottom", labels: { boxWidth: 14 } } } },
  });

  const renderers = {
    "por-dia": (d) => {
      draw("por-dia", { type: "line", data: { labels: d.labels, datasets: [
        { label: T("tab_incoming"), data: d.entrantes, borderColor: palette[0], backgroundColor: "rgba(0,128,105,.15)", fill: true, tension: .25, pointRadius: d.labels.length > 60 ? 0 : 2 },
        { label: T("tab_outgoing"), data: d.salientes, borderColor: palette[2], backgroundColor: "rgba(52,183,241,.10)", fill: true, tension: .25, pointRadius: d.labels.length > 60 ? 0 : 2 },
      ] }, options: { interaction: { mode: "index", intersect: false }, scales: { y: { beginAtZero: true } } } });
      const total = d.entrantes.reduce((a, b) => a + b, 0) + d.salientes.reduce((a, b) => a + b, 0);
      document.getElementById("kpi-mensajes").textContent = total.toLocaleString(locale);
    },
    "por-hora": (d) => draw("por-hora", bar(d.labels, T("tab_messages"), d.mensajes)),
    "tipos": (d) => draw("tipos", doughnut(d.labels, d.mensajes)),
    "remitentes": (d) => draw("remitentes", bar(d.labels, T("tab_messages"), d.mensajes, { colors: [palette[2], palette[0], palette[3]] })),
    "top-numeros": (d) => draw("top-numeros", bar(d.labels, T("tab_messages"), d.mensajes, { horizontal: true, colors: palette[1] })),
    "palabras": (d) => {
      draw("palabras", bar(d.labels.slice(0, 15), T("tab_times"), d.veces.slice(0, 15), { horizontal: true, colors: palette[5] }));
      document.getElementById("palabras-nota").textContent =
        T("tab_words_note", { sample: d.muestra.toLocaleString(locale), limit: d.limite.toLocaleString(locale) });
    },
    "sentimiento": (d) => {
      draw("sentimiento", doughnut(d.labels, d.mensajes, d.labels.map((l) => sentimentColors[l])));
      draw("sentimiento-tendencia", { type: "line", data: { labels: d.dias, datasets: d.labels.map((label) => ({
        label, data: d.tendencia[label], borderColor: sentimentColors[label], backgroundColor: sentimentColors[label],
        tension: .25, pointRadius: d.dias.length > 60 ? 0 : 2 })) },
        options: { interaction: { mode: "index", intersect: false }, scales: { y: { beginAtZero: true } } } });
    },
    "atencion": (d) => {
      draw("atencion", doughnut(d.labels, d.chats, [palette[0], palette[3]]));
      document.getElementById("kpi-chats").textContent = d.total.toLocaleString(locale);
    },
    "respuesta": (d) => {
      const first = d.primera_respuesta, agent = d.respuesta_agente;
      draw("respuesta", { type: "bar", data: { labels: [T("tab_first_reply"), T("tab_agent_reply")], datasets: [
        { label: T("tab_median"), data: [minutes(first.mediana), minutes(agent.mediana)], backgroundColor: palette[0], borderRadius: 4 },
        { label: T("tab_mean"), data: [minutes(first.media), minutes(agent.media)], backgroundColor: palette[2], borderRadius: 4 },
      ] }, options: { scales: { y: { beginAtZero: true, title: { display: true, text: T("tab_minutes_axis") } } } } });
      document.getElementById("kpi-primera").textContent = duration(first.mediana);
      document.getElementById("kpi-agente").textContent = duration(agent.mediana);
    },
    "transcripciones": (d) => {
      draw("transcripciones", doughnut(d.labels, d.notas, [palette[0], palette[4], palette[6]]));
      const list = document.getElementById("motivos");
      list.replaceChildren(...d.motivos.map((m) => {
        const item = document.createElement("li");
        item.textContent = `${m.motivo}: ${m.notas}`;
        return item;
      }));
    },
    "entregas": (d) => {
      draw("entregas", bar(d.labels, T("tab_messages"), d.mensajes, { colors: [palette[2], palette[0], palette[1], palette[4]] }));
      const body = document.querySelector("#errores tbody");
      body.replaceChildren(...(d.errores.length ? d.errores : [null]).map((error) => {
        const row = document.createElement("tr");
        const cells = error ? [error.codigo ?? "—", error.titulo || "", error.mensajes] : ["—", T("tab_no_errors"), ""];
        for (const value of cells) {
          const cell = document.createElement("td");
          cell.textContent = value;
          row.appendChild(cell);
        }
        return row;
      }));
    },
  };

  Promise.all(Object.entries(renderers).map(([name, render]) => fetchChart(name).then(render)))
    .then(() => { document.body.dataset.tablero = "listo"; })
    .catch((error) => { showError(error.message); document.body.dataset.tablero = "error"; });
})();
