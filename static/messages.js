/* WhatsApp-style message bubbles, shared by the simulator (/simulador) and the agents' panel (/).
 *
 * One place for escaping, WhatsApp formatting (*bold*, _italic_, ~strike~, ```mono```), ticks, media and
 * every message type. Server text is always escaped before formatting; nothing raw reaches innerHTML.
 * The bubble classes keep the simulator's `sim-` prefix: static/app.css styles them for both pages.
 * UI texts come from the JSON blob #ui-texts that the page renders from services/texts.py.
 */
(function () {
  "use strict";

  let texts = null;

  /* The UI texts of the page (services/texts.py); a missing key shows as the key itself, never breaks. */
  function T(key, values) {
    if (texts === null) {
      const blob = document.getElementById("ui-texts");
      try { texts = blob ? JSON.parse(blob.textContent) : {}; } catch (_) { texts = {}; }
    }
    let text = Object.prototype.hasOwnProperty.call(texts, key) ? texts[key] : key;
    if (values) text = text.replace(/\{(\w+)\}/g, (all, name) => (name in values ? String(values[name]) : all));
    return text;
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  /* WhatsApp's markup on already-escaped text: the captured groups are escaped text, so the result is safe. */
  function formatWhatsApp(text) {
    let html = escapeHtml(text);
    html = html.replace(/```([^`]+?)```/g, "<code>$1</code>");
    const edge = "(^|[\\s(¡¿\"'>])";
    const end = "(?=$|[\\s).,;:!?¡¿\"'<])";
    html = html.replace(new RegExp(edge + "\\*(?=\\S)([^*\\n]*?\\S)\\*" + end, "g"), "$1<strong>$2</strong>");
    html = html.replace(new RegExp(edge + "_(?=\\S)([^_\\n]*?\\S)_" + end, "g"), "$1<em>$2</em>");
    html = html.replace(new RegExp(edge + "~(?=\\S)([^~\\n]*?\\S)~" + end, "g"), "$1<s>$2</s>");
    return html.replace(/\n/g, "<br>");
  }

  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function formatted(tag, className, text) {
    const node = make(tag, className);
    node.innerHTML = formatWhatsApp(text);
    return node;
  }

  function timeOf(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    return date.toLocaleTimeString(T("locale"), { hour: "2-digit", minute: "2-digit" });
  }

  /* Only same-site paths and http(s) links are ever put in src/href. */
  function safeUrl(url) {
    if (typeof url !== "string" || !url) return null;
    if (url.startsWith("/") && !url.startsWith("//")) return url;
    return /^https?:\/\//i.test(url) ? url : null;
  }

  function externalLink(className, href, text) {
    const link = make("a", className, text);
    link.href = href;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    return link;
  }

  const TICKS = {
    pending: ["◷", "tick_pending", ""],
    sending: ["◷", "tick_sending", ""],
    sent: ["✓", "tick_sent", ""],
    delivered: ["✓✓", "tick_delivered", ""],
    read: ["✓✓", "tick_read", "sim-tick-read"],
    played: ["✓✓", "tick_played", "sim-tick-read"],
    received: ["✓✓", "tick_received", ""],
    failed: ["⚠", "tick_failed", "sim-tick-failed"],
  };

  function failureReason(m) {
    const reason = m.error || T("unknown_error");
    return m.error_code ? `${reason} (${T("error_code")} ${m.error_code})` : reason;
  }

  function tick(m) {
    const [symbol, key, extra] = TICKS[m.status] || ["", null, ""];
    const label = key ? T(key) : (m.status || "");
    const node = make("span", "sim-tick " + extra, symbol);
    const title = m.status === "failed" ? `${label}: ${failureReason(m)}` : label;
    node.title = title;
    node.setAttribute("aria-label", title);
    node.dataset.status = m.status || "";
    return node;
  }

  function mediaNode(m) {
    const media = m.media;
    if (!media) return null;
    const url = safeUrl(media.url);
    if (!url) {
      if (media.status === "failed") return make("p", "sim-media-note sim-media-failed", T("media_failed", { error: media.error || T("unknown_error") }));
      if (media.status === "pending") return make("p", "sim-media-note", m.type === "audio" ? T("media_processing_audio") : T("media_downloading"));
      return make("p", "sim-media-note", T("media_missing"));
    }
    if (m.type === "audio") {
      const audio = make("audio", "sim-audio");
      audio.controls = true;
      audio.preload = "metadata";
      audio.src = url;
      return audio;
    }
    if (m.type === "image" || m.type === "sticker") {
      const link = externalLink("sim-image-link", url);
      const img = make("img", m.type === "sticker" ? "sim-sticker" : "sim-image");
      img.src = url;
      img.alt = m.type === "sticker" ? T("sticker") : T("image");
      img.loading = "lazy";
      link.appendChild(img);
      return link;
    }
    if (m.type === "video") {
      const video = make("video", "sim-video");
      video.controls = true;
      video.preload = "metadata";
      video.src = url;
      return video;
    }
    const doc = externalLink("sim-document", url);
    doc.appendChild(make("span", "sim-document-icon", T("document_badge")));
    doc.appendChild(make("span", "sim-document-name", media.filename || T("document")));
    return doc;
  }

  function coordinate(value, limit) {
    const number = Number(value);
    return Number.isFinite(number) && Math.abs(number) <= limit ? number : null;
  }

  function locationNode(content) {
    const box = make("div", "sim-location");
    const lat = coordinate(content.latitude, 90);
    const lon = coordinate(content.longitude, 180);
    box.appendChild(make("div", "sim-location-name", content.name || T("location")));
    if (content.address) box.appendChild(make("div", "sim-location-address", content.address));
    if (lat !== null && lon !== null) {
      const href = `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=17/${lat}/${lon}`;
      box.appendChild(externalLink("sim-location-link", href, T("open_map")));
    }
    return box;
  }

  function contactsNode(content) {
    const list = make("ul", "sim-contacts");
    for (const contact of Array.isArray(content.contacts) ? content.contacts : []) {
      if (!contact || typeof contact !== "object") continue;
      const item = make("li", "sim-contact");
      const name = (contact.name && (contact.name.formatted_name || contact.name.first_name)) || T("contact");
      item.appendChild(make("strong", null, name));
      for (const phone of Array.isArray(contact.phones) ? contact.phones : []) {
        if (phone && (phone.phone || phone.wa_id)) item.appendChild(make("span", "sim-contact-phone", phone.phone || "+" + phone.wa_id));
      }
      list.appendChild(item);
    }
    return list;
  }

  const PENDING_TRANSCRIPTION = ["pending", "pendiente", "queued", "processing"];

  function transcriptionNode(m) {
    if (m.transcription) return make("div", "sim-transcription", T("transcription", { text: m.transcription }));
    const status = m.transcription_status;
    if (m.type !== "audio" || !status || status === "ok" || status === "done") return null;
    if (PENDING_TRANSCRIPTION.includes(status)) return make("div", "sim-transcription", T("transcribing"));
    const text = /^no transcrito/i.test(status) ? status : T("not_transcribed", { reason: status });
    return make("div", "sim-transcription sim-transcription-failed", text);
  }

  /* A label above the text for messages that are more than text (replies, templates, reactions). */
  function kindLabel(m) {
    const content = m.content || {};
    if (m.type === "interactive" && m.reply) return T(m.reply.kind === "list_reply" ? "list_reply" : "button_reply");
    if (m.type === "interactive" && content.kind === "nfm_reply") return T("form_reply");
    if (m.type === "button") return T("template_button");
    if (m.type === "template") return T("template_named", { name: content.name || "" });
    if (m.type === "reaction") return content.emoji ? T("reaction") : T("reaction_removed");
    if (content.forwarded) return T("forwarded");
    return null;
  }

  function optionsNode(m, onOption) {
    if (!m.options || !m.options.length) return null;
    if (m.type === "list") {
      const open = make("button", "sim-list-button", m.list_button || T("see_options"));
      open.type = "button";
      if (onOption) {
        open.disabled = !onOption.enabled;
        open.addEventListener("click", () => onOption.list(m));
        return open;
      }
      const rows = make("ol", "sim-options");
      for (const option of m.options) {
        const row = make("li", null, option.title);
        if (option.description) row.appendChild(make("small", null, option.description));
        rows.appendChild(row);
      }
      open.setAttribute("aria-expanded", "false");
      open.addEventListener("click", () => {
        rows.hidden = !rows.hidden;
        open.setAttribute("aria-expanded", String(!rows.hidden));
      });
      rows.hidden = true;
      const box = make("div", "sim-options-box");
      box.append(open, rows);
      return box;
    }
    return null;
  }

  function buttonsNode(m, onOption) {
    if (m.type !== "buttons" || !m.options || !m.options.length) return null;
    const group = make("div", "sim-buttons");
    for (const option of m.options) {
      const button = make("button", "sim-reply-button", option.title);
      button.type = "button";
      if (onOption) {
        button.disabled = !onOption.enabled;
        button.addEventListener("click", () => onOption.button(option, m));
      } else {
        button.disabled = true;
      }
      group.appendChild(button);
    }
    return group;
  }

  /* One message as a row with its bubble. `opts.onOption` ({enabled, list(m), button(option, m)}) makes the
   * bot's lists and buttons answerable (the simulator); without it they are shown read-only (the panel).
   * `opts.ticksOnlyOut` leaves the ticks off the customer's messages (the panel's point of view). */
  function renderMessage(m, opts) {
    const onOption = (opts && opts.onOption) || null;
    const row = make("div", "sim-row " + (m.direction === "out" ? "sim-row-out" : "sim-row-in"));
    row.dataset.id = m.id;
    row.dataset.type = m.type;
    row.dataset.sender = m.sender;
    row.dataset.status = m.status || "";
    const bubble = make("div", "sim-bubble");
    if (m.status === "failed") bubble.classList.add("sim-bubble-failed");
    row.appendChild(bubble);
    const content = m.content || {};

    if (m.direction === "out") {
      const sender = m.sender === "agent" ? T("sender_agent") : m.sender === "bot" ? T("sender_bot") : null;
      if (sender) bubble.appendChild(make("span", "sim-sender", sender));
    }
    const label = kindLabel(m);
    if (label) bubble.appendChild(make("span", "sim-kind", label));
    if (m.header) bubble.appendChild(formatted("div", "sim-header", m.header));
    const media = mediaNode(m);
    if (media) bubble.appendChild(media);
    let body = null;
    if (m.type === "location") body = locationNode(content);
    else if (m.type === "contacts") body = contactsNode(content);
    else if (m.type === "reaction") body = make("div", "sim-reaction", content.emoji || "—");
    if (body) bubble.appendChild(body);
    else if (m.text) bubble.appendChild(formatted("div", "sim-text", m.text));
    else if (!media && !(m.options && m.options.length)) {
      bubble.appendChild(make("div", "sim-text sim-text-muted", T("type_" + m.type) !== "type_" + m.type ? T("type_" + m.type) : `[${m.type}]`));
    }
    const transcription = transcriptionNode(m);
    if (transcription) bubble.appendChild(transcription);
    if (m.footer) bubble.appendChild(make("div", "sim-footer", m.footer));
    if (m.status === "failed") bubble.appendChild(make("div", "sim-failed-note", T("not_delivered", { reason: failureReason(m) })));
    const meta = make("span", "sim-meta");
    meta.appendChild(make("span", "sim-time", timeOf(m.created_at)));
    if (m.direction === "out" || !(opts && opts.ticksOnlyOut)) meta.appendChild(tick(m));
    bubble.appendChild(meta);

    const options = optionsNode(m, onOption);
    if (options) bubble.appendChild(options);
    const buttons = buttonsNode(m, onOption);
    if (buttons) row.appendChild(buttons);
    return row;
  }

  /* Changes when anything shown in the bubble changes: a re-render is needed only then. */
  function signature(m) {
    return JSON.stringify([m.status, m.error, m.text, m.media, m.transcription, m.transcription_status, m.options]);
  }

  window.WAMessages = { T, escapeHtml, formatWhatsApp, make, formatted, timeOf, safeUrl, tick, renderMessage, signature };
})();
