/* The agents' panel (/): chat list and conversation, live through Server-Sent Events (/eventos).
 *
 * Data comes from the JSON endpoints of routes/chat.py; every state-changing fetch carries the page's CSRF
 * token in X-CSRFToken. Bubbles are drawn by static/messages.js (shared with the simulator), which escapes
 * all customer text. UI texts come from services/texts.py through the #ui-texts blob.
 */
(function () {
  "use strict";

  const root = document.getElementById("panel");
  if (!root || !window.WAMessages) return;
  const { T, make, renderMessage, signature } = window.WAMessages;
  const cfg = root.dataset;
  const initial = JSON.parse(document.getElementById("panel-data").textContent);
  const isAdmin = cfg.isAdmin === "si";
  const $ = (id) => document.getElementById(id);

  const el = {
    chats: $("wa-chats"), search: $("wa-search"), searchForm: $("wa-search-form"), role: $("wa-role"),
    states: root.querySelectorAll(".wa-states .wa-chip"), live: $("wa-live"),
    welcome: $("wa-welcome"), view: $("wa-chat-view"), back: $("wa-back"),
    name: $("wa-head-name"), numero: $("wa-head-numero"), avatar: $("wa-head-avatar"), state: $("wa-head-state"),
    window: $("wa-head-window"), roles: $("wa-head-roles"),
    take: $("wa-take"), handBack: $("wa-handback"), close: $("wa-close"), aliasButton: $("wa-alias"),
    rolesButton: $("wa-roles"), messages: $("wa-messages"), historyNote: $("wa-history-note"), error: $("wa-error"),
    quick: $("wa-quick"), compose: $("wa-compose"), text: $("wa-text"), send: $("wa-send"), file: $("wa-file"),
    listButton: $("wa-list"), templateOnly: $("wa-template-only"), templateForm: $("wa-template-form"),
    aliasDialog: $("wa-alias-dialog"), aliasForm: $("wa-alias-form"), aliasInput: $("wa-alias-input"),
    rolesDialog: $("wa-roles-dialog"), rolesForm: $("wa-roles-form"),
    listDialog: $("wa-list-dialog"), listForm: $("wa-list-form"), listText: $("wa-list-text"),
    listOptions: $("wa-list-options"), listAsButtons: $("wa-list-buttons"), listError: $("wa-list-error"),
    attachDialog: $("wa-attach-dialog"), attachForm: $("wa-attach-form"), attachName: $("wa-attach-name"),
    attachCaption: $("wa-attach-caption"), attachError: $("wa-attach-error"),
  };

  const filter = { q: initial.filter.q || "", rol: initial.filter.rol || "", estado: initial.filter.estado || "" };
  const chats = new Map();           // id -> summary, for the chats in the list
  let listDone = false;
  let listLoading = false;
  let listGeneration = 0;
  let selected = null;               // summary of the open chat
  let openGeneration = 0;            // bumped on every chat switch: late answers for another chat are dropped
  const rendered = new Map();        // message id -> {node, sig}
  let oldestId = null;
  let newestId = 0;
  let historyDone = false;
  let loadingOlder = false;
  let fetchingNewer = false;
  let newerAgain = false;
  let pendingFile = null;
  let sessionGone = false;

  // --- talking to the server -------------------------------------------------------------------

  function expired() {
    if (sessionGone) return;
    sessionGone = true;
    showError(T("error_session"));
    const link = make("a", null, " " + T("login"));
    link.href = cfg.loginUrl;
    el.error.appendChild(link);
  }

  /* {ok, status, data}; a redirect to the login page means the session ended. */
  async function api(method, url, body) {
    const options = { method, credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" };
    if (method !== "GET") {
      options.headers["X-CSRFToken"] = cfg.csrf;
      if (body instanceof FormData) options.body = body;
      else if (body !== undefined) {
        options.headers["Content-Type"] = "application/json";
        options.body = JSON.stringify(body);
      }
    }
    let response;
    try {
      response = await fetch(url, options);
    } catch (_) {
      return { ok: false, status: 0, data: { error: T("error_network") } };
    }
    if (response.status === 401 || (response.redirected && /\/login/.test(response.url))) {
      expired();
      return { ok: false, status: 401, data: { error: T("error_session") } };
    }
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok && !(data && data.error)) data = { error: T("error_status", { status: response.status }) };
    return { ok: response.ok, status: response.status, data };
  }

  function showError(message) {
    el.error.textContent = message;
    el.error.hidden = false;
  }

  function clearError() {
    if (sessionGone) return;
    el.error.hidden = true;
    el.error.textContent = "";
  }

  // --- the chat list ---------------------------------------------------------------------------

  function initials(name) {
    const words = String(name || "").replace(/[^\p{L}\p{N} ]/gu, "").trim().split(/\s+/).filter(Boolean);
    if (!words.length) return "#";
    if (/^\d+$/.test(words[0])) return words[0].slice(-2);
    return (words[0][0] + (words[1] ? words[1][0] : "")).toUpperCase();
  }

  function listTime(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    const now = new Date();
    const day = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
    const days = Math.round((day(now) - day(date)) / 86400000);
    if (days === 0) return date.toLocaleTimeString(T("locale"), { hour: "2-digit", minute: "2-digit" });
    if (days === 1) return T("yesterday");
    return date.toLocaleDateString(T("locale"), { day: "2-digit", month: "2-digit", year: "2-digit" });
  }

  function stateChip(chat, long) {
    const chip = make("span", `wa-state-chip wa-state-${chat.state}`, T((long ? "state_" + chat.state + "_long" : "state_" + chat.state)));
    chip.dataset.state = chat.state;
    return chip;
  }

  function chatItem(chat) {
    const item = make("li", "wa-chat");
    item.dataset.id = chat.id;
    item.dataset.state = chat.state;
    if (selected && selected.id === chat.id) item.classList.add("active");
    if (chat.unread) item.classList.add("wa-chat-unread");
    const link = make("a", "wa-chat-link");
    link.href = `/chats/${chat.id}`;
    link.addEventListener("click", (event) => {
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      openChat(chat.id, true);
    });
    link.appendChild(make("span", "wa-avatar", initials(chat.alias || chat.profile_name || chat.numero)));
    const body = make("span", "wa-chat-body");
    const top = make("span", "wa-chat-top");
    top.appendChild(make("strong", "wa-chat-name", chat.name));
    top.appendChild(make("time", "wa-chat-time", listTime(chat.last_message_at)));
    const bottom = make("span", "wa-chat-bottom");
    if (chat.sentiment) {
      const dot = make("span", `wa-dot wa-dot-${chat.sentiment}`);
      dot.title = T("sentiment_" + chat.sentiment);
      dot.setAttribute("aria-label", dot.title);
      bottom.appendChild(dot);
    }
    bottom.appendChild(make("span", "wa-chat-preview", chat.preview || T("no_messages_yet")));
    if (!chat.window_open && chat.state !== "closed") {
      const clock = make("span", "wa-window-off", T("window_24h"));
      clock.title = T("window_closed");
      clock.setAttribute("aria-label", clock.title);
      bottom.appendChild(clock);
    }
    bottom.appendChild(stateChip(chat, false));
    if (chat.unread) {
      const badge = make("span", "wa-unread", String(chat.unread));
      badge.setAttribute("aria-label", T("unread", { count: chat.unread }));
      bottom.appendChild(badge);
    }
    body.append(top, bottom);
    link.appendChild(body);
    item.appendChild(link);
    return item;
  }

  function ordered() {
    return Array.from(chats.values()).sort((a, b) =>
      (b.last_message_at || "").localeCompare(a.last_message_at || "") || b.id - a.id);
  }

  function drawList() {
    const items = ordered().map(chatItem);
    if (!items.length) items.push(make("li", "wa-list-empty", filter.q || filter.rol || filter.estado ? T("no_matches") : T("no_chats")));
    if (!listDone && chats.size) {
      const more = make("li", "wa-list-more", T("loading"));
      more.id = "wa-list-more";
      items.push(more);
    }
    el.chats.replaceChildren(...items);
  }

  function listUrl(before) {
    const params = new URLSearchParams();
    if (filter.q) params.set("q", filter.q);
    if (filter.rol) params.set("rol", filter.rol);
    if (filter.estado) params.set("estado", filter.estado);
    if (before) params.set("antes", `${before.last_message_at}|${before.id}`);
    return "/api/chats?" + params.toString();
  }

  async function loadList(more) {
    if (more && (listDone || listLoading)) return;
    const generation = more ? listGeneration : ++listGeneration;
    listLoading = true;
    const list = ordered();
    const last = more ? list[list.length - 1] : null;
    const { ok, data } = await api("GET", listUrl(last && last.last_message_at ? last : null));
    listLoading = false;
    if (generation !== listGeneration) return;
    if (!ok) return showError(data.error);
    if (!more) chats.clear();
    for (const chat of data.chats) chats.set(chat.id, chat);
    listDone = data.chats.length < initial.chat_page;
    drawList();
  }

  function matchesFilter(chat) {
    if (filter.estado && chat.state !== filter.estado) return false;
    if (filter.rol && !chat.roles.some((role) => String(role.id) === String(filter.rol))) return false;
    return true;
  }

  let listReload = null;
  function reloadListSoon() {
    clearTimeout(listReload);
    listReload = setTimeout(() => loadList(false), 150);
  }

  /* A chat changed: its new summary goes in (or out of) the list, and into the header when it is open. */
  function updateChat(chat) {
    if (matchesFilter(chat)) {
      const oldest = ordered().pop();
      const fits = listDone || !oldest || (chat.last_message_at || "") >= (oldest.last_message_at || "");
      if (chats.has(chat.id) || fits) chats.set(chat.id, chat);
    } else {
      chats.delete(chat.id);
    }
    drawList();
    if (selected && selected.id === chat.id) drawHeader(chat);
  }

  const refreshing = new Map();
  function refreshChat(chatId) {
    if (refreshing.has(chatId)) return;
    refreshing.set(chatId, setTimeout(async () => {
      refreshing.delete(chatId);
      if (filter.q) return reloadListSoon();
      const { ok, status, data } = await api("GET", `/api/chats/${chatId}`);
      if (ok) return updateChat(data);
      if (status === 404) {
        chats.delete(chatId);
        drawList();
        if (selected && selected.id === chatId) {
          closeChat(false);
          showError(T("error_gone"));
        }
      }
    }, 60));
  }

  el.chats.addEventListener("scroll", () => {
    if (el.chats.scrollHeight - el.chats.scrollTop - el.chats.clientHeight < 120) loadList(true);
  });

  let searchTimer = null;
  el.search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      filter.q = el.search.value.trim();
      loadList(false);
    }, 250);
  });
  el.searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    filter.q = el.search.value.trim();
    loadList(false);
  });
  el.role.addEventListener("change", () => {
    filter.rol = el.role.value;
    loadList(false);
  });
  el.states.forEach((chip) => chip.addEventListener("click", () => {
    filter.estado = chip.dataset.state;
    el.states.forEach((other) => {
      other.classList.toggle("active", other === chip);
      other.setAttribute("aria-pressed", String(other === chip));
    });
    loadList(false);
  }));

  // --- the conversation ------------------------------------------------------------------------

  function drawHeader(chat) {
    selected = chat;
    el.name.textContent = chat.name;
    el.numero.textContent = "+" + chat.numero;
    el.avatar.textContent = initials(chat.alias || chat.profile_name || chat.numero);
    const chip = stateChip(chat, true);
    chip.id = "wa-head-state";
    el.state.replaceWith(chip);
    el.state = chip;
    el.window.textContent = chat.window_open ? "" : T("window_closed_short");
    el.window.title = chat.window_open ? T("window_open") : T("window_closed");
    el.window.hidden = chat.window_open;
    el.roles.textContent = chat.roles.length ? chat.roles.map((role) => role.name).join(", ") : "";
    el.take.hidden = chat.state === "human" && String(chat.assigned_user_id) === cfg.userId;
    el.handBack.hidden = chat.state !== "human";
    el.close.hidden = chat.state === "closed";
    el.compose.hidden = !chat.window_open;
    el.quick.hidden = !chat.window_open || !el.quick.children.length;
    el.templateOnly.hidden = chat.window_open;
    el.templateForm.hidden = chat.window_open;
    document.title = `${chat.name} · WhatsApp IA`;
  }

  function nearBottom() {
    return el.messages.scrollHeight - el.messages.scrollTop - el.messages.clientHeight < 120;
  }

  function toBottom() {
    el.messages.scrollTop = el.messages.scrollHeight;
  }

  const view = { ticksOnlyOut: true };

  /* Insert a message in id order (or redraw it when it changed); true when it was new. */
  function upsert(m) {
    const known = rendered.get(m.id);
    const sig = signature(m);
    if (known) {
      if (known.sig !== sig) {
        const node = renderMessage(m, view);
        known.node.replaceWith(node);
        rendered.set(m.id, { node, sig });
      }
      return false;
    }
    const node = renderMessage(m, view);
    let after = null;
    for (const [id, item] of rendered) if (id > m.id && (!after || id < after.id)) after = { id, node: item.node };
    el.messages.insertBefore(node, after ? after.node : null);
    rendered.set(m.id, { node, sig });
    oldestId = oldestId === null ? m.id : Math.min(oldestId, m.id);
    newestId = Math.max(newestId, m.id);
    return true;
  }

  function drawHistoryNote() {
    el.historyNote.textContent = loadingOlder ? T("older_loading") : historyDone
      ? (rendered.size ? T("history_start") : T("empty_conversation")) : "";
  }

  function showConversation(chat) {
    el.welcome.hidden = true;
    el.view.hidden = false;
    root.classList.add("wa-has-chat");
    for (const item of el.chats.querySelectorAll(".wa-chat")) item.classList.toggle("active", item.dataset.id === String(chat.id));
    drawHeader(chat);
  }

  function resetMessages() {
    pinned = true;
    rendered.clear();
    oldestId = null;
    newestId = 0;
    historyDone = false;
    el.messages.replaceChildren(el.historyNote);
    drawHistoryNote();
  }

  async function openChat(chatId, push, preload) {
    const generation = ++openGeneration;
    clearError();
    resetMessages();
    if (push) history.pushState({ chat: chatId }, "", `/chats/${chatId}`);
    let chat = preload ? preload.chat : chats.get(chatId);
    if (chat) showConversation(chat);
    if (!preload) {
      const answer = await api("GET", `/api/chats/${chatId}`);
      if (generation !== openGeneration) return;
      if (!answer.ok) {
        closeChat(false);
        return showError(answer.status === 404 ? T("error_gone") : answer.data.error);
      }
      chat = answer.data;
      showConversation(chat);
    }
    let messages = preload ? preload.messages : null;
    if (!messages) {
      const answer = await api("GET", `/api/chats/${chatId}/mensajes`);
      if (generation !== openGeneration) return;
      if (!answer.ok) return showError(answer.data.error);
      messages = answer.data.messages;
    }
    messages.forEach(upsert);
    historyDone = messages.length < initial.message_page;
    drawHistoryNote();
    toBottom();
    if (chat.unread) markRead();
    fillScreen();
    if (!matchMedia("(max-width: 760px)").matches) el.text.focus({ preventScroll: true });
  }

  function closeChat(push) {
    openGeneration += 1;
    selected = null;
    resetMessages();
    el.view.hidden = true;
    el.welcome.hidden = false;
    root.classList.remove("wa-has-chat");
    for (const item of el.chats.querySelectorAll(".wa-chat.active")) item.classList.remove("active");
    document.title = `${T("page_title")} · WhatsApp IA`;
    if (push) history.pushState({}, "", "/");
  }

  /* Older pages come from the database as the agent scrolls up. */
  async function loadOlder() {
    if (!selected || historyDone || loadingOlder || oldestId === null) return;
    const generation = openGeneration;
    loadingOlder = true;
    drawHistoryNote();
    const { ok, data } = await api("GET", `/api/chats/${selected.id}/mensajes?antes=${oldestId}`);
    loadingOlder = false;
    if (generation !== openGeneration) return;
    if (!ok) {
      drawHistoryNote();
      return showError(data.error);
    }
    const before = el.messages.scrollHeight - el.messages.scrollTop;
    data.messages.forEach(upsert);
    historyDone = data.messages.length < initial.message_page;
    drawHistoryNote();
    el.messages.scrollTop = el.messages.scrollHeight - before;
    fillScreen();
  }

  function fillScreen() {
    if (!historyDone && el.messages.scrollHeight <= el.messages.clientHeight + 40) loadOlder();
  }

  let pinned = true;  // the agent is at the newest message: media that loads later must not push it up
  el.messages.addEventListener("scroll", () => {
    pinned = nearBottom();
    if (el.messages.scrollTop < 80) loadOlder();
  });
  el.messages.addEventListener("load", () => { if (pinned) toBottom(); }, true);
  el.messages.addEventListener("loadedmetadata", () => { if (pinned) toBottom(); }, true);

  async function fetchNewer() {
    if (!selected) return;
    if (fetchingNewer) {
      newerAgain = true;
      return;
    }
    fetchingNewer = true;
    const generation = openGeneration;
    const stick = nearBottom();
    const { ok, data } = await api("GET", `/api/chats/${selected.id}/mensajes?despues=${newestId}`);
    fetchingNewer = false;
    if (generation === openGeneration && ok) {
      let added = false;
      let inbound = false;
      for (const m of data.messages) {
        if (upsert(m)) {
          added = true;
          inbound = inbound || m.direction === "in";
        }
      }
      if (added) {
        historyDone = historyDone || oldestId !== null;
        drawHistoryNote();
        if (stick || !inbound) toBottom();
        if (inbound) markReadSoon();
      }
    }
    if (newerAgain) {
      newerAgain = false;
      fetchNewer();
    }
  }

  async function refreshMessage(messageId) {
    if (!selected) return;
    if (messageId > newestId) return fetchNewer();
    if (!rendered.has(messageId)) return;
    const generation = openGeneration;
    const { ok, data } = await api("GET", `/api/chats/${selected.id}/mensajes/${messageId}`);
    if (ok && generation === openGeneration) upsert(data);
  }

  async function markRead() {
    if (!selected) return;
    const { ok, data } = await api("POST", `/api/chats/${selected.id}/leido`);
    if (ok) updateChat(data.chat);
  }

  let readTimer = null;
  function markReadSoon() {
    clearTimeout(readTimer);
    readTimer = setTimeout(() => { if (document.visibilityState === "visible") markRead(); }, 300);
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && selected && selected.unread) markRead();
  });

  el.back.addEventListener("click", (event) => {
    event.preventDefault();
    closeChat(true);
  });
  window.addEventListener("popstate", () => {
    const match = location.pathname.match(/^\/chats\/(\d+)$/);
    if (match) openChat(Number(match[1]), false);
    else closeChat(false);
  });

  // --- actions ---------------------------------------------------------------------------------

  async function act(path, body) {
    if (!selected) return null;
    clearError();
    const { ok, data } = await api("POST", `/api/chats/${selected.id}/${path}`, body);
    if (!ok) {
      showError(data.error);
      return null;
    }
    if (data.chat) updateChat(data.chat);
    return data;
  }

  el.take.addEventListener("click", () => act("tomar"));
  el.handBack.addEventListener("click", () => act("devolver"));
  el.close.addEventListener("click", () => { if (window.confirm(T("close_confirm"))) act("cerrar"); });

  function dialog(node) {
    node.querySelectorAll("[data-close]").forEach((button) => button.addEventListener("click", () => node.close()));
    return node;
  }

  dialog(el.aliasDialog);
  el.aliasButton.addEventListener("click", () => {
    el.aliasInput.value = selected ? selected.alias || "" : "";
    el.aliasDialog.showModal();
    el.aliasInput.select();
  });
  el.aliasForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await act("alias", { alias: el.aliasInput.value })) el.aliasDialog.close();
  });

  if (isAdmin && el.rolesDialog) {
    dialog(el.rolesDialog);
    el.rolesButton.addEventListener("click", () => {
      const mine = new Set(selected.roles.map((role) => String(role.id)));
      el.rolesForm.querySelectorAll("input[name=rol]").forEach((box) => { box.checked = mine.has(box.value); });
      el.rolesDialog.showModal();
    });
    el.rolesForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const roles = Array.from(el.rolesForm.querySelectorAll("input[name=rol]:checked"), (box) => Number(box.value));
      if (await act("roles", { roles })) el.rolesDialog.close();
    });
  }

  // --- replying --------------------------------------------------------------------------------

  async function sent(result) {
    if (result) fetchNewer();
    return result;
  }

  function autosize() {
    el.text.style.height = "auto";
    el.text.style.height = Math.min(el.text.scrollHeight, 140) + "px";
  }

  let sending = false;
  async function submitText() {
    const text = el.text.value;
    if (!text.trim() || sending) return;
    sending = true;
    el.compose.classList.add("wa-busy");
    const result = await sent(await act("mensajes", { texto: text }));
    sending = false;
    el.compose.classList.remove("wa-busy");
    if (result) {
      el.text.value = "";
      autosize();
    }
    el.text.focus();
  }

  el.compose.addEventListener("submit", (event) => {
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

  el.quick.addEventListener("click", async (event) => {
    const button = event.target.closest(".wa-quick-button");
    if (!button || button.disabled) return;
    button.disabled = true;
    await sent(await act("respuesta-rapida", { id: Number(button.dataset.id) }));
    button.disabled = false;
  });

  el.templateForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    await sent(await act("mensajes", { tipo: "template", plantilla: $("wa-template-name").value,
                                       idioma: $("wa-template-language").value }));
  });

  dialog(el.listDialog);
  el.listButton.addEventListener("click", () => {
    el.listError.hidden = true;
    el.listDialog.showModal();
    el.listText.focus();
  });
  el.listForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const options = el.listOptions.value.split("\n").map((o) => o.replace(/\|/g, "/").trim()).filter(Boolean);
    const buttons = el.listAsButtons.checked;
    const limit = buttons ? 3 : 10;
    if (!options.length || options.length > limit) {
      el.listError.textContent = buttons ? T("list_as_buttons") : T("list_options");
      el.listError.hidden = false;
      return;
    }
    const result = await sent(await act("mensajes", { tipo: buttons ? "buttons" : "list", texto: el.listText.value,
                                                      opciones: options.join("|") }));
    if (result) {
      el.listForm.reset();
      el.listDialog.close();
    } else {
      el.listError.textContent = el.error.textContent;
      el.listError.hidden = false;
    }
  });

  /* The browser's quick check of a picked file (the server checks type, content and size again). */
  function fileProblem(file) {
    const extension = (file.name.match(/\.[^.]+$/) || [""])[0].toLowerCase();
    const kind = initial.limits.find(([, extensions]) => extensions.includes(extension));
    if (!kind) {
      const types = initial.limits.flatMap(([, extensions]) => extensions).join(", ");
      return T("attach_bad_type", { ext: extension || "—", types });
    }
    if (file.size > kind[2] * 1024 * 1024) return T("attach_too_big", { name: file.name, mb: kind[2], kind: kind[0] });
    return null;
  }

  dialog(el.attachDialog);
  el.file.addEventListener("change", () => {
    const file = el.file.files && el.file.files[0];
    el.file.value = "";
    if (!file || !selected) return;
    const problem = fileProblem(file);
    if (problem) return showError(problem);
    pendingFile = file;
    el.attachName.textContent = file.name;
    el.attachCaption.value = el.text.value;
    el.attachError.hidden = true;
    el.attachDialog.showModal();
  });
  el.attachForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!pendingFile) return el.attachDialog.close();
    const form = new FormData();
    form.append("archivo", pendingFile, pendingFile.name);
    form.append("texto", el.attachCaption.value);
    const result = await sent(await act("adjunto", form));
    if (result) {
      pendingFile = null;
      if (el.attachCaption.value === el.text.value) {
        el.text.value = "";
        autosize();
      }
      el.attachDialog.close();
    } else {
      el.attachError.textContent = el.error.textContent;
      el.attachError.hidden = false;
    }
  });

  // --- live updates ----------------------------------------------------------------------------

  let source = null;
  let wasDown = false;
  let planned = false;               // the server ended the stream on purpose (its maximum lifetime)
  let retryDelay = 2000;             // grows while the stream cannot be opened, back to 2 s once it is

  function setLive(state, message) {
    el.live.dataset.state = state;
    const text = message || (state === "ok" ? T("live_ok") : T("live_reconnecting"));
    el.live.title = text;
    el.live.textContent = state === "ok" ? "" : text;
  }

  function onEvent(event) {
    let item;
    try { item = JSON.parse(event.data); } catch (_) { return; }
    if (!item || !item.chat_id) return;
    const open = selected && selected.id === item.chat_id;
    if (item.type === "message") {
      if (open) fetchNewer();
      refreshChat(item.chat_id);
    } else if (item.type === "message_update") {
      if (open && item.message_id) refreshMessage(item.message_id);
    } else {
      refreshChat(item.chat_id);
    }
  }

  /* After a drop, whatever happened meanwhile is read again: the list, new messages and the last page's ticks. */
  async function resync() {
    loadList(false);
    if (!selected) return;
    refreshChat(selected.id);
    const generation = openGeneration;
    const { ok, data } = await api("GET", `/api/chats/${selected.id}/mensajes`);
    if (ok && generation === openGeneration) data.messages.forEach(upsert);
    fetchNewer();
  }

  function connect() {
    if (sessionGone) return;
    source = new EventSource(cfg.eventsUrl);
    source.addEventListener("open", () => {
      setLive("ok");
      retryDelay = 2000;
      if (wasDown) resync();
      wasDown = false;
      planned = false;
    });
    source.addEventListener("reconnect", () => { planned = true; });
    source.addEventListener("error", () => {
      wasDown = true;                  // events may be missed until it is open again: resync then
      if (!planned) setLive("down");
      if (source.readyState === EventSource.CLOSED) {  // refused (not a stream): the browser does not retry
        source.close();
        planned = false;
        setLive("down");
        setTimeout(reopen, retryDelay);
      }
    });
    for (const type of ["message", "message_update", "chat"]) source.addEventListener(type, onEvent);
  }

  /* Asks first whether a stream may open: a signed-out user stops, one with every stream in use (429) is told
     so and waits longer each time, instead of hammering the server. */
  async function reopen() {
    const { status, data } = await api("GET", `${cfg.eventsUrl}?comprobar=1`);
    if (status === 401 || sessionGone) return;
    retryDelay = Math.min(retryDelay * 2, 60000);
    if (status === 429) {
      setLive("down", data && data.error);
      setTimeout(reopen, Math.max(retryDelay, 15000));
    } else if (status === 0 || status >= 500) {
      setTimeout(reopen, retryDelay);
    } else {
      connect();
    }
  }

  // --- start -----------------------------------------------------------------------------------

  function sizeToWindow() {
    const bar = document.querySelector(".topbar");
    root.style.setProperty("--topbar", (bar ? bar.offsetHeight : 0) + "px");
  }
  window.addEventListener("resize", sizeToWindow);
  sizeToWindow();

  for (const chat of initial.chats) chats.set(chat.id, chat);
  listDone = initial.chats.length < initial.chat_page;
  drawList();
  if (initial.selected) {
    history.replaceState({ chat: initial.selected.id }, "", location.href);
    openChat(initial.selected.id, false, { chat: initial.selected, messages: initial.messages });
  }
  connect();
})();
