/* Simulador: a WhatsApp-like chat where the browser plays the customer.
 *
 * Messages go to POST /simulador/enviar (through the real webhook pipeline); the conversation is
 * read back by polling GET /simulador/mensajes. Bubbles (escaping, WhatsApp formatting, ticks, media) are drawn
 * by static/messages.js, shared with the agents' panel.
 */
(function () {
  "use strict";

  const root = document.getElementById("simulador");
  if (!root) return;

  const cfg = root.dataset;
  const POLL_MS = 700;
  const NUMBER_RE = /^\+?\d{6,15}$/;
  const STORAGE_KEY = "simulador.numero." + cfg.defaultNumber;
  const enabled = cfg.enabled === "si";
  const audioTypes = (cfg.audioTypes || "").split(",").filter(Boolean);
  const audioMaxBytes = Number(cfg.audioMaxMb || 16) * 1024 * 1024;

  const el = {
    chat: document.getElementById("sim-chat"),
    empty: document.getElementById("sim-empty"),
    error: document.getElementById("sim-error"),
    form: document.getElementById("sim-form"),
    text: document.getElementById("sim-text"),
    send: document.getElementById("sim-send"),
    audio: document.getElementById("sim-audio"),
    number: document.getElementById("sim-numero"),
    headNumber: document.getElementById("sim-head-numero"),
    fresh: document.getElementById("sim-nueva"),
    state: document.getElementById("sim-estado"),
    sheet: document.getElementById("sim-sheet"),
    sheetTitle: document.getElementById("sim-sheet-title"),
    sheetRows: document.getElementById("sim-sheet-rows"),
    sheetClose: document.getElementById("sim-sheet-close"),
  };

  // UI texts: services/texts.py through the #ui-texts blob, read by messages.js.
  const { T, make, renderMessage: renderBubble, signature } = window.WAMessages;
  const STATE_LABELS = { bot: T("sim_state_bot"), human: T("sim_state_human"), closed: T("sim_state_closed") };

  let numero = "";
  let lastId = 0;
  let since = null;
  let generation = 0;     // bumped when the number changes: answers for the old number are dropped
  let polling = false;
  let pollTimer = null;
  let stopped = false;
  let errorSource = null;
  let busy = false;
  const rendered = new Map();   // message id -> {node, signature, record}
  const readReported = new Set();

  // --- errors ----------------------------------------------------------------------------------

  function showError(message, source) {
    errorSource = source;
    el.error.textContent = message;
    el.error.hidden = false;
  }

  function clearError(source) {
    if (source && errorSource !== source) return;
    errorSource = null;
    el.error.hidden = true;
    el.error.textContent = "";
  }

  // --- rendering (static/messages.js) --------------------------------------------------------

  const answerable = {
    enabled,
    list: (m) => openList(m),
    button: (option, m) => sendReply("button_reply", option, m),
  };

  function renderMessage(m) {
    return renderBubble(m, { onOption: answerable });
  }

  function nearBottom() {
    return el.chat.scrollHeight - el.chat.scrollTop - el.chat.clientHeight < 80;
  }

  function upsert(m, allowNew) {
    const known = rendered.get(m.id);
    const sig = signature(m);
    if (known) {
      if (known.signature === sig) return false;
      const node = renderMessage(m);
      known.node.replaceWith(node);
      rendered.set(m.id, { node, signature: sig, record: m });
      return true;
    }
    if (!allowNew) return false;
    const node = renderMessage(m);
    el.chat.appendChild(node);
    rendered.set(m.id, { node, signature: sig, record: m });
    return true;
  }

  function resetChat() {
    generation += 1;
    lastId = 0;
    since = null;
    rendered.clear();
    readReported.clear();
    el.chat.replaceChildren(el.empty);
    el.empty.hidden = false;
    el.state.textContent = T("sim_state_new");
    closeList();
    clearError();
  }

  // --- list sheet ------------------------------------------------------------------------------

  let sheetReturnFocus = null;

  function openList(m) {
    el.sheetTitle.textContent = m.list_button || T("sim_options");
    el.sheetRows.replaceChildren();
    let section = null;
    for (const option of m.options) {
      if (option.section && option.section !== section) {
        section = option.section;
        el.sheetRows.appendChild(make("h3", "sim-sheet-section", section));
      }
      const row = make("button", "sim-sheet-row");
      row.type = "button";
      row.dataset.id = option.id;
      row.appendChild(make("span", "sim-sheet-row-title", option.title));
      if (option.description) row.appendChild(make("span", "sim-sheet-row-description", option.description));
      row.addEventListener("click", () => {
        closeList();
        sendReply("list_reply", option, m);
      });
      el.sheetRows.appendChild(row);
    }
    sheetReturnFocus = document.activeElement;
    el.sheet.hidden = false;
    const first = el.sheetRows.querySelector("button");
    if (first) first.focus();
  }

  function closeList() {
    if (el.sheet.hidden) return;
    el.sheet.hidden = true;
    if (sheetReturnFocus && document.contains(sheetReturnFocus)) sheetReturnFocus.focus();
    sheetReturnFocus = null;
  }

  el.sheetClose.addEventListener("click", closeList);
  el.sheet.addEventListener("click", (event) => { if (event.target === el.sheet) closeList(); });
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeList(); });

  // --- talking to the server -------------------------------------------------------------------

  async function readJson(response) {
    try {
      return await response.json();
    } catch (_) {
      return null;
    }
  }

  function sessionExpired() {
    stopped = true;
    clearTimeout(pollTimer);
    showError(T("sim_session_expired"), "session");
    const link = make("a", null, " " + T("login"));
    link.href = cfg.loginUrl;
    el.error.appendChild(link);
  }

  async function post(url, body) {
    const headers = { "X-CSRFToken": cfg.csrf, Accept: "application/json" };
    if (!(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(body);
    }
    const response = await fetch(url, { method: "POST", headers, body, credentials: "same-origin" });
    const data = await readJson(response);
    if (response.status === 401) sessionExpired();
    return { response, data };
  }

  async function send(body) {
    if (!enabled) {
      showError(T("sim_disabled_error"), "send");
      return false;
    }
    busy = true;
    root.classList.add("sim-busy");
    try {
      const { response, data } = await post(cfg.sendUrl, body);
      if (!response.ok || !data || !data.ok) {
        if (response.status !== 401) showError((data && data.error) || T("sim_send_error", { status: response.status }), "send");
        return false;
      }
      clearError("send");
      schedulePoll(0);
      return true;
    } catch (_) {
      showError(T("sim_send_offline"), "send");
      return false;
    } finally {
      busy = false;
      root.classList.remove("sim-busy");
    }
  }

  function sendReply(kind, option, message) {
    const reply = { kind, id: option.id, title: option.title };
    if (option.description) reply.description = option.description;
    if (message.wamid) reply.message_id = message.id;
    return send({ numero, reply });
  }

  async function poll() {
    if (polling || stopped || !numero) return;
    polling = true;
    const asked = generation;
    try {
      let url = `${cfg.messagesUrl}?numero=${encodeURIComponent(numero)}&despues=${lastId}`;
      if (since) url += `&cambios=${encodeURIComponent(since)}`;
      const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store", credentials: "same-origin" });
      const data = await readJson(response);
      if (asked !== generation) return;
      if (response.status === 401) return sessionExpired();
      if (!response.ok || !data || !data.ok) {
        showError((data && data.error) || T("sim_read_error", { status: response.status }), "poll");
        return;
      }
      clearError("poll");
      const stick = nearBottom();
      let added = false;
      for (const m of data.messages) added = upsert(m, true) || added;
      for (const m of data.changed) upsert(m, false);
      lastId = Math.max(lastId, data.last_id || 0);
      since = data.now;
      el.empty.hidden = rendered.size > 0;
      el.state.textContent = data.chat ? (STATE_LABELS[data.chat.state] || data.chat.state) : T("sim_state_new");
      if (added && (stick || data.messages.some((m) => m.direction === "in"))) el.chat.scrollTop = el.chat.scrollHeight;
      reportRead();
    } catch (_) {
      if (asked === generation) showError(T("sim_poll_offline"), "poll");
    } finally {
      polling = false;
      if (asked === generation) schedulePoll(POLL_MS);
    }
  }

  function schedulePoll(delay) {
    if (stopped) return;
    clearTimeout(pollTimer);
    pollTimer = setTimeout(() => {
      if (polling) schedulePoll(POLL_MS);
      else poll();
    }, delay);
  }

  /* The customer's phone has the chat open: it tells Meta (here, the webhook) it read what arrived. */
  function reportRead() {
    if (!enabled || document.visibilityState !== "visible") return;
    const ids = [];
    for (const [id, item] of rendered) {
      const m = item.record;
      if (m.direction === "out" && m.wamid && (m.status === "sent" || m.status === "delivered") && !readReported.has(id)) ids.push(id);
    }
    if (!ids.length) return;
    ids.forEach((id) => readReported.add(id));
    post(cfg.readUrl, { numero, ids }).then(({ response }) => {
      if (!response.ok) ids.forEach((id) => readReported.delete(id));
    }).catch(() => ids.forEach((id) => readReported.delete(id)));
  }

  // --- the number ------------------------------------------------------------------------------

  function useNumber(value, remember) {
    const clean = String(value).replace(/[\s\-.()]/g, "");
    if (!NUMBER_RE.test(clean)) {
      showError(T("sim_bad_number"), "number");
      return false;
    }
    clearError("number");
    const digits = clean.replace(/^\+/, "");
    el.number.value = digits;
    el.headNumber.textContent = "+" + digits;
    if (digits === numero) return true;
    numero = digits;
    if (remember) {
      try { localStorage.setItem(STORAGE_KEY, digits); } catch (_) { /* private mode: not remembered */ }
    }
    resetChat();
    stopped = false;
    schedulePoll(0);
    return true;
  }

  function randomNumber() {
    const digits = new Uint32Array(3);
    crypto.getRandomValues(digits);
    return "999" + Array.from(digits, (d) => String(d % 1000).padStart(3, "0")).join("");
  }

  el.number.addEventListener("change", () => useNumber(el.number.value, true));
  el.number.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      useNumber(el.number.value, true);
    }
  });
  el.fresh.addEventListener("click", () => {
    useNumber(randomNumber(), true);
    el.text.focus();
  });

  // --- composing -------------------------------------------------------------------------------

  function autosize() {
    el.text.style.height = "auto";
    el.text.style.height = Math.min(el.text.scrollHeight, 140) + "px";
  }

  async function submitText() {
    const text = el.text.value;
    if (!text.trim()) {
      showError(T("sim_empty_message"), "send");
      return;
    }
    if (busy) return;
    if (await send({ numero, text })) {
      el.text.value = "";
      autosize();
    }
    el.text.focus();
  }

  el.form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitText();
  });
  el.text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submitText();
    }
  });
  el.text.addEventListener("input", autosize);

  el.audio.addEventListener("change", async () => {
    const file = el.audio.files && el.audio.files[0];
    el.audio.value = "";
    if (!file) return;
    const extension = (file.name.match(/\.[^.]+$/) || [""])[0].toLowerCase();
    if (!audioTypes.includes(extension)) {
      showError(T("sim_audio_bad_type", { types: audioTypes.join(", ") }), "send");
      return;
    }
    if (file.size > audioMaxBytes) {
      showError(T("sim_audio_too_big", { mb: cfg.audioMaxMb }), "send");
      return;
    }
    const form = new FormData();
    form.append("numero", numero);
    form.append("audio", file, file.name);
    await send(form);
  });

  if (!enabled) {
    el.text.disabled = true;
    el.send.disabled = true;
    el.audio.disabled = true;
    el.text.placeholder = T("sim_disabled_placeholder");
  }

  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") reportRead(); });

  let initial = cfg.defaultNumber;
  try { initial = localStorage.getItem(STORAGE_KEY) || initial; } catch (_) { /* ignore */ }
  if (!useNumber(initial, false)) useNumber(cfg.defaultNumber, false);
})();
